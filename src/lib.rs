//! tessera: a JWT authentication microservice.
//!
//! The layers, top to bottom (each uses only those below it):
//!
//! - [`app`]: process setup — command line, configuration, startup,
//!   shared state.
//! - [`routes`]: thin handlers, one file per area; [`http`]: the request
//!   plumbing every route shares (request id, access log, error envelope,
//!   JSON bodies, client IP, rate limiting, error → response mapping).
//! - [`services`]: the use cases. Every state change is one function here
//!   that owns its transaction; handlers and the CLI call only these.
//!   [`jobs`]: background work that starts and stops with the server.
//! - [`auth`]: every cryptographic decision (keys, tokens, the guard,
//!   password hashing, refresh tokens); [`domain`]: parsed input types;
//!   [`limiter`]: the rate-limit decision behind a small trait.
//! - [`db`]: synchronous queries over `&mut PgConnection`;
//!   [`blocking`]: moves them and bcrypt off the async workers.
//! - [`error`]: the one domain error; [`metrics`]: domain counters.

pub mod app;
pub mod auth;
pub mod blocking;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod limiter;
pub mod metrics;
pub mod routes;
pub mod services;

pub use app::{cli, config, startup, state};
