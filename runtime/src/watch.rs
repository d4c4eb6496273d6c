//! The watcher started at liftoff: polls the keys file and honours SIGHUP, reloading the store
//! off the request path and logging the outcome. It ends with the server.

use rocket::Shutdown;

use crate::audit::Audit;
use crate::load::NameList;
use crate::load::{LoadErrors, ReloadSummary};
use crate::store::ApiKeyStore;
use crate::target::TARGET;

/// The watcher started at liftoff; ends with the server.
pub(crate) async fn watch(keys: ApiKeyStore, shutdown: Shutdown, mut hangup: Hangup) {
    use rocket::tokio::time::{interval, MissedTickBehavior};

    let config = keys.config().clone();
    let poll = config
        .keys_file
        .clone()
        .filter(|_| !config.reload_interval.is_zero());
    let mut ticker = interval(
        config
            .reload_interval
            .max(std::time::Duration::from_millis(100)),
    );
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    rocket::tokio::pin!(shutdown);
    loop {
        rocket::tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick(), if poll.is_some() => {
                keys.collect_retired();
                let Some(path) = poll.as_deref() else { continue };
                // A reload in progress holds the lock: skip this tick rather than block a worker.
                if keys.keys_file_changed(path) == Some(true) {
                    reload_and_log(&keys, "file").await;
                }
            }
            Some(()) = next_hangup(&mut hangup) => reload_and_log(&keys, "sighup").await,
        }
    }
}

#[cfg(unix)]
pub(crate) type Hangup = Option<rocket::tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub(crate) type Hangup = Option<std::convert::Infallible>;

#[cfg(unix)]
pub(crate) fn hangup_signal(enabled: bool) -> Hangup {
    use rocket::tokio::signal::unix::{signal, SignalKind};
    if !enabled {
        return None;
    }
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(
                target: TARGET,
                error = %e,
                "cannot listen for SIGHUP, reload by signal is off"
            );
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal(_enabled: bool) -> Hangup {
    None
}

/// The next SIGHUP; pending forever when not listening.
async fn next_hangup(hangup: &mut Hangup) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        return signal.recv().await;
    }
    let _ = hangup;
    std::future::pending().await
}

/// Reloads, logging the outcome: a summary when something changed, every error otherwise.
async fn reload_and_log(keys: &ApiKeyStore, trigger: &'static str) {
    reload_with(keys, trigger, ApiKeyStore::reload).await
}

/// Runs `reload` off the request path and logs its outcome as [`reload_and_log`] does.
pub(crate) async fn reload_with(
    keys: &ApiKeyStore,
    trigger: &'static str,
    reload: impl FnOnce(&ApiKeyStore) -> Result<ReloadSummary, LoadErrors> + Send + 'static,
) {
    let store = keys.clone();
    let outcome = rocket::tokio::task::spawn_blocking(move || reload(&store)).await;
    if outcome.is_ok() {
        keys.warn_file_permissions();
    }
    match outcome {
        Ok(Ok(summary)) => {
            if !summary.is_empty() {
                tracing::info!(
                    target: TARGET,
                    trigger,
                    added = ?NameList(&summary.added),
                    removed = ?NameList(&summary.removed),
                    changed = ?NameList(&summary.changed),
                    count = keys.len(),
                    "API keys reloaded"
                );
                Audit::of(keys).log();
            }
            keys.warn_expiring();
        }
        Ok(Err(errors)) => {
            for e in &errors.0 {
                tracing::error!(target: TARGET, error = %e, "API key configuration error");
            }
            tracing::error!(
                target: TARGET,
                trigger,
                errors = errors.0.len(),
                count = keys.len(),
                "API key reload failed; the running keys are unchanged"
            );
        }
        Err(e) => {
            tracing::error!(target: TARGET, trigger, error = %e, "API key reload panicked")
        }
    }
}
