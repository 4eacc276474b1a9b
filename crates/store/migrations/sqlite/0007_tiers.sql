-- Tiers that Tally computes. The ladder is kept with the programme (JSON, checked when
-- saved). A member's standing lives on the member's row, next to the balances a sale
-- writes anyway: `tier` stays the level in force (what rules read), `tier_earned` the
-- computed one underneath a level set by hand. `tier_review_at` is when the standing
-- next changes with time alone, for the scheduled review.
ALTER TABLE program ADD COLUMN tiers TEXT;
ALTER TABLE members ADD COLUMN tier_earned TEXT;
ALTER TABLE members ADD COLUMN tier_qualifying INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN tier_period_start INTEGER;
ALTER TABLE members ADD COLUMN tier_previous_qualifying INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN tier_review_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN tier_reached_at INTEGER;
ALTER TABLE members ADD COLUMN tier_manual_until INTEGER;
ALTER TABLE members ADD COLUMN tier_review_at INTEGER;
CREATE INDEX members_tier_review ON members (tier_review_at) WHERE tier_review_at IS NOT NULL;
-- What a sale added to its member's qualifying count, so a return takes back its share.
ALTER TABLE transactions ADD COLUMN tier_qualifying INTEGER NOT NULL DEFAULT 0;
CREATE TABLE tier_changes (
    id INTEGER PRIMARY KEY,
    member_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    from_tier TEXT,
    to_tier TEXT,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    transaction_id TEXT
);
CREATE INDEX tier_changes_member ON tier_changes (member_id, id);
