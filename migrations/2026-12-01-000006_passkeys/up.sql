-- Passkeys (README "Passkeys"). A user's WebAuthn user handle is the
-- 16 bytes of users.id, so no new column on users is needed.
CREATE TABLE passkeys (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The authenticator's credential id (rawId); one account only.
    credential_id   bytea NOT NULL,
    -- webauthn-rs' serialised Passkey: public key, counter, flags. The
    -- columns below copy what the service reads or shows.
    passkey         jsonb NOT NULL,
    sign_count      bigint NOT NULL DEFAULT 0,
    backup_eligible boolean NOT NULL DEFAULT false,
    backup_state    boolean NOT NULL DEFAULT false,
    name            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id)
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id, created_at);

-- Ceremonies in flight: webauthn-rs' serialised state, kept here so that
-- any instance can finish what another started. Used once (deleted by the
-- finish that reads it), valid until expires_at.
CREATE TABLE webauthn_challenges (
    id          uuid PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('registration', 'authentication')),
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    state       jsonb NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX webauthn_challenges_expires_idx ON webauthn_challenges (expires_at);
