-- Security events ("was this you?" screens, the admin audit view, webhooks).
-- No foreign keys: an account's history outlives the account (its
-- account_deleted event names it), and a pruned session leaves its events.
-- No column ever holds a password, code, token or secret.
CREATE TABLE auth_events (
    id          uuid PRIMARY KEY,
    type        text NOT NULL,
    user_id     uuid,
    session_id  uuid,
    ip          text,
    user_agent  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    detail      jsonb NOT NULL DEFAULT '{}'
);
-- GET /api/me/events: one user's, newest first.
CREATE INDEX auth_events_user_created_idx ON auth_events (user_id, created_at DESC, id DESC);
-- GET /api/admin/events and retention: everyone's, newest first.
CREATE INDEX auth_events_created_idx ON auth_events (created_at DESC, id DESC);
