-- The operator's sign-up address, where a member's share link (/r/{code}) sends its
-- visitor with her referral code; none: share links answer 404.
ALTER TABLE program ADD COLUMN referral_signup_url TEXT;
