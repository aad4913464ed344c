//! Input types that are valid by construction: parse, don't validate.

pub mod password;
pub mod username;

pub use password::Password;
pub use username::Username;
