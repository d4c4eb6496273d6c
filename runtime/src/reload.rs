//! Reloading without a restart: the keys file is polled (and SIGHUP honoured), a new store is
//! built off the request path and swapped in whole. A reload that fails changes nothing.

use std::fmt;
use std::sync::TryLockError;

use rocket::Shutdown;
use time::OffsetDateTime;

use crate::config::Config;
use crate::load::{FileRules, FileStamp, FileState, FileWarning, LoadErrors, Loader};
use crate::store::ApiKeys;
use crate::table::{KeyStore, Slot};
use crate::target::TARGET;

/// What a reload changed, by key name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Names that are new.
    pub added: Vec<String>,
    /// Names that are gone (revoked).
    pub removed: Vec<String>,
    /// Names whose key, scopes, expiry or addresses changed.
    pub changed: Vec<String>,
}

impl ReloadSummary {
    /// Whether the reload changed nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    fn between(old: &KeyStore, new: &KeyStore) -> Self {
        let old_by_name: std::collections::HashMap<&str, &Slot> =
            old.iter().map(|(_, s)| (&*s.identity.name, s)).collect();
        let mut summary = ReloadSummary::default();
        for (_, s) in new.iter() {
            let name = &*s.identity.name;
            match old_by_name.get(name) {
                None => summary.added.push(name.to_string()),
                Some(o) if !same((old, o), (new, s)) => summary.changed.push(name.to_string()),
                Some(_) => {}
            }
        }
        let new_names: std::collections::HashSet<&str> =
            new.iter().map(|(_, s)| &*s.identity.name).collect();
        summary.removed = old_by_name
            .keys()
            .filter(|n| !new_names.contains(*n))
            .map(|n| n.to_string())
            .collect();
        summary.added.sort();
        summary.removed.sort();
        summary.changed.sort();
        summary
    }
}

/// Whether a key is the same in two stores: same secret, scopes, expiry, addresses and rate.
fn same((old, a): (&KeyStore, &Slot), (new, b): (&KeyStore, &Slot)) -> bool {
    a.digest.ct_eq(&b.digest) && a.expires == b.expires && old.profile(a) == new.profile(b)
}

impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "added [{}], removed [{}], changed [{}]",
            self.added.join(", "),
            self.removed.join(", "),
            self.changed.join(", ")
        )
    }
}

impl ApiKeys {
    /// Reads every source again and swaps the new key set in, atomically: requests in flight
    /// finish with the keys they started with, later ones see the new set, none sees a mix.
    /// Usage figures stay with the key's name.
    ///
    /// On any error the running keys are kept unchanged and the errors are returned. The fairing
    /// calls this when the keys file changes and on SIGHUP; call it yourself for other triggers.
    ///
    /// A keys file that may still be being written ([`LoadError::FileUnsettled`]) or that kept
    /// changing while it was read ([`LoadError::FileChanging`]) fails the reload this time; the
    /// poller reads it again at its next tick even if it does not change. A keys file that group
    /// or others may write, or read while it holds plaintext keys, is named in a `WARN` event by
    /// the fairing, at start and at each reload it makes.
    ///
    /// [`LoadError::FileUnsettled`]: crate::LoadError::FileUnsettled
    /// [`LoadError::FileChanging`]: crate::LoadError::FileChanging
    pub fn reload(&self) -> Result<ReloadSummary, LoadErrors> {
        let shared = self.shared();
        let mut loaded_state = shared.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let config = &shared.config;
        let mut loader = Loader::default();
        if config.from_env {
            loader.env(&config.env_prefix, std::env::vars_os());
        }
        if let Some(path) = &config.keys_file {
            // Noted before reading: a write that lands during the read is seen at the next poll.
            // Noted even if the load fails, so a broken file is reported once, not every poll.
            *loaded_state = Some(file_state(path));
            loader.file(path, file_rules(config));
        }
        for entry in &shared.code_keys {
            loader.push(entry.clone());
        }
        // Kept for whoever logs this load (the fairing at start, the watcher at each reload), so
        // a file left open to others is named once per load while it stays so, not at every
        // poll, and not again by a load that only looks (`ApiKeysBuilder::load`).
        *shared
            .file_warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = std::mem::take(&mut loader.warnings);
        // Only the entries go on: the duplicate-check indexes are freed before the store is
        // built, which lowers the peak memory of loading a large keys file.
        let (loaded, errors) = loader.into_parts();
        if !errors.is_empty() {
            if errors.iter().any(|e| e.is_transient()) {
                // No state noted: the file may not change again, and the poller must still read
                // it again, once it has settled.
                *loaded_state = None;
            }
            return Err(LoadErrors(errors));
        }
        let old = shared.store.load_full();
        let new = KeyStore::new(loaded, Some(&old));
        let summary = ReloadSummary::between(&old, &new);
        drop(old);
        self.swap_store(new);
        Ok(summary)
    }

    /// Logs a warning naming the keys that have expired or expire within `expiry_warning`.
    pub(crate) fn warn_expiring(&self) {
        let now = OffsetDateTime::now_utc();
        let soon = now + self.config().expiry_warning;
        let store = self.shared().store.load();
        let mut expiring: Vec<(&str, OffsetDateTime)> = store
            .iter()
            .filter_map(|(_, s)| {
                let at = s.expires.to_time().filter(|at| *at <= soon)?;
                Some((&*s.identity.name, at))
            })
            .collect();
        expiring.sort();
        for (name, at) in expiring {
            let at_text = at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| at.unix_timestamp().to_string());
            if at <= now {
                tracing::warn!(target: TARGET, key = name, expired = %at_text, "API key has expired");
            } else {
                tracing::warn!(target: TARGET, key = name, expires = %at_text, "API key expires soon; rotate it");
            }
        }
    }

    /// Logs the warnings about the keys file that the last load found (see [`reload`](Self::reload)).
    pub(crate) fn warn_file_permissions(&self) {
        let warnings = self
            .shared()
            .file_warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for warning in &warnings {
            log_file_warning(warning);
        }
    }

    /// Reloads, logging the outcome: a summary when something changed, every error otherwise.
    async fn reload_and_log(&self, trigger: &'static str) {
        let keys = self.clone();
        let outcome = rocket::tokio::task::spawn_blocking(move || keys.reload()).await;
        if outcome.is_ok() {
            self.warn_file_permissions();
        }
        match outcome {
            Ok(Ok(summary)) => {
                if !summary.is_empty() {
                    tracing::info!(
                        target: TARGET,
                        trigger,
                        added = ?summary.added,
                        removed = ?summary.removed,
                        changed = ?summary.changed,
                        count = self.len(),
                        "API keys reloaded"
                    );
                }
                self.warn_expiring();
            }
            Ok(Err(errors)) => {
                for e in &errors.0 {
                    tracing::error!(target: TARGET, error = %e, "API key configuration error");
                }
                tracing::error!(
                    target: TARGET,
                    trigger,
                    errors = errors.0.len(),
                    count = self.len(),
                    "API key reload failed; the running keys are unchanged"
                );
            }
            Err(e) => {
                tracing::error!(target: TARGET, trigger, error = %e, "API key reload panicked")
            }
        }
    }
}

fn file_state(path: &std::path::Path) -> FileState {
    std::fs::metadata(path)
        .ok()
        .map(|meta| FileStamp::of(&meta))
}

/// The keys file's rules. A file whose last line has no final newline is trusted once unchanged
/// for a poll interval: the poll after the one that deferred it finds it settled. With polling
/// off, for the default interval.
fn file_rules(config: &Config) -> FileRules {
    let settle = if config.reload_interval.is_zero() {
        Config::default().reload_interval
    } else {
        config.reload_interval
    };
    FileRules {
        max_size: config.keys_file_max_size,
        settle,
    }
}

fn log_file_warning(warning: &FileWarning) {
    match warning {
        FileWarning::Writable(path, mode) => tracing::warn!(
            target: TARGET,
            path = ?path,
            mode = %format!("{mode:o}"),
            "keys file can be written by group or others, who could add a key; `chmod go-w` it"
        ),
        FileWarning::Readable(path, mode) => tracing::warn!(
            target: TARGET,
            path = ?path,
            mode = %format!("{mode:o}"),
            "keys file holds plaintext keys and can be read by group or others; `chmod go-r` it, \
             or store `sha256:` entries (`apikey hash`)"
        ),
    }
}

/// The watcher started at liftoff; ends with the server.
pub(crate) async fn watch(keys: ApiKeys, shutdown: Shutdown, mut hangup: Hangup) {
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
                let loaded = match keys.shared().reload_lock.try_lock() {
                    Ok(state) => *state,
                    Err(TryLockError::Poisoned(state)) => *state.into_inner(),
                    Err(TryLockError::WouldBlock) => continue,
                };
                if loaded != Some(file_state(path)) {
                    keys.reload_and_log("file").await;
                }
            }
            Some(()) = next_hangup(&mut hangup) => keys.reload_and_log("sighup").await,
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A keys file in a directory of its own, removed with it.
    struct KeysFile {
        dir: PathBuf,
        path: PathBuf,
    }

    impl KeysFile {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("rak-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            KeysFile {
                path: dir.join("keys"),
                dir,
            }
        }

        fn write(&self, text: &str) {
            std::fs::write(&self.path, text).unwrap();
        }
    }

    impl Drop for KeysFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn reload_reports_changes_and_keeps_keys_on_error() {
        let file = KeysFile::new("reload-unit");
        let write = |s: &str| file.write(s);
        write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;scopes=x\nc=cccccccccccccccccccc\n");
        let keys = ApiKeys::builder()
            .from_env(false)
            .keys_file(&file.path)
            .key("code", "codecodecodecodecode")
            .build()
            .unwrap();
        assert_eq!(keys.names(), ["a", "b", "c", "code"]);
        keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();

        write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;scopes=y\nd=dddddddddddddddddddd\n");
        let summary = keys.reload().unwrap();
        assert_eq!(
            summary,
            ReloadSummary {
                added: vec!["d".into()],
                removed: vec!["c".into()],
                changed: vec!["b".into()]
            }
        );
        assert_eq!(summary.to_string(), "added [d], removed [c], changed [b]");
        assert_eq!(
            keys.usage().key("a").unwrap().accepted,
            1,
            "figures follow the name"
        );
        assert!(keys.reload().unwrap().is_empty());

        // Same name, new key: changed; the old key stops working.
        write("a=AAAAAAAAAAAAAAAAAAAA\nb=bbbbbbbbbbbbbbbbbbbb;scopes=y\nd=dddddddddddddddddddd\n");
        assert_eq!(keys.reload().unwrap().changed, ["a"]);
        assert!(keys.verify("aaaaaaaaaaaaaaaaaaaa", None).is_err());

        // Errors change nothing: a bad line, a duplicate of a code key, a missing file.
        for bad in ["a=short\n", "x=codecodecodecodecode\n"] {
            write(bad);
            assert!(keys.reload().is_err());
            assert_eq!(keys.names(), ["a", "b", "code", "d"]);
        }
        std::fs::remove_file(&file.path).unwrap();
        assert!(keys.reload().is_err());
        assert_eq!(keys.names(), ["a", "b", "code", "d"]);
    }

    #[test]
    fn counts_survive_reloads_even_from_a_key_still_in_use() {
        let file = KeysFile::new("reload-counts");
        let write = |s: &str| file.write(s);
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=x\n");
        let keys = ApiKeys::builder()
            .from_env(false)
            .keys_file(&file.path)
            .build()
            .unwrap();
        for _ in 0..3 {
            keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
        }
        // A request holding the key checked against the first store…
        let held = keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
        assert_eq!(keys.usage().key("a").unwrap().accepted, 4);

        // …while the key's scopes change, twice.
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=y\n");
        assert_eq!(keys.reload().unwrap().changed, ["a"]);
        keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=z\n");
        assert_eq!(keys.reload().unwrap().changed, ["a"]);
        assert_eq!(held.scopes(), ["x"], "a key shows what was checked");
        // A request admitted after the reload counts in the store it was checked against.
        held.record_accepted();
        assert_eq!(keys.usage().key("a").unwrap().accepted, 6);
        assert_eq!(keys.shared().retired.lock().unwrap().len(), 1);

        // The held key's store is folded into the identity once the key is dropped.
        drop(held);
        let usage = keys.usage();
        assert_eq!(usage.key("a").unwrap().accepted, 6);
        assert!(usage.key("a").unwrap().last_used.is_some());
        assert!(keys.shared().retired.lock().unwrap().is_empty());

        // Rejections of the key follow it too.
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=z;ips=192.0.2.0/24\n");
        keys.reload().unwrap();
        let refused = keys.verify("aaaaaaaaaaaaaaaaaaaa", Some([10, 0, 0, 1].into()));
        assert_eq!(refused.unwrap_err(), crate::Reason::Ip);
        write("a=aaaaaaaaaaaaaaaaaaaa;scopes=y\n");
        keys.reload().unwrap();
        let counts = keys.usage().key("a").unwrap().clone();
        assert_eq!((counts.accepted, counts.rejected["ip"]), (6, 1));
    }

    #[cfg(unix)]
    #[test]
    fn a_keys_file_that_is_no_regular_file_fails_the_reload_and_keeps_the_keys() {
        let file = KeysFile::new("reload-kinds");
        file.write("a=aaaaaaaaaaaaaaaaaaaa\n");
        let keys = ApiKeys::builder()
            .from_env(false)
            .keys_file(&file.path)
            .keys_file_max_size(1024)
            .build()
            .unwrap();
        let replace = |make: &dyn Fn(&std::path::Path)| {
            let _ = std::fs::remove_file(&file.path);
            let _ = std::fs::remove_dir(&file.path);
            make(&file.path);
        };
        let fifo = |p: &std::path::Path| {
            let made = std::process::Command::new("mkfifo")
                .arg(p)
                .status()
                .unwrap();
            assert!(made.success());
        };
        let directory = |p: &std::path::Path| std::fs::create_dir(p).unwrap();
        let oversized = |p: &std::path::Path| {
            std::fs::write(
                p,
                format!("b=bbbbbbbbbbbbbbbbbbbb\n#{}\n", "x".repeat(1024)),
            )
            .unwrap()
        };
        for (make, expected) in [
            (&fifo as &dyn Fn(&std::path::Path), "it is a FIFO"),
            (&directory, "it is a directory"),
            (
                &oversized,
                "is larger than `api_keys.keys_file_max_size` (1024 bytes)",
            ),
        ] {
            replace(make);
            // On another thread, so a reload that blocks fails the test instead of hanging it.
            let (tx, rx) = std::sync::mpsc::channel();
            let reloading = keys.clone();
            std::thread::spawn(move || tx.send(reloading.reload().map_err(|e| e.to_string())));
            let outcome = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the reload blocked");
            let message = outcome.unwrap_err();
            assert!(message.contains(expected), "{message}");
            assert_eq!(keys.names(), ["a"]);
        }
        // No reload was left holding the lock: the next one works.
        replace(&|p: &std::path::Path| std::fs::write(p, "c=cccccccccccccccccccc\n").unwrap());
        assert_eq!(keys.reload().unwrap().added, ["c"]);
    }

    #[test]
    fn a_half_written_keys_file_is_deferred_and_read_again_at_the_next_poll() {
        let file = KeysFile::new("reload-unsettled");
        file.write("a=aaaaaaaaaaaaaaaaaaaa\n");
        let keys = ApiKeys::builder()
            .from_env(false)
            .keys_file(&file.path)
            .reload_interval(std::time::Duration::from_secs(1))
            .build()
            .unwrap();
        let poller_would_reload = || {
            let loaded = *keys.shared().reload_lock.lock().unwrap();
            loaded != Some(file_state(&file.path))
        };
        assert!(!poller_would_reload());

        // Written in place, the writer not yet past `/1` of `/16`.
        file.write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;ips=10.0.0.0/1");
        let errors = keys.reload().unwrap_err();
        assert!(
            matches!(&errors.0[..], [crate::LoadError::FileUnsettled(..)]),
            "{errors}"
        );
        assert_eq!(keys.names(), ["a"]);
        assert!(poller_would_reload(), "a deferred reload must be retried");
        assert!(poller_would_reload(), "even if the file does not change");

        // The writer finishes; the next poll loads the whole line.
        file.write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;ips=10.0.0.0/16\n");
        assert_eq!(keys.reload().unwrap().added, ["b"]);
        let outside = keys.verify("bbbbbbbbbbbbbbbbbbbb", Some([10, 128, 0, 1].into()));
        assert_eq!(outside.unwrap_err(), crate::Reason::Ip);
        assert!(!poller_would_reload());

        // Left unterminated, but unchanged for the poll interval: trusted.
        file.write("a=aaaaaaaaaaaaaaaaaaaa");
        assert!(keys.reload().is_err());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(keys.reload().unwrap().removed, ["b"]);
    }
}
