//! A mutex lock that outlives a panicking holder: every value the crate keeps under a mutex is
//! whole at all times, so a poisoned lock is taken as it is rather than passed on as a panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, whatever panicked while it was held.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
