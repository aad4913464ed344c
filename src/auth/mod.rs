//! Every cryptographic decision of tessera: keys, access tokens, the guard,
//! password hashing, refresh-token sealing, TOTP and recovery codes,
//! passkeys, and mailed one-time tokens.

pub mod bearer_secret;
pub mod guard;
pub mod keys;
pub mod one_time_token;
pub mod passkeys;
pub mod password;
#[cfg(test)]
mod properties;
pub mod recovery_codes;
pub mod refresh_token;
pub mod revocation;
pub mod token_cache;
pub mod tokens;
pub mod totp;
