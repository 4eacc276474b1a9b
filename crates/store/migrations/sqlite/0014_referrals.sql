-- Referral rewards. The operator's policy (JSON; none: referrals never convert) says
-- when a referred member's purchase converts her referral.
ALTER TABLE program ADD COLUMN referral_policy TEXT;

-- A referral decided by the referred member's first qualifying purchase: converted
-- (referral_converted posted to both members once `rewarded`), declined (`reason`),
-- or reversed by a return of that purchase (the points taken back once `taken_back`).
-- `amount_minor` is what the purchase counted for, in programme currency. A member
-- referred but not yet decided has no row here. `referrer_id` is copied from the
-- member's `referred_by` (which keeps the reference): without a foreign key of its own,
-- deciding a referral takes no lock on the referrer's row.
CREATE TABLE referrals (
    member_id TEXT PRIMARY KEY REFERENCES members (id),
    referrer_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('converted', 'declined', 'reversed')),
    reason TEXT,
    transaction_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    decided_at INTEGER NOT NULL,
    reversed_at INTEGER,
    rewarded SMALLINT NOT NULL DEFAULT 0,
    taken_back SMALLINT NOT NULL DEFAULT 0
);
-- A referrer's conversions this month (the limit), and her list.
CREATE INDEX referrals_by_referrer ON referrals (referrer_id, decided_at);
-- What the scheduled run still has to finish: points not yet given, or not yet taken back.
CREATE INDEX referrals_unfinished ON referrals (member_id)
    WHERE (status = 'converted' AND rewarded = 0) OR (status = 'reversed' AND rewarded = 1 AND taken_back = 0);
-- The members a member invited.
CREATE INDEX members_by_referrer ON members (referred_by, created_at) WHERE referred_by IS NOT NULL;

INSERT INTO event_types (name, description, created_at) VALUES
    ('referral_converted', 'Posted by Tally to both members when a referred member''s first qualifying purchase posts', 0)
    ON CONFLICT (name) DO NOTHING;
