//! The key table's listener, started at liftoff (feature `postgres`): a connection of its own
//! that `LISTEN`s for the table's changes and swaps each into the store as a keys-file reload
//! does; a read of the whole table at every (re)connection, since notifications sent while it
//! was away are lost; a backstop check of the table's position; and the last-used times, written
//! in batches. Requests never wait for any of it: an outage leaves the last keys read in force,
//! or, past `keys_database_max_stale`, withdraws them.
//!
//! A notification is only a reason to look: whatever its payload, the listener reads what
//! changed since the revision it has, and the table's identity with it. A table created again or
//! restored from a dump counts its revisions anew, under another identity, and one whose counter
//! went back (a point-in-time recovery) is behind the listener: either way the listener reads it
//! whole, rather than ignore changes numbered at or below the revision it had.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rocket::tokio::sync::mpsc;
use rocket::tokio::time::{interval, sleep, MissedTickBehavior};
use rocket::Shutdown;
use time::OffsetDateTime;
use tokio_postgres::AsyncMessage;

use crate::config::Config;
use crate::database::keys::{DatabaseKeys, TableRead};
use crate::database::{connection, DatabaseError, KeyTable, CHANNEL, LISTENER_NAME};
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
    let keys = DatabaseKeys::full(table.live_keys().await?);
    tracing::info!(
        target: TARGET,
        table = %keys.table,
        revision = keys.position.revision,
        skipped = keys.skipped(),
        "key table read"
    );
    Ok(keys)
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
        let (connected, error) = {
            let session = session(&keys, &url, &config, &mut outage, &mut flushed);
            rocket::tokio::pin!(session);
            // The staleness bound holds whatever the session is doing: connecting, reading, or
            // waiting on a server that stopped answering.
            loop {
                rocket::tokio::select! {
                    _ = &mut shutdown => return,
                    ended = &mut session => break ended,
                    _ = stale(&keys, config.keys_database_max_stale) => {
                        withdraw_stale(&keys, &config).await
                    }
                }
            }
        };
        outage.failed(&error);
        // Only a session that stayed healthy a while resets the pause: one that fails each
        // time just after `LISTEN` (no table, no permission, a read too slow) must not make
        // every instance reconnect and read the whole table several times a second.
        if connected.is_some_and(|at| at.elapsed() >= MAX_BACKOFF) {
            backoff = MIN_BACKOFF;
        }
        let pause = sleep(backoff);
        rocket::tokio::pin!(pause);
        loop {
            rocket::tokio::select! {
                _ = &mut shutdown => return,
                _ = &mut pause => break,
                _ = stale(&keys, config.keys_database_max_stale) => {
                    withdraw_stale(&keys, &config).await
                }
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Ends once the table's keys have gone unconfirmed for `max_stale` (never when it is zero, or
/// while there are none to withdraw).
async fn stale(keys: &ApiKeyStore, max_stale: Duration) {
    if max_stale.is_zero() {
        return std::future::pending().await;
    }
    loop {
        match keys.database_staleness() {
            Some(age) if age >= max_stale && keys.database_position().is_some() => return,
            Some(age) if age < max_stale => sleep(max_stale - age).await,
            // Nothing read yet, or withdrawn already: a read brings them back.
            _ => sleep(max_stale).await,
        }
    }
}

/// Withdraws the table's keys: they could not be confirmed for `keys_database_max_stale`.
async fn withdraw_stale(keys: &ApiKeyStore, config: &Config) {
    let stale_for = keys.database_staleness().unwrap_or_default();
    // A reload: off the async workers.
    let store = keys.clone();
    let withdrawn = rocket::tokio::task::spawn_blocking(move || store.withdraw_database())
        .await
        .unwrap_or_default();
    tracing::warn!(
        target: TARGET,
        withdrawn,
        stale_for_s = stale_for.as_secs(),
        max_stale_s = config.keys_database_max_stale.as_secs(),
        "the key table could not be confirmed current within keys_database_max_stale; its keys \
         are withdrawn until it answers"
    );
}

/// How often a session checks the table's position: the backstop poll, and often enough for
/// `keys_database_max_stale` to be confirmed in time; `None` when neither is on.
fn check_every(config: &Config) -> Option<Duration> {
    let poll = Some(config.keys_database_poll).filter(|poll| !poll.is_zero());
    let staleness = Some(config.keys_database_max_stale / 3).filter(|every| !every.is_zero());
    match (poll, staleness) {
        (Some(poll), Some(every)) => Some(poll.min(every)),
        (poll, every) => poll.or(every),
    }
    .map(|every| every.max(Duration::from_millis(100)))
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
    let (client, mut connection) =
        match connection::open(url, ca, Some(LISTENER_NAME), timeout).await {
            Ok(pair) => pair,
            Err(e) => return (None, e),
        };
    // The connection is driven here, and its notifications passed on; the channel closes
    // when the connection ends.
    let (notified, mut notifications) = mpsc::unbounded_channel::<()>();
    let driver = rocket::tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                // The payload (a revision) is not trusted: anyone may `NOTIFY`, and a restored
                // table numbers anew. Every notification is a reason to read what changed.
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if notified.send(()).is_err() {
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

    let check_every = check_every(config);
    let mut poll = interval(check_every.unwrap_or(Duration::from_secs(3600)));
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    poll.tick().await;
    let mut flush_refused = FlushRefused::default();
    let mut flush = interval(config.last_used_flush.max(Duration::from_millis(100)));
    flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
    flush.tick().await;
    loop {
        let step = rocket::tokio::select! {
            notification = notifications.recv() => match notification {
                Some(()) => {
                    // Several changes in a burst make one read.
                    while notifications.try_recv().is_ok() {}
                    read_changes(keys, &mut table).await
                }
                None => {
                    return (Some(healthy_since), match (&mut driver).await {
                        Ok(Some(e)) => table.lost(&e),
                        _ => DatabaseError::Connect("the connection closed".to_owned()),
                    });
                }
            },
            _ = poll.tick(), if check_every.is_some() => {
                let started = Instant::now();
                match table.position().await {
                    Ok(position) if Some(&position) != keys.database_position().as_ref() => {
                        tracing::info!(
                            target: TARGET,
                            revision = position.revision,
                            "the key table changed without a notification reaching this instance"
                        );
                        read_changes(keys, &mut table).await
                    }
                    Ok(_) => {
                        keys.confirm_database(started);
                        Ok(())
                    }
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
    let started = Instant::now();
    let read = table.live_keys().await?;
    // Off the async workers, with the reload: a table of many rows takes a while to parse.
    reload_with(keys, "database", move |keys| {
        let read = DatabaseKeys::full(read);
        keys.change_database(|database| match database {
            Some(copy) => copy.replace(read),
            None => {
                *database = Some(read);
                Vec::new()
            }
        })
    })
    .await;
    keys.confirm_database(started);
    Ok(())
}

/// Reads the rows changed since the revision the store has, and swaps them in; reads the table
/// whole when it is not the table that revision was counted by, or its counter went back.
async fn read_changes(keys: &ApiKeyStore, table: &mut KeyTable) -> Result<(), DatabaseError> {
    let Some(known) = keys.database_position() else {
        return full_read(keys, table).await;
    };
    let started = Instant::now();
    let TableRead {
        position, changes, ..
    } = table.changes_since(known.revision).await?;
    if position.epoch != known.epoch || position.revision < known.revision {
        // Created again, restored, or reset: nothing read since `known` can be trusted to be
        // complete, or even to be of the same table.
        tracing::info!(
            target: TARGET,
            revision = position.revision,
            known_revision = known.revision,
            "the key table was created again, restored or reset; reading it whole"
        );
        return full_read(keys, table).await;
    }
    if position.revision == known.revision && changes.is_empty() {
        // A notification with nothing behind it (anyone may `NOTIFY`): no reload.
        keys.confirm_database(started);
        return Ok(());
    }
    reload_with(keys, "database", move |keys| {
        keys.change_database(|database| match database {
            Some(copy) => copy.apply(position.revision, changes),
            // Withdrawn meanwhile: the next check reads the table whole.
            None => Vec::new(),
        })
    })
    .await;
    keys.confirm_database(started);
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
