-- Tally core schema for PostgreSQL. Times are microseconds since the Unix epoch (UTC).
CREATE TABLE program (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    point_value_minor BIGINT NOT NULL CHECK (point_value_minor > 0),
    expiry_months BIGINT NOT NULL CHECK (expiry_months > 0),
    admin_key_hash TEXT
);
INSERT INTO program (id, name, currency, point_value_minor, expiry_months)
VALUES (1, 'Tally', 'EUR', 1, 24);

CREATE TABLE fx_rates (
    currency TEXT PRIMARY KEY,
    rate TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    industry TEXT NOT NULL,
    country TEXT NOT NULL,
    currency TEXT NOT NULL,
    timezone TEXT NOT NULL,
    earn_rate TEXT NOT NULL,
    pending_days BIGINT NOT NULL CHECK (pending_days >= 0),
    created_at BIGINT NOT NULL
);

CREATE TABLE locations (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    timezone TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX locations_partner ON locations (partner_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE members (
    id TEXT PRIMARY KEY,
    name TEXT,
    country TEXT,
    referral_code TEXT NOT NULL UNIQUE,
    referred_by TEXT REFERENCES members (id),
    created_at BIGINT NOT NULL,
    available BIGINT NOT NULL DEFAULT 0 CHECK (available >= 0),
    pending BIGINT NOT NULL DEFAULT 0 CHECK (pending >= 0),
    lifetime_earned BIGINT NOT NULL DEFAULT 0,
    next_due_at BIGINT
);
CREATE INDEX members_due ON members (next_due_at) WHERE next_due_at IS NOT NULL;

CREATE TABLE identities (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    member_id TEXT NOT NULL REFERENCES members (id),
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_member ON identities (member_id);

CREATE TABLE transactions (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL,
    external_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    location_id TEXT,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    total_amount BIGINT NOT NULL,
    total_currency TEXT NOT NULL,
    points_earned BIGINT NOT NULL,
    points_redeemed BIGINT NOT NULL,
    returned_amount BIGINT NOT NULL DEFAULT 0,
    points_reversed BIGINT NOT NULL DEFAULT 0,
    points_refunded BIGINT NOT NULL DEFAULT 0,
    lines TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    receipt TEXT NOT NULL,
    UNIQUE (partner_id, external_id)
);

CREATE TABLE returns (
    id TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL REFERENCES transactions (id),
    partner_id TEXT NOT NULL,
    external_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    request_hash TEXT NOT NULL,
    receipt TEXT NOT NULL,
    UNIQUE (partner_id, external_id)
);

CREATE TABLE lots (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id TEXT NOT NULL,
    remaining BIGINT NOT NULL CHECK (remaining >= 0),
    earned_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    matures_at BIGINT,
    transaction_id TEXT,
    origin TEXT NOT NULL
);
CREATE INDEX lots_open ON lots (member_id) WHERE remaining > 0;

CREATE TABLE entries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account TEXT NOT NULL,
    member_id TEXT,
    partner_id TEXT,
    amount BIGINT NOT NULL,
    code TEXT NOT NULL,
    transaction_id TEXT,
    return_id TEXT,
    recorded_at BIGINT NOT NULL
);

CREATE TABLE activity (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    points BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL,
    partner_id TEXT,
    transaction_id TEXT,
    description TEXT NOT NULL
);
CREATE INDEX activity_member ON activity (member_id, id);

CREATE TABLE idempotency_keys (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (principal, key)
);
