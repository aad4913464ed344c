-- Email on the account (README "Email"): one address per account, unique
-- case-insensitively, verified by a mailed token. The address is stored as
-- entered; lower(email) is what compares.
ALTER TABLE users
    ADD COLUMN email text,
    ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- Mailed one-time tokens (email verification, password reset). Only the
-- SHA-256 of a token is stored; a token is found by that hash alone.
CREATE TABLE one_time_tokens (
    token_hash bytea PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('verify_email', 'reset_password')),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- verify_email: the address it verifies (the account's may change since);
    -- reset_password: the address the mail went to.
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
-- The per-account reset-mail limit and the clean-up on a new address or a reset.
CREATE INDEX one_time_tokens_user_kind_idx ON one_time_tokens (user_id, kind, created_at DESC);
