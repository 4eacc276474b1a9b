-- API keys can be revoked (kept, for the record, with the time of revocation), and a
-- member's consent to share their personal data with a partner is recorded.
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
CREATE INDEX api_keys_partner ON api_keys (partner_id);

CREATE TABLE member_consents (
    member_id TEXT NOT NULL REFERENCES members (id),
    partner_id TEXT NOT NULL REFERENCES partners (id),
    granted_at BIGINT NOT NULL,
    withdrawn_at BIGINT,
    PRIMARY KEY (member_id, partner_id)
);

-- Several servers on one database: a change to what servers cache (programme, FX
-- rates, partners, locations, API keys, earning rules, event types) is announced on the
-- channel `tally_changes` as `<schema>.<table>`, in the transaction that makes it, so
-- every server listening drops or reloads that cache as soon as it commits.
CREATE FUNCTION tally_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tally_changes', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER program_changed AFTER INSERT OR UPDATE OR DELETE ON program
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce_change();
CREATE TRIGGER fx_rates_changed AFTER INSERT OR UPDATE OR DELETE ON fx_rates
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce_change();
CREATE TRIGGER partners_changed AFTER INSERT OR UPDATE OR DELETE ON partners
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce_change();
CREATE TRIGGER locations_changed AFTER INSERT OR UPDATE OR DELETE ON locations
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce_change();
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce_change();
CREATE TRIGGER earning_rules_changed AFTER INSERT OR UPDATE OR DELETE ON earning_rules
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce_change();
CREATE TRIGGER event_types_changed AFTER INSERT OR UPDATE OR DELETE ON event_types
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce_change();
