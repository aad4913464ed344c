-- Accounts, per-device sessions, and hashed refresh tokens.
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL,
    password_hash text NOT NULL,
    roles         text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_username_lower CHECK (username = lower(username))
);
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent   text,
    ip           text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- One row per refresh token ever issued. Only SHA-256 hashes are stored.
-- A spent token keeps its successor sealed under a key derived from the
-- spent token itself, so only its holder can recover it for a grace retry.
CREATE TABLE refresh_tokens (
    token_hash        bytea PRIMARY KEY,
    session_id        uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    spent_at          timestamptz,
    sealed_successor  bytea
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
