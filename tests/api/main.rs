//! Integration tests: the real server over HTTP against real PostgreSQL.

mod chaos_proxy;
mod helpers;
#[path = "../support/local_postgres.rs"]
mod local_postgres;
mod smtp_sink;
mod soft_passkey;
mod test_db;

mod account;
mod admin;
mod auth_flow;
mod brute_force;
mod email;
mod errors;
mod events;
mod guard;
mod limits;
mod meta;
mod mfa;
mod observability;
mod openapi_contract;
mod outage;
mod passkeys;
mod process;
mod races;
mod resource_limits;
mod revocation;
mod services;
mod sessions;
mod webhooks;
