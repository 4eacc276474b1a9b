-- The rewards catalogue and members' redemptions of it. A reward is JSON as the
-- operator wrote it (checked when saved), with its stock kept apart as a counter.
-- A redemption keeps its voucher code only as a hash, the lots its points came from
-- (to give them back as they were), and its first answer (a replay returns it).
-- `reserved` holds a member's points set aside for vouchers not yet used; a shared
-- wallet never reserves, its column stays 0.
ALTER TABLE members ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0);
ALTER TABLE wallets ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved = 0);
CREATE TABLE rewards (
    id TEXT PRIMARY KEY,
    partner_id TEXT REFERENCES partners (id),
    spec TEXT NOT NULL,
    stock_left INTEGER CHECK (stock_left >= 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX rewards_partner ON rewards (partner_id);
CREATE TABLE redemptions (
    id TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES members (id),
    reward_id TEXT NOT NULL REFERENCES rewards (id),
    partner_id TEXT,
    request_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    reward_name TEXT NOT NULL,
    charity TEXT,
    points INTEGER NOT NULL CHECK (points > 0),
    status TEXT NOT NULL,
    code_hash TEXT UNIQUE,
    code_hint TEXT,
    taken TEXT NOT NULL,
    forfeit_on_expiry INTEGER NOT NULL,
    took_stock INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    closed_at INTEGER,
    used_location_id TEXT,
    receipt TEXT NOT NULL,
    UNIQUE (member_id, request_id)
);
CREATE INDEX redemptions_member ON redemptions (member_id, reward_id, created_at);
CREATE INDEX redemptions_partner ON redemptions (partner_id, id);
CREATE INDEX redemptions_due ON redemptions (expires_at) WHERE status = 'issued';
