//! Every cryptographic decision of tessera: keys, access tokens, the guard,
//! password hashing and refresh-token sealing.

pub mod guard;
pub mod keys;
pub mod password;
#[cfg(test)]
mod properties;
pub mod refresh_token;
pub mod revocation;
pub mod token_cache;
pub mod tokens;
