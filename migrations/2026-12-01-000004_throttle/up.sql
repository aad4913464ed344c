-- Brute-force defence (README "Brute-force defence"), shared by every
-- instance on this database.

-- Consecutive failed password checks per login name. The key is the SHA-256
-- of the lower-cased name as typed (any string: unknown names count the
-- same), so odd or huge names never reach the table raw.
CREATE TABLE login_throttle (
    name_hash bytea PRIMARY KEY,
    failures integer NOT NULL,
    blocked_until timestamptz,
    updated_at timestamptz NOT NULL
);
-- The pruning job deletes by age.
CREATE INDEX login_throttle_updated_at ON login_throttle (updated_at);

-- The per-client-IP budget (GCRA): `tat` is the theoretical arrival time of
-- the next attempt; a key whose `tat` has passed holds a full budget.
-- `allowed` is the decision of the last attempt (the statement that counts
-- an attempt returns it, as RETURNING sees only the new row).
CREATE TABLE rate_limits (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL,
    allowed boolean NOT NULL
);
CREATE INDEX rate_limits_tat ON rate_limits (tat);
