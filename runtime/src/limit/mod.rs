//! Applying the rate limits, whichever backend holds their state: in this process (the cells
//! and the failure table of [`crate::rate`]) or in Redis (`redis.rs`, feature `redis`); what a
//! limit answers, and a backend that cannot, in `outcome.rs`.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Config, LimitBackend};
pub(crate) mod outcome;
#[cfg(feature = "redis")]
pub(crate) mod redis;

use crate::rate::{Clock, FailureTable, GcraCell, RateSpec};
use outcome::Limit;

/// The limits of one application: per-key rates and the per-address failure limit.
pub(crate) struct Limiter {
    clock: Clock,
    /// In-process failure table (memory backend with a failure limit).
    failures: Option<FailureTable>,
    failure_limit_on: bool,
    #[cfg(feature = "redis")]
    redis: Option<redis::RedisLimiter>,
}

impl Limiter {
    pub fn new(config: &Config) -> Self {
        let memory = config.rate_limit_backend == LimitBackend::Memory;
        Limiter {
            clock: Clock::new(),
            failures: config
                .failure_limit
                .filter(|_| memory)
                .map(|spec| FailureTable::new(spec, config.failure_table_size)),
            failure_limit_on: config.failure_limit.is_some(),
            #[cfg(feature = "redis")]
            redis: (!memory).then(|| redis::RedisLimiter::new(config)),
        }
    }

    /// Whether failed authentications are limited at all.
    pub fn limits_failures(&self) -> bool {
        self.failure_limit_on
    }

    /// The addresses the in-process failure table remembers now; `None` without one.
    #[cfg(feature = "metrics")]
    pub fn failure_table_in_use(&self) -> Option<usize> {
        let table = self.failures.as_ref()?;
        Some(table.in_use(self.clock.now()))
    }

    /// Starts what needs the runtime (the Redis connection); called at liftoff.
    pub fn start(&self) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            redis.connect();
        }
    }

    /// Counts a request of the key `name` against its `rate=`, if it has one: `cell` is the
    /// key's in-process state.
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    pub async fn admit(&self, name: &str, rate: Option<RateSpec>, cell: &GcraCell) -> Limit {
        let Some(spec) = rate else {
            return Limit::Pass;
        };
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            return redis.acquire_key(name, spec).await;
        }
        wait(cell.check(spec.gcra(), self.clock.now(), true))
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
