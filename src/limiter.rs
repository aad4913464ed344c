//! Rate limits behind one small trait, so the store can change (in memory
//! today; shared across instances later) and services can key a limit by
//! whatever they know (a client IP before the body is read, a username
//! after it).

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::AppResult;

/// What is being limited; one budget per action and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A login or a registration (they share one budget per client IP).
    Authenticate,
}

/// The answer of a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead (the attempt has been counted).
    Allowed,
    /// Over the limit: try again after this long.
    RetryAfter(Duration),
}

impl Decision {
    /// Whole seconds to put in `Retry-After`: rounded up and at least 1,
    /// since "Retry-After: 0" would invite an immediate retry.
    pub fn retry_after_seconds(wait: Duration) -> u64 {
        (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
    }
}

/// The future a limiter answers with.
pub type Check<'a> = Pin<Box<dyn Future<Output = AppResult<Decision>> + Send + 'a>>;

/// Counts an attempt of `action` by `key` and says whether it may proceed.
pub trait RateLimiter: Send + Sync {
    /// Counts one attempt and decides.
    fn check<'a>(&'a self, key: &'a str, action: Action) -> Check<'a>;
}

/// Never limits (`AUTH_RATE_LIMIT_PER_MINUTE=0`).
pub struct Unlimited;

impl RateLimiter for Unlimited {
    fn check<'a>(&'a self, _key: &'a str, _action: Action) -> Check<'a> {
        Box::pin(async { Ok(Decision::Allowed) })
    }
}

/// An in-process limiter (governor's GCRA): a burst of `per_minute`
/// attempts per key, refilled evenly over a minute. One instance's memory,
/// so N instances allow N budgets.
pub struct InMemory {
    limiter: DefaultKeyedRateLimiter<(Action, String)>,
}

impl InMemory {
    /// A limiter allowing `per_minute` attempts per key and action.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        Self {
            limiter: governor::RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }
}

impl RateLimiter for InMemory {
    fn check<'a>(&'a self, key: &'a str, action: Action) -> Check<'a> {
        let decision = match self.limiter.check_key(&(action, key.to_owned())) {
            Ok(()) => Decision::Allowed,
            Err(not_until) => {
                Decision::RetryAfter(not_until.wait_time_from(DefaultClock::default().now()))
            }
        };
        Box::pin(async move { Ok(decision) })
    }
}

/// The limiter `AUTH_RATE_LIMIT_PER_MINUTE` asks for.
pub fn for_auth(per_minute: u32) -> Box<dyn RateLimiter> {
    match NonZeroU32::new(per_minute) {
        Some(per_minute) => Box::new(InMemory::per_minute(per_minute)),
        None => Box::new(Unlimited),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_burst_is_allowed_then_the_next_attempt_waits() {
        let limiter = InMemory::per_minute(NonZeroU32::new(3).unwrap());
        for _ in 0..3 {
            assert_eq!(
                limiter.check("k", Action::Authenticate).await.unwrap(),
                Decision::Allowed
            );
        }
        let Decision::RetryAfter(wait) = limiter.check("k", Action::Authenticate).await.unwrap()
        else {
            panic!("the fourth attempt was allowed");
        };
        assert!(wait <= Duration::from_secs(20), "{wait:?}");
        assert_eq!(
            limiter.check("other", Action::Authenticate).await.unwrap(),
            Decision::Allowed
        );
    }

    #[actix_web::test]
    async fn zero_disables_the_limit() {
        let limiter = for_auth(0);
        for _ in 0..100 {
            assert_eq!(
                limiter.check("k", Action::Authenticate).await.unwrap(),
                Decision::Allowed
            );
        }
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        assert_eq!(Decision::retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(
            Decision::retry_after_seconds(Duration::from_millis(1500)),
            2
        );
        assert_eq!(Decision::retry_after_seconds(Duration::from_secs(3)), 3);
    }
}
