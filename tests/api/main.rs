//! Integration tests: the real server over HTTP against real PostgreSQL.

mod chaos_proxy;
mod helpers;
mod smtp_sink;
mod test_db;

mod account;
mod admin;
mod auth_flow;
mod email;
mod errors;
mod events;
mod guard;
mod limits;
mod meta;
mod observability;
mod openapi_contract;
mod outage;
mod process;
mod races;
mod resource_limits;
mod sessions;
mod webhooks;
