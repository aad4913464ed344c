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
        amr -> Array<Text>,
        auth_time -> Timestamptz,
    }
}

diesel::table! {
    session_revocations (session_id) {
        session_id -> Uuid,
        revoked_at -> Timestamptz,
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

diesel::table! {
    mfa_totp (user_id) {
        user_id -> Uuid,
        secret_sealed -> Bytea,
        confirmed_at -> Nullable<Timestamptz>,
        last_used_step -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mfa_recovery_codes (user_id, code_hash) {
        user_id -> Uuid,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mfa_challenges (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        failures -> Int4,
    }
}

diesel::table! {
    mfa_failures (user_id) {
        user_id -> Uuid,
        window_start -> Timestamptz,
        failures -> Int4,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Uuid,
        user_id -> Uuid,
        credential_id -> Bytea,
        passkey -> Jsonb,
        sign_count -> Int8,
        backup_eligible -> Bool,
        backup_state -> Bool,
        name -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webauthn_challenges (id) {
        id -> Uuid,
        kind -> Text,
        user_id -> Nullable<Uuid>,
        state -> Jsonb,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(one_time_tokens -> users (user_id));

diesel::table! {
    login_throttle (name_hash) {
        name_hash -> Bytea,
        failures -> Int4,
        blocked_until -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    rate_limits (key) {
        key -> Text,
        tat -> Timestamptz,
        allowed -> Bool,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    auth_events,
    login_throttle,
    mfa_challenges,
    mfa_failures,
    mfa_recovery_codes,
    mfa_totp,
    one_time_tokens,
    outbox,
    rate_limits,
    refresh_tokens,
    session_revocations,
    sessions,
    users,
);
diesel::joinable!(passkeys -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(passkeys, users);
