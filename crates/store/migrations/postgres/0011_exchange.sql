-- Exchange with other programmes (an airline's miles, a hotel chain's points). A partner
-- is its spec (JSON: name, unit name, direction, rate, minimum, step, daily limit). An
-- order takes a member's points to exchange:<id>:pending until the operator's back end
-- confirms it (on to exchange:<id>:out) or fails it (back to her, as the lots in
-- `taken`). A credit brings units in as points, once per the other programme's reference.
CREATE TABLE exchange_partners (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE exchange_orders (
    id TEXT PRIMARY KEY,
    exchange_partner_id TEXT NOT NULL REFERENCES exchange_partners (id),
    member_id TEXT NOT NULL REFERENCES members (id),
    request_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    points BIGINT NOT NULL CHECK (points > 0),
    units BIGINT NOT NULL CHECK (units > 0),
    external_member TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
    taken TEXT NOT NULL,
    failure_reason TEXT,
    receipt TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT,
    UNIQUE (member_id, request_id)
);
-- Her daily limit, and the lists by member and by partner and status.
CREATE INDEX exchange_orders_member ON exchange_orders (member_id, exchange_partner_id, created_at);
CREATE INDEX exchange_orders_partner ON exchange_orders (exchange_partner_id, created_at);

CREATE TABLE exchange_credits (
    id TEXT PRIMARY KEY,
    exchange_partner_id TEXT NOT NULL REFERENCES exchange_partners (id),
    member_id TEXT NOT NULL REFERENCES members (id),
    reference TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    units BIGINT NOT NULL CHECK (units > 0),
    points BIGINT NOT NULL CHECK (points > 0),
    receipt TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (exchange_partner_id, reference)
);
CREATE INDEX exchange_credits_member ON exchange_credits (member_id, exchange_partner_id, created_at);
CREATE INDEX exchange_credits_partner ON exchange_credits (exchange_partner_id, created_at);
