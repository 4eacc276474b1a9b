-- Paid memberships. Plans as the operator wrote them (JSON, checked when saved); a
-- member's memberships, with the dates their status follows from; and payments, which
-- are money, kept apart from the points ledger. `due_at` is when a membership's status
-- next changes with time alone, for the scheduled run (which keeps `members.plan`, what
-- rules read, in step).
CREATE TABLE membership_plans (
    code TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE memberships (
    id TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES members (id),
    plan_code TEXT NOT NULL REFERENCES membership_plans (code),
    started_at BIGINT NOT NULL,
    trial_until BIGINT,
    paid_until BIGINT,
    cancelled_at BIGINT,
    due_at BIGINT
);
CREATE INDEX memberships_member ON memberships (member_id);
CREATE INDEX memberships_due ON memberships (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE membership_payments (
    id TEXT PRIMARY KEY,
    membership_id TEXT NOT NULL REFERENCES memberships (id),
    external_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    bonus_points BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    request_hash TEXT NOT NULL,
    receipt TEXT NOT NULL,
    UNIQUE (membership_id, external_id)
);
CREATE INDEX membership_payments_recorded ON membership_payments (recorded_at);
-- Other servers refresh their plans (cached with the programme) when one changes.
CREATE TRIGGER membership_plans_changed AFTER INSERT OR UPDATE OR DELETE ON membership_plans
    FOR EACH STATEMENT EXECUTE FUNCTION tally_announce_change();
