//! Integration tests: the real server over HTTP against real PostgreSQL.

mod helpers;
mod test_db;

mod auth_flow;
mod errors;
mod meta;
