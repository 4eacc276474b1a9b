-- A cap's counter key now starts with the member, then the period, then the rule
-- (`<member>:<period>:<period key>:<rule>`, was `<rule>:cap:<period>:<period key>:<member>`),
-- so the caps one sale counts are neighbours in rule_counters' key order: one page
-- changed per sale instead of one per capped rule. Budget keys (`<rule>:budget`) keep
-- their form. Counters in use and the keys saved with awards (which returns give back
-- to) move to the new form, so no cap starts over.
CREATE TEMP TABLE cap_key_moves AS
WITH old_keys AS (
    SELECT key AS old FROM rule_counters WHERE instr(key, ':cap:') > 0
    UNION
    SELECT j.value FROM rule_awards, json_each(rule_awards.counter_keys) AS j
    WHERE instr(j.value, ':cap:') > 0
), parts AS (
    SELECT old,
           substr(old, 1, instr(old, ':cap:') - 1) AS rule,
           substr(old, instr(old, ':cap:') + 5) AS rest
    FROM old_keys
), split AS (
    -- rest is `<period>:<period key>:<member>`; after_period is `<period key>:<member>`.
    SELECT old, rule, rest, substr(rest, instr(rest, ':') + 1) AS after_period FROM parts
)
SELECT old,
       substr(after_period, instr(after_period, ':') + 1) || ':'
           || substr(rest, 1, instr(rest, ':') + instr(after_period, ':') - 1) || ':'
           || rule AS new
FROM split;

UPDATE rule_counters SET key = (SELECT new FROM cap_key_moves WHERE old = rule_counters.key)
WHERE key IN (SELECT old FROM cap_key_moves);

UPDATE rule_awards SET counter_keys = (
    SELECT json_group_array(COALESCE((SELECT new FROM cap_key_moves WHERE old = j.value), j.value))
    FROM json_each(rule_awards.counter_keys) AS j
)
WHERE instr(counter_keys, ':cap:') > 0;

DROP TABLE cap_key_moves;
