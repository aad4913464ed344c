// @generated automatically by Diesel CLI (kept in sync by hand).

diesel::table! {
    auth_events (id) {
        id -> Uuid,
        #[sql_name = "type"]
        kind -> Text,
        user_id -> Nullable<Uuid>,
        session_id -> Nullable<Uuid>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamptz,
        detail -> Jsonb,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        kind -> Text,
        user_id -> Nullable<Uuid>,
        payload -> Jsonb,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        failed_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        created_at -> Timestamptz,
        spent_at -> Nullable<Timestamptz>,
        sealed_successor -> Nullable<Bytea>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        password_hash -> Text,
        roles -> Array<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        email -> Nullable<Text>,
        email_verified -> Bool,
    }
}

diesel::table! {
    one_time_tokens (token_hash) {
        token_hash -> Bytea,
        kind -> Text,
        user_id -> Uuid,
        email -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(one_time_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(auth_events, refresh_tokens, sessions, users, outbox,);
diesel::allow_tables_to_appear_in_same_query!(one_time_tokens, users);
