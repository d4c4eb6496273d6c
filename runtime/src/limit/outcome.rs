//! What a rate limit says about a request, and the answer of a limit backend that cannot be reached:
//! shared by the in-process limits and the Redis backend.

use std::time::Duration;

use crate::config::UnavailablePolicy;
use crate::rate::Clock;
use crate::target::TARGET;

/// What a limit says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Within the limit.
    Pass,
    /// Over it; a request would conform after this long.
    Wait(Duration),
    /// The shared backend could not answer and the policy is `deny`.
    Unavailable,
}

/// The outcome of a limit backend that could not answer, under `policy`. Warns at most once every
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
