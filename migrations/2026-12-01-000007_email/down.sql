DROP TABLE one_time_tokens;
DROP INDEX users_email_lower_key;
ALTER TABLE users DROP COLUMN email_verified, DROP COLUMN email;
