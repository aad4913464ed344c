//! Input types that are valid by construction: parse, don't validate.

pub mod email;
pub mod passkey_name;
pub mod password;
pub mod username;

pub use email::EmailAddress;
pub use passkey_name::PasskeyName;
pub use password::Password;
pub use username::Username;
