-- A cap's counter key now starts with the member, then the period, then the rule
-- (`<member>:<period>:<period key>:<rule>`, was `<rule>:cap:<period>:<period key>:<member>`),
-- so the caps one sale counts are neighbours in the key index. Budget keys
-- (`<rule>:budget`) keep their form. Counters in use and the keys saved with awards
-- (which returns give back to) move to the new form, so no cap starts over.
CREATE TEMP TABLE cap_key_moves AS
SELECT old,
       split_part(old, ':', 5) || ':' || split_part(old, ':', 3) || ':'
           || split_part(old, ':', 4) || ':' || split_part(old, ':', 1) AS new
FROM (
    SELECT key AS old FROM rule_counters WHERE split_part(key, ':', 2) = 'cap'
    UNION
    SELECT e.k FROM rule_awards, json_array_elements_text(rule_awards.counter_keys::json) AS e(k)
    WHERE split_part(e.k, ':', 2) = 'cap'
) AS old_keys;

UPDATE rule_counters AS c SET key = m.new FROM cap_key_moves AS m WHERE c.key = m.old;

UPDATE rule_awards AS a SET counter_keys = (
    SELECT json_agg(COALESCE(m.new, e.k) ORDER BY e.n)::text
    FROM json_array_elements_text(a.counter_keys::json) WITH ORDINALITY AS e(k, n)
    LEFT JOIN cap_key_moves AS m ON m.old = e.k
)
WHERE a.counter_keys LIKE '%:cap:%';

DROP TABLE cap_key_moves;
