//! Request plumbing that every route shares: request ids, the access log,
//! the error envelope, JSON bodies, the client IP and the per-IP rate limit.
//! Nothing here knows about accounts or sessions.

pub mod access_log;
pub mod client_ip;
pub mod envelope;
pub mod error;
pub mod json_body;
pub mod rate_limit;
pub mod request_id;
