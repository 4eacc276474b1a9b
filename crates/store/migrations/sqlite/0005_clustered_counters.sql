-- Tables read and written by their key alone keep their rows in the key's b-tree
-- (WITHOUT ROWID): a sale that bumps a member's visits, a rule counter or writes an
-- award changes one page instead of a table page and an index page.
CREATE TABLE member_partners_clustered (
    member_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    visits INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (member_id, partner_id)
) WITHOUT ROWID;
INSERT INTO member_partners_clustered (member_id, partner_id, visits, first_at, last_at)
    SELECT member_id, partner_id, visits, first_at, last_at FROM member_partners;
DROP TABLE member_partners;
ALTER TABLE member_partners_clustered RENAME TO member_partners;

CREATE TABLE rule_counters_clustered (
    key TEXT PRIMARY KEY,
    used INTEGER NOT NULL CHECK (used >= 0)
) WITHOUT ROWID;
INSERT INTO rule_counters_clustered (key, used) SELECT key, used FROM rule_counters;
DROP TABLE rule_counters;
ALTER TABLE rule_counters_clustered RENAME TO rule_counters;

CREATE TABLE rule_awards_clustered (
    transaction_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    rule_version INTEGER NOT NULL,
    points INTEGER NOT NULL CHECK (points > 0),
    reversed INTEGER NOT NULL DEFAULT 0,
    counter_keys TEXT NOT NULL,
    PRIMARY KEY (transaction_id, rule_id)
) WITHOUT ROWID;
INSERT INTO rule_awards_clustered (transaction_id, rule_id, rule_version, points, reversed, counter_keys)
    SELECT transaction_id, rule_id, rule_version, points, reversed, counter_keys FROM rule_awards;
DROP TABLE rule_awards;
ALTER TABLE rule_awards_clustered RENAME TO rule_awards;
