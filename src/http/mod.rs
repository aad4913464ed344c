//! Request plumbing that every route shares: request ids, the access log,
//! the error envelope, JSON bodies, the client IP, the per-IP rate limit and
//! keyset paging.
//! Nothing here knows about accounts or sessions.

pub mod access_log;
pub mod client_ip;
pub mod envelope;
pub mod error;
pub mod json_body;
pub mod paging;
pub mod rate_limit;
pub mod request_id;
