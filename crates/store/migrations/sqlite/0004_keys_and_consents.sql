-- API keys can be revoked (kept, for the record, with the time of revocation), and a
-- member's consent to share their personal data with a partner is recorded.
ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
CREATE INDEX api_keys_partner ON api_keys (partner_id);

CREATE TABLE member_consents (
    member_id TEXT NOT NULL REFERENCES members (id),
    partner_id TEXT NOT NULL REFERENCES partners (id),
    granted_at INTEGER NOT NULL,
    withdrawn_at INTEGER,
    PRIMARY KEY (member_id, partner_id)
);
