-- Idempotency-Key answers kept before 0003 could hold a new API key in plain text.
-- Answers that carry a secret are no longer kept; drop any that were.
DELETE FROM idempotency_keys WHERE body LIKE '%"key":"tk_%';
