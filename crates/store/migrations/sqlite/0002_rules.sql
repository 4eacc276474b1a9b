-- Earning rules (versioned), their caps and budgets, the points each rule gave, what
-- rules know of members, and engagement events.
ALTER TABLE members ADD COLUMN tier TEXT;
ALTER TABLE members ADD COLUMN segments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE members ADD COLUMN plan TEXT;

CREATE TABLE earning_rules (
    id TEXT PRIMARY KEY,
    partner_id TEXT,
    current_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every version ever saved; a transaction names the version that gave its points.
CREATE TABLE earning_rule_versions (
    rule_id TEXT NOT NULL REFERENCES earning_rules (id),
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (rule_id, version)
);

-- How much of a cap (per rule, member and period) or a budget (per rule) is used.
CREATE TABLE rule_counters (
    key TEXT PRIMARY KEY,
    used INTEGER NOT NULL CHECK (used >= 0)
);

-- The points a rule with caps or a budget gave a transaction or event, the counters it
-- used, and how many returns took back (every rule's points are in the receipt).
CREATE TABLE rule_awards (
    transaction_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    rule_version INTEGER NOT NULL,
    points INTEGER NOT NULL CHECK (points > 0),
    reversed INTEGER NOT NULL DEFAULT 0,
    counter_keys TEXT NOT NULL,
    PRIMARY KEY (transaction_id, rule_id)
);

-- A member's purchases at a partner (first visit, frequency).
CREATE TABLE member_partners (
    member_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    visits INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (member_id, partner_id)
);

CREATE TABLE event_types (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO event_types (name, description, created_at) VALUES
    ('review', 'The member wrote a product review', 0),
    ('survey_answered', 'The member answered a survey', 0),
    ('referral_shared', 'The member shared a referral link', 0),
    ('check_in', 'The member checked in at a location or event', 0);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    partner_id TEXT,
    member_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    attributes TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    points_earned INTEGER NOT NULL,
    request_hash TEXT NOT NULL,
    receipt TEXT NOT NULL,
    UNIQUE (source, external_id)
);
CREATE INDEX events_member ON events (member_id, occurred_at);
