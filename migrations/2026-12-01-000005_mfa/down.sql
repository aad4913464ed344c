DROP TABLE mfa_failures;
DROP TABLE mfa_challenges;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_totp;
ALTER TABLE sessions DROP COLUMN auth_time, DROP COLUMN amr;
