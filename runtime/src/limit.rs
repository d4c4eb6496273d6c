//! Applying the rate limits, whichever backend holds their state.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Backend, Config, UnavailablePolicy};
use crate::rate::{Clock, FailureTable};
use crate::store::ApiKey;
use crate::target::TARGET;

/// What a limit says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Within the limit.
    Pass,
    /// Over it; a request would conform after this long.
    Wait(Duration),
    /// The shared store could not answer and the policy is `deny`.
    Unavailable,
}

/// The limits of one application: per-key rates and the per-address failure limit.
pub(crate) struct Limiter {
    clock: Clock,
    /// In-process failure table (memory backend with a failure limit).
    failures: Option<FailureTable>,
    failure_limit_on: bool,
    #[cfg(feature = "redis")]
    redis: Option<crate::redis_limit::RedisLimiter>,
}

impl Limiter {
    pub fn new(config: &Config) -> Self {
        let memory = config.rate_limit_backend == Backend::Memory;
        Limiter {
            clock: Clock::new(),
            failures: config
                .failure_limit
                .filter(|_| memory)
                .map(|spec| FailureTable::new(spec, config.failure_table_size)),
            failure_limit_on: config.failure_limit.is_some(),
            #[cfg(feature = "redis")]
            redis: (!memory).then(|| crate::redis_limit::RedisLimiter::new(config)),
        }
    }

    /// Whether failed authentications are limited at all.
    pub fn limits_failures(&self) -> bool {
        self.failure_limit_on
    }

    /// Starts what needs the runtime (the Redis connection); called at liftoff.
    pub fn start(&self) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            redis.connect();
        }
    }

    /// Counts a request of an authenticated key against its `rate=`, if it has one.
    pub async fn admit(&self, key: &ApiKey) -> Limit {
        let Some(spec) = key.rate() else {
            return Limit::Pass;
        };
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            return redis.acquire_key(key.name(), spec).await;
        }
        wait(
            key.identity()
                .rate
                .check(spec.gcra(), self.clock.now(), true),
        )
    }

    /// The failure limit of `ip`: whether it is within it and, with `count`, a failed
    /// authentication counted against it. Checking and counting are one atomic step (a
    /// compare-and-swap, or one Redis script), so concurrent failures can never all pass a
    /// check before any of them is counted; a failure over the limit is refused, not counted.
    pub async fn failures(&self, ip: IpAddr, count: bool) -> Limit {
        if let Some(table) = &self.failures {
            return wait(table.check(ip, self.clock.now(), count));
        }
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            return redis.address(ip, count).await;
        }
        Limit::Pass
    }
}

fn wait(outcome: Option<Duration>) -> Limit {
    outcome.map_or(Limit::Pass, Limit::Wait)
}

/// The outcome of a limit store that could not answer, under `policy`. Warns at most once every
/// ten seconds, so an outage does not flood the logs.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn unreachable(
    policy: UnavailablePolicy,
    why: &dyn std::fmt::Display,
    last_warning: &std::sync::atomic::AtomicU64,
    clock: &Clock,
) -> Limit {
    use std::sync::atomic::Ordering;
    let now = clock.now();
    let previous = last_warning.load(Ordering::Relaxed);
    if (previous == 0 || now.saturating_sub(previous) > 10_000_000_000)
        && last_warning
            .compare_exchange(previous, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            target: TARGET,
            policy = ?policy,
            error = %why,
            "rate-limit store unreachable"
        );
    }
    match policy {
        UnavailablePolicy::Allow => Limit::Pass,
        UnavailablePolicy::Deny => Limit::Unavailable,
    }
}
