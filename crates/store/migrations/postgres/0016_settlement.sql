-- Settlement: the prices of points, closed periods and their statements.
--
-- A price version is the programme's (`partner_id` '') or one partner's, in effect from
-- a UTC day (`YYYY-MM-DD`) until the next version of the same scope. Prices are decimal
-- text in programme currency.
CREATE TABLE settlement_prices (
    partner_id TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    issue_price TEXT NOT NULL,
    reimbursement_rate TEXT NOT NULL,
    monthly_fee TEXT NOT NULL,
    redemption_fee_percent TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (partner_id, effective_from)
);

-- A closed period (`YYYY-MM`): the last entry its close saw (entries after it settle in
-- a later period), the rates it was closed at, what members held after it, and its
-- netting view as served with its SHA-256.
CREATE TABLE settlement_periods (
    period TEXT PRIMARY KEY,
    closed_at BIGINT NOT NULL,
    last_entry_id BIGINT NOT NULL,
    fx_rates TEXT NOT NULL,
    closing_outstanding BIGINT NOT NULL,
    netting TEXT NOT NULL,
    content_hash TEXT NOT NULL
);

-- Each partner's statement of a closed period, as served, with its SHA-256.
CREATE TABLE settlement_statements (
    period TEXT NOT NULL REFERENCES settlement_periods (period),
    partner_id TEXT NOT NULL,
    body TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (period, partner_id)
);

-- A closed period never changes: there is no reopening.
CREATE FUNCTION settlement_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a closed period never changes';
END;
$$;
CREATE TRIGGER settlement_periods_final BEFORE UPDATE OR DELETE ON settlement_periods
FOR EACH ROW EXECUTE FUNCTION settlement_final();
CREATE TRIGGER settlement_statements_final BEFORE UPDATE OR DELETE ON settlement_statements
FOR EACH ROW EXECUTE FUNCTION settlement_final();

-- Statements read the programme side's entries of a period by when they were recorded.
-- Entries are appended in time order, so a BRIN index finds a period's pages for a few
-- bytes per thousand rows and costs the sales next to nothing.
CREATE INDEX entries_books ON entries USING brin (recorded_at)
WHERE account NOT LIKE 'member:%' AND account NOT LIKE 'wallet:%';
