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
    created_at INTEGER NOT NULL,
    PRIMARY KEY (partner_id, effective_from)
);

-- A closed period (`YYYY-MM`): the last entry its close saw (entries after it settle in
-- a later period), the rates it was closed at, what members held after it, and its
-- netting view as served with its SHA-256.
CREATE TABLE settlement_periods (
    period TEXT PRIMARY KEY,
    closed_at INTEGER NOT NULL,
    last_entry_id INTEGER NOT NULL,
    fx_rates TEXT NOT NULL,
    closing_outstanding INTEGER NOT NULL,
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
CREATE TRIGGER settlement_periods_final_update BEFORE UPDATE ON settlement_periods
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER settlement_periods_final_delete BEFORE DELETE ON settlement_periods
BEGIN SELECT RAISE(ABORT, 'a closed period never changes'); END;
CREATE TRIGGER settlement_statements_final_update BEFORE UPDATE ON settlement_statements
BEGIN SELECT RAISE(ABORT, 'a closed statement never changes'); END;
CREATE TRIGGER settlement_statements_final_delete BEFORE DELETE ON settlement_statements
BEGIN SELECT RAISE(ABORT, 'a closed statement never changes'); END;

-- Statements read the programme side's entries of a period by when they were recorded;
-- members' and wallets' entries (half of them) stay out of the index.
CREATE INDEX entries_books ON entries (recorded_at)
WHERE account NOT LIKE 'member:%' AND account NOT LIKE 'wallet:%';
