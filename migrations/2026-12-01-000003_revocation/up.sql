-- Sessions revoked recently, for immediate revocation of access tokens
-- (README "Immediate revocation"): every instance loads the rows of the
-- last access-token lifetime at start and polls them while its LISTEN
-- connection is down. No foreign key: a deleted account's sessions cascade
-- away, but their access tokens must stay refused until they expire.
-- Rows older than the revocation window are pruned by the instances.
CREATE TABLE session_revocations (
    session_id  uuid PRIMARY KEY,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_revocations_revoked_at_idx ON session_revocations (revoked_at);
