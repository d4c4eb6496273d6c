//! The key table's listener, started at liftoff (feature `postgres`): a connection of its own
//! that `LISTEN`s for the table's changes and swaps each into the store as a keys-file reload
//! does; a read of the whole table at every (re)connection, since notifications sent while it
//! was away are lost; a backstop check of the revision; and the last-used times, written in
//! batches. Requests never wait for any of it: an outage leaves the last keys read in force.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rocket::tokio::sync::mpsc;
use rocket::tokio::time::{interval, sleep, MissedTickBehavior};
use rocket::Shutdown;
use time::OffsetDateTime;
use tokio_postgres::AsyncMessage;

use crate::config::Config;
use crate::database::{DatabaseError, KeyTable, CHANNEL, LISTENER_NAME};
use crate::database_keys::DatabaseKeys;
use crate::store::ApiKeyStore;
use crate::target::TARGET;
use crate::watch::reload_with;

/// The first pause before reconnecting; doubled at each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How often an outage that goes on is logged again.
const OUTAGE_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Reads the live keys of the table, for the load at ignite.
pub(crate) async fn read_table(config: &Config, url: &str) -> Result<DatabaseKeys, DatabaseError> {
    let ca = config.keys_database_ca.as_deref();
    let mut table = KeyTable::connect_as(url, ca, None, config.keys_database_timeout).await?;
    let (revision, rows) = table.live_keys().await?;
    Ok(DatabaseKeys::full(revision, rows))
}

/// The listener; ends with the server.
pub(crate) async fn listen(keys: ApiKeyStore, shutdown: Shutdown) {
    let config = keys.config().clone();
    let Some(url) = config.keys_database_url.clone() else {
        return;
    };
    let mut outage = Outage::default();
    let mut flushed = HashMap::new();
    let mut backoff = MIN_BACKOFF;
    rocket::tokio::pin!(shutdown);
    loop {
        let session = session(&keys, &url, &config, &mut outage, &mut flushed);
        let (connected, error) = rocket::tokio::select! {
            _ = &mut shutdown => return,
            ended = session => ended,
        };
        outage.failed(&error);
        // Only a session that stayed healthy a while resets the pause: one that fails each
        // time just after `LISTEN` (no table, no permission, a read too slow) must not make
        // every instance reconnect and read the whole table several times a second.
        if connected.is_some_and(|at| at.elapsed() >= MAX_BACKOFF) {
            backoff = MIN_BACKOFF;
        }
        rocket::tokio::select! {
            _ = &mut shutdown => return,
            _ = sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: `LISTEN`, a full read, then changes as they are announced, until the
/// connection fails. Returns when it had read the table whole, if it got that far, and why it
/// ended.
async fn session(
    keys: &ApiKeyStore,
    url: &str,
    config: &Config,
    outage: &mut Outage,
    flushed: &mut HashMap<String, OffsetDateTime>,
) -> (Option<Instant>, DatabaseError) {
    let timeout = config.keys_database_timeout;
    let ca = config.keys_database_ca.as_deref();
    let (client, mut connection) = match KeyTable::open(url, ca, Some(LISTENER_NAME), timeout).await
    {
        Ok(pair) => pair,
        Err(e) => return (None, e),
    };
    // The connection is driven here, and its notifications passed on; the channel closes
    // when the connection ends.
    let (notified, mut notifications) = mpsc::unbounded_channel::<Option<i64>>();
    let driver = rocket::tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if notified.send(n.payload().parse().ok()).is_err() {
                        return None;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    });
    let _stop_driver = AbortOnDrop(driver.abort_handle());
    let mut driver = driver;
    let mut table = KeyTable::from_client(client, url, timeout);

    if let Err(e) = table.listen(CHANNEL).await {
        return (None, e);
    }
    // Notifications sent while no listener was connected are lost: the whole table is read
    // again, after `LISTEN`, so that nothing committed since is missed.
    if let Err(e) = full_read(keys, &mut table).await {
        return (None, e);
    }
    let healthy_since = Instant::now();
    outage.recovered();

    let mut poll = interval(config.keys_database_poll.max(Duration::from_millis(100)));
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    poll.tick().await;
    let mut flush_refused = FlushRefused::default();
    let mut flush = interval(config.last_used_flush.max(Duration::from_millis(100)));
    flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
    flush.tick().await;
    loop {
        let step = rocket::tokio::select! {
            notification = notifications.recv() => match notification {
                Some(revision) => {
                    // Several changes in a burst make one read.
                    let mut newest = revision;
                    while let Ok(next) = notifications.try_recv() {
                        newest = newest.max(next);
                    }
                    let known = keys.database_revision();
                    if newest.is_some() && newest <= known {
                        continue;
                    }
                    read_changes(keys, &mut table).await
                }
                None => {
                    return (Some(healthy_since), match (&mut driver).await {
                        Ok(Some(e)) => table.lost(&e),
                        _ => DatabaseError::Connect("the connection closed".to_owned()),
                    });
                }
            },
            _ = poll.tick(), if !config.keys_database_poll.is_zero() => {
                match table.revision().await {
                    Ok(revision) if Some(revision) != keys.database_revision() => {
                        tracing::info!(
                            target: TARGET,
                            revision,
                            "the key table changed without a notification reaching this instance"
                        );
                        read_changes(keys, &mut table).await
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            _ = flush.tick(), if !config.last_used_flush.is_zero() => {
                match flush_last_used(keys, &table, flushed).await {
                    // Last-used times are a convenience: a flush the server refuses (a role
                    // without the grant, a lock held too long) is told, not fatal.
                    Err(e) if !matches!(e, DatabaseError::Connect(_)) => {
                        flush_refused.report(&e);
                        Ok(())
                    }
                    other => other,
                }
            }
        };
        if let Err(e) = step {
            return (Some(healthy_since), e);
        }
    }
}

/// Reads the whole table and swaps its keys in.
async fn full_read(keys: &ApiKeyStore, table: &mut KeyTable) -> Result<(), DatabaseError> {
    let (revision, rows) = table.live_keys().await?;
    let read = DatabaseKeys::full(revision, rows);
    reload_with(keys, "database", move |keys| {
        keys.change_database(|database| match database {
            Some(copy) => copy.replace(read),
            None => {
                *database = Some(read);
                Vec::new()
            }
        })
    })
    .await;
    Ok(())
}

/// Reads the rows changed since the revision the store has, and swaps them in.
async fn read_changes(keys: &ApiKeyStore, table: &mut KeyTable) -> Result<(), DatabaseError> {
    let Some(since) = keys.database_revision() else {
        return full_read(keys, table).await;
    };
    let (revision, changes) = table.changes_since(since).await?;
    if revision < since {
        // The counter went back (a restore, a reset): nothing read since `since` can be
        // trusted to be complete.
        return full_read(keys, table).await;
    }
    if revision == since && changes.is_empty() {
        // A notification with nothing behind it (anyone may `NOTIFY`): no reload.
        return Ok(());
    }
    reload_with(keys, "database", move |keys| {
        keys.change_database(|database| {
            database
                .get_or_insert_with(DatabaseKeys::default)
                .apply(revision, changes)
        })
    })
    .await;
    Ok(())
}

/// Writes the last-used times that moved since the last flush, in one statement.
async fn flush_last_used(
    keys: &ApiKeyStore,
    table: &KeyTable,
    flushed: &mut HashMap<String, OffsetDateTime>,
) -> Result<(), DatabaseError> {
    // Every key's figures are read: off the async workers, for a table of many keys.
    let store = keys.clone();
    let used = rocket::tokio::task::spawn_blocking(move || store.database_last_used())
        .await
        .unwrap_or_default();
    let moved: Vec<(String, OffsetDateTime)> = used
        .into_iter()
        .filter(|(name, at)| flushed.get(name).is_none_or(|before| at > before))
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    table.record_last_used(&moved).await?;
    flushed.extend(moved);
    Ok(())
}

/// Aborts the connection's driver when the session ends, whichever way.
struct AbortOnDrop(rocket::tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// At most one event per [`OUTAGE_WARNING_EVERY`].
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    /// Whether an event may be logged now; notes it if so.
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < OUTAGE_WARNING_EVERY)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// Flushes of last-used times the server refused, told at most once a minute.
#[derive(Default)]
struct FlushRefused(Throttle);

impl FlushRefused {
    fn report(&mut self, error: &DatabaseError) {
        if self.0.due() {
            tracing::warn!(
                target: TARGET,
                error = %error,
                "last-used times cannot be written to the key table; keys are still checked and \
                 followed, and the times are tried again at the next flush"
            );
        }
    }
}

/// An outage of the database as the listener sees it, logged when it starts, at most once a
/// minute while it lasts, and when it ends.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    failures: u64,
    warnings: Throttle,
}

impl Outage {
    fn failed(&mut self, error: &DatabaseError) {
        self.failures += 1;
        let since = *self.since.get_or_insert_with(Instant::now);
        if !self.warnings.due() {
            return;
        }
        tracing::warn!(
            target: TARGET,
            error = %error,
            failures = self.failures,
            down_for_s = since.elapsed().as_secs(),
            "the key database cannot be reached or read; requests are checked against the keys \
             last read from it, and its changes apply once it answers"
        );
    }

    fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                target: TARGET,
                failures = self.failures,
                down_for_ms = since.elapsed().as_millis() as u64,
                "the key database answers again; its keys were read in full"
            );
        }
        self.failures = 0;
        self.warnings = Throttle::default();
    }
}
