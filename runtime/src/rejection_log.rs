//! The bound on `request rejected` events: at most `rejected_log_limit` a second, the rest
//! counted and reported in one summary event.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use crate::target::TARGET;

/// Bounds the `request rejected` events to `rejected_log_limit` per second of wall time, so a
/// flood of bad keys cannot make logging the server's bottleneck. Rejections over the limit are
/// counted and reported in one summary event per second; the usage figures count every one.
#[derive(Debug)]
pub(crate) struct RejectionLog {
    /// Events per second; 0 logs every rejection.
    limit: u64,
    origin: Instant,
    /// The current one-second window, in whole seconds since `origin`.
    window: AtomicU64,
    /// Events logged in the current window (may run past `limit`: only the first ones log).
    logged: AtomicU64,
    /// Rejections not logged since the last summary.
    suppressed: AtomicU64,
}

impl RejectionLog {
    pub(crate) fn new(limit: u32) -> Self {
        RejectionLog {
            limit: limit.into(),
            origin: Instant::now(),
            window: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether this rejection may be logged; if not, it is counted for the next summary.
    pub(crate) fn admit(&self) -> bool {
        self.limit == 0 || self.admit_at(self.now())
    }

    /// Closes the current window if its second is over, logging the summary of what it held
    /// back. Called by every rejection and once a second by
    /// [`summarise_periodically`](crate::log::summarise_periodically).
    pub(crate) fn roll(&self) {
        if let Some(n) = self.roll_at(self.now()) {
            summary(n, self.limit);
        }
    }

    /// Logs the summary of whatever has not been logged yet (at shutdown).
    pub(crate) fn flush(&self) {
        let n = self.suppressed.swap(0, Relaxed);
        if n > 0 {
            summary(n, self.limit);
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_secs()
    }

    fn admit_at(&self, now: u64) -> bool {
        if let Some(n) = self.roll_at(now) {
            summary(n, self.limit);
        }
        if self.logged.fetch_add(1, Relaxed) < self.limit {
            return true;
        }
        self.suppressed.fetch_add(1, Relaxed);
        false
    }

    /// Starts the window of second `now` if it is a later one; returns the number of
    /// rejections to report, if any. Exactly one caller wins the switch, so each held-back
    /// rejection is reported once.
    fn roll_at(&self, now: u64) -> Option<u64> {
        let current = self.window.load(Relaxed);
        if now <= current
            || self
                .window
                .compare_exchange(current, now, Relaxed, Relaxed)
                .is_err()
        {
            return None;
        }
        self.logged.store(0, Relaxed);
        let n = self.suppressed.swap(0, Relaxed);
        (n > 0).then_some(n)
    }
}

/// `WARN`: how many rejections were counted but not logged one by one.
fn summary(suppressed: u64, limit: u64) {
    tracing::warn!(
        target: TARGET,
        suppressed,
        limit,
        "request rejections not logged"
    );
}

#[cfg(test)]
mod tests {
    use super::RejectionLog;

    #[test]
    fn logs_up_to_the_limit_each_second_and_reports_the_rest_once() {
        let log = RejectionLog::new(3);
        let admitted = (0..10).filter(|_| log.admit_at(0)).count();
        assert_eq!(admitted, 3);
        assert_eq!(log.roll_at(0), None, "the second is not over");
        assert_eq!(log.roll_at(1), Some(7));
        assert_eq!(log.roll_at(1), None, "reported once");
        assert!(
            (0..3).all(|_| log.admit_at(1)),
            "a new second, a new allowance"
        );
        assert!(!log.admit_at(1));
        assert_eq!(log.roll_at(5), Some(1));
        assert_eq!(log.roll_at(6), None, "nothing held back, nothing to report");
    }

    #[test]
    fn a_rejection_in_a_later_second_reports_the_earlier_ones() {
        let log = RejectionLog::new(1);
        assert!(log.admit_at(0));
        assert!(!log.admit_at(0));
        assert!(!log.admit_at(0));
        // The first rejection of second 2 rolls the window (reporting 2) and is logged.
        assert!(log.admit_at(2));
        assert_eq!(log.suppressed.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn zero_means_no_limit() {
        let log = RejectionLog::new(0);
        assert!((0..10_000).all(|_| log.admit()));
        log.flush();
    }

    #[test]
    fn flush_reports_what_is_held_back() {
        let log = RejectionLog::new(1);
        assert!(log.admit_at(0));
        assert!(!log.admit_at(0));
        log.flush();
        assert_eq!(log.roll_at(1), None, "already reported");
    }
}
