//! Input types that are valid by construction: parse, don't validate.

pub mod email;
pub mod password;
pub mod username;

pub use email::EmailAddress;
pub use password::Password;
pub use username::Username;
