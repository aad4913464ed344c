//! Rate limits behind one small trait, so the store can change and services
//! can key a limit by whatever they know. The default store is PostgreSQL
//! ([`Postgres`]), so one budget holds across every instance on the
//! database; [`InMemory`] is per process.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::blocking::run_db;
use crate::db::{throttle, DbPool};
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

/// The same GCRA as [`InMemory`] (a burst of `per_minute`, refilled one
/// every `60 / per_minute` seconds), kept in PostgreSQL's `rate_limits`
/// table: one `INSERT … ON CONFLICT … DO UPDATE … RETURNING` per attempt,
/// timed by the database's clock, so every instance draws on one budget.
pub struct Postgres {
    pool: DbPool,
    interval: f64,
}

/// The window a per-minute budget refills over.
const PERIOD_SECONDS: f64 = 60.0;

impl Postgres {
    /// A shared limiter allowing `per_minute` attempts per key and action.
    pub fn per_minute(pool: DbPool, per_minute: NonZeroU32) -> Self {
        Self {
            pool,
            interval: PERIOD_SECONDS / f64::from(per_minute.get()),
        }
    }
}

impl RateLimiter for Postgres {
    fn check<'a>(&'a self, key: &'a str, action: Action) -> Check<'a> {
        let stored_key = format!("{action:?}:{key}");
        let interval = self.interval;
        Box::pin(async move {
            let decision = run_db(&self.pool, move |conn| {
                throttle::take_from_budget(conn, &stored_key, interval, PERIOD_SECONDS)
            })
            .await?;
            if decision.allowed {
                return Ok(Decision::Allowed);
            }
            // Retry once the next attempt's arrival time fits the window.
            let wait = decision.ahead_seconds + interval - PERIOD_SECONDS;
            Ok(Decision::RetryAfter(
                Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO),
            ))
        })
    }
}

/// The limiter `AUTH_RATE_LIMIT_PER_MINUTE` asks for: shared through the
/// database, or none at 0.
pub fn for_auth(per_minute: u32, pool: DbPool) -> Box<dyn RateLimiter> {
    match NonZeroU32::new(per_minute) {
        Some(per_minute) => Box::new(Postgres::per_minute(pool, per_minute)),
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
        let limiter = Unlimited;
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
