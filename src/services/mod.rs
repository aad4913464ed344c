//! Use cases. Every state change is one function here that owns its
//! transaction, so the event row, the outbox row or the revocation notice
//! that a change needs is added in exactly one place. No actix in here:
//! handlers and the CLI parse input, call a service and present its result.

pub mod accounts;
pub mod email;
pub mod events;
pub mod mfa;
pub mod passkeys;
pub mod sessions;
pub mod throttle;
