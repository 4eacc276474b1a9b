-- Points members send each other. The operator's policy is kept with the programme
-- (JSON; none stored: transfers closed). A transfer names both members; its ledger
-- entries (transfer_out, transfer_in through program:transfers) link to its id.
ALTER TABLE program ADD COLUMN transfer_policy TEXT;

CREATE TABLE transfers (
    id TEXT PRIMARY KEY,
    from_member TEXT NOT NULL REFERENCES members (id),
    to_member TEXT NOT NULL REFERENCES members (id),
    points BIGINT NOT NULL CHECK (points > 0),
    note TEXT,
    request_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    receipt TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (from_member, request_id)
);
-- What a member sent today and this month (the limits), and her list both ways.
CREATE INDEX transfers_from ON transfers (from_member, created_at);
CREATE INDEX transfers_to ON transfers (to_member, id);
