-- Shared wallets: a household's or a business's pooled points. A wallet holds its own
-- balances and lots (lots.member_id holds the wallet's id for its lots, as
-- activity.member_id does for its history), and its entries are written to
-- `wallet:<id>:available|pending` with entries.member_id naming the member who earned
-- or spent them.
CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    owner_id TEXT REFERENCES members (id),
    company_name TEXT,
    vat_id TEXT,
    created_at INTEGER NOT NULL,
    closed_at INTEGER,
    available INTEGER NOT NULL DEFAULT 0 CHECK (available >= 0),
    pending INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0),
    lifetime_earned INTEGER NOT NULL DEFAULT 0,
    next_due_at INTEGER
);
CREATE INDEX wallets_due ON wallets (next_due_at) WHERE next_due_at IS NOT NULL;
-- Who belongs to a wallet, with which rights. `kind` repeats the wallet's so that one
-- index keeps a member in one household at most.
CREATE TABLE wallet_members (
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    member_id TEXT NOT NULL REFERENCES members (id),
    kind TEXT NOT NULL,
    role TEXT NOT NULL,
    earn_into INTEGER NOT NULL,
    spend INTEGER NOT NULL,
    joined_at INTEGER NOT NULL,
    left_at INTEGER,
    PRIMARY KEY (wallet_id, member_id)
);
CREATE UNIQUE INDEX wallet_members_one_household ON wallet_members (member_id)
    WHERE kind = 'household' AND left_at IS NULL;
CREATE INDEX wallet_members_member ON wallet_members (member_id);
-- Invitations to a household, by code: only the code's hash is kept.
CREATE TABLE wallet_invites (
    code_hash TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_by TEXT,
    used_at INTEGER
);
-- With a ladder per household, the household's standing, as on a member's row.
ALTER TABLE wallets ADD COLUMN tier TEXT;
ALTER TABLE wallets ADD COLUMN tier_earned TEXT;
ALTER TABLE wallets ADD COLUMN tier_qualifying INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN tier_period_start INTEGER;
ALTER TABLE wallets ADD COLUMN tier_previous_qualifying INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN tier_review_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD COLUMN tier_reached_at INTEGER;
ALTER TABLE wallets ADD COLUMN tier_manual_until INTEGER;
ALTER TABLE wallets ADD COLUMN tier_review_at INTEGER;
CREATE INDEX wallets_tier_review ON wallets (tier_review_at) WHERE tier_review_at IS NOT NULL;
-- The household whose tier qualifying a sale counted in (a ladder per household).
ALTER TABLE transactions ADD COLUMN tier_household TEXT;
-- The shared wallet a sale uses when the till names none.
ALTER TABLE members ADD COLUMN wallet_default TEXT;
-- The shared wallet a sale used, and how: 1 earned into it, 2 paid from it, 3 both.
ALTER TABLE transactions ADD COLUMN wallet_id TEXT;
ALTER TABLE transactions ADD COLUMN wallet_route INTEGER;
-- A wallet's statement reads its entries; only wallet entries are indexed, so a sale
-- without a shared wallet writes no more than before. Queries repeat the condition.
CREATE INDEX entries_wallet ON entries (account) WHERE account LIKE 'wallet:%';
