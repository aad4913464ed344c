-- Second factor (README "Second factor").

-- How and when each session's sign-in happened: the `amr` and `auth_time`
-- claims of its access tokens, kept by refresh. Sessions from before this
-- migration were all password sign-ins.
ALTER TABLE sessions
    ADD COLUMN amr       text[]      NOT NULL DEFAULT '{pwd}',
    ADD COLUMN auth_time timestamptz NOT NULL DEFAULT now();
UPDATE sessions SET auth_time = created_at;

-- One TOTP secret per account, AES-256-GCM sealed (never in the clear).
-- confirmed_at NULL: a pending enrollment, not yet in force.
-- last_used_step: the newest 30 s step whose code was accepted; that step
-- and every earlier one are refused (no replay).
CREATE TABLE mfa_totp (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  bytea       NOT NULL,
    confirmed_at   timestamptz,
    last_used_step bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Recovery codes as SHA-256 hashes; used_at set on their one use.
CREATE TABLE mfa_recovery_codes (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea       NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, code_hash)
);

-- Half-finished logins: the SHA-256 of each mfa_token, so any instance can
-- finish what another began. Single use; dies at expires_at or after 5
-- wrong codes.
CREATE TABLE mfa_challenges (
    token_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    failures   integer     NOT NULL DEFAULT 0
);
CREATE INDEX mfa_challenges_user_id_idx ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_at_idx ON mfa_challenges (expires_at);

-- Wrong codes per account in the current 5-minute window, on every route.
CREATE TABLE mfa_failures (
    user_id      uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL
);
