//! Every cryptographic decision of tessera: keys, access tokens, the guard,
//! password hashing, refresh-token sealing and mailed one-time tokens.

pub mod guard;
pub mod keys;
pub mod one_time_token;
pub mod password;
#[cfg(test)]
mod properties;
pub mod refresh_token;
pub mod token_cache;
pub mod tokens;
