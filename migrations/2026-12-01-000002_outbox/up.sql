-- The durable outbox: messages (webhooks, mail) written in the transaction
-- of the change they announce and delivered afterwards by a background
-- worker, at least once, in order per (kind, user). See README "Events and
-- webhooks". Delivered rows are deleted; rows that exhausted their retries
-- stay with failed_at and last_error until the retention task prunes them.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL,
    user_id          uuid,
    payload          jsonb NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    failed_at        timestamptz,
    last_error       text
);
-- The worker's scan: pending rows, oldest first.
CREATE INDEX outbox_pending_idx ON outbox (kind, id)
    WHERE sent_at IS NULL AND failed_at IS NULL;
-- The per-user order check: an earlier pending row of the same kind and user.
CREATE INDEX outbox_pending_user_idx ON outbox (kind, user_id, id)
    WHERE sent_at IS NULL AND failed_at IS NULL;
