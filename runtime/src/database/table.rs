//! [`KeyTable`]: a connection to the key table, for the administration (`apikey`, an
//! application's own) and for each instance's reads.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_postgres::Client;

use super::connection::open;
use super::error::{describe, query_error};
use super::grants::grant_statements;
use super::keys::{Position, RowChange, TableRead};
use super::records::{record, IssuedKey, KeyRecord, Rotation};
use super::rows::{key_row, position};
use super::{DatabaseError, SCHEMA};
use crate::entry::{parse_entry, KeyEntry};
use crate::keygen::GeneratedKey;
use crate::load::{key_name, retired_name};
use crate::redact::CredentialUrl;

/// The columns of a key row as an instance loads it: `until` is when it stops being accepted
/// (its expiry or the end of its grace period after a rotation), `live` whether it is revoked
/// yet by the database's clock.
const KEY_COLUMNS: &str =
    "name, digest, scopes, ips, rate, least(expires_at, revoked_at) AS until, \
     (revoked_at IS NULL OR revoked_at > pg_catalog.now()) AS live, revision";

/// Where the table stands: its revision, and its identity, the counter's random epoch and the
/// counter table's OID (which a table created again, or restored from a dump, changes); with
/// the key table's schema-qualified name, for the log.
const POSITION_QUERY: &str =
    "SELECT r.revision, r.epoch || '/' || r.tableoid::text || '/' || c.oid::text AS epoch, \
     pg_catalog.format('%I.%I', n.nspname, c.relname) AS table_name \
     FROM api_keys_revision r, pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.oid = 'api_keys'::regclass";

/// What [`KeyTable::list`] reads of a key: everything but the digest.
const RECORD_QUERY: &str = "SELECT k.name, k.scopes, k.expires_at, k.ips, k.rate, k.created_at, \
     k.revoked_at, u.last_used_at FROM api_keys k \
     LEFT JOIN api_keys_last_used u ON u.name = k.name";

/// A connection to the key table.
pub struct KeyTable {
    client: Client,
    url: CredentialUrl,
    timeout: Duration,
}

impl fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTable")
            .field("url", &self.url.shown)
            .finish_non_exhaustive()
    }
}

/// How many statement timeouts a read of the whole table may take.
const FULL_READ_FACTOR: u32 = 6;

/// How long a connection or a statement may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl KeyTable {
    /// Connects to the database at `url`, a `postgres://` URL or a `key=value` connection
    /// string (TLS unless it says `sslmode=disable`; see the module's documentation); each statement may take up to 5 seconds.
    pub async fn connect(url: &str) -> Result<KeyTable, DatabaseError> {
        Self::connect_as(url, None, None, DEFAULT_TIMEOUT).await
    }

    /// Connects as [`connect`](Self::connect) does, also trusting the CA certificates of the
    /// PEM file `ca` (a private CA, or a cloud provider's bundle).
    pub async fn connect_with_ca(url: &str, ca: &Path) -> Result<KeyTable, DatabaseError> {
        Self::connect_as(url, Some(ca), None, DEFAULT_TIMEOUT).await
    }

    /// Connects with `application_name` and a timeout for the connection and each statement.
    pub(crate) async fn connect_as(
        url: &str,
        ca: Option<&Path>,
        application_name: Option<&str>,
        timeout: Duration,
    ) -> Result<KeyTable, DatabaseError> {
        let (client, connection) = open(url, ca, application_name, timeout).await?;
        rocket::tokio::spawn(async move {
            // Ends when the client is dropped or the connection breaks; the next statement
            // reports the break.
            let _ = connection.await;
        });
        Ok(KeyTable::from_client(client, url, timeout))
    }

    pub(crate) fn from_client(client: Client, url: &str, timeout: Duration) -> KeyTable {
        KeyTable {
            client,
            url: CredentialUrl::new(url),
            timeout,
        }
    }

    /// Starts listening on `channel`.
    pub(crate) async fn listen(&self, channel: &str) -> Result<(), DatabaseError> {
        self.bounded(self.client.batch_execute(&format!("LISTEN {channel}")))
            .await
    }

    /// The error that ended a connection.
    pub(crate) fn lost(&self, e: &tokio_postgres::Error) -> DatabaseError {
        DatabaseError::Connect(describe(e, &self.url))
    }

    /// Creates the table, its indexes and its trigger, or brings them up to date.
    pub async fn init(&self) -> Result<(), DatabaseError> {
        self.bounded(self.client.batch_execute(SCHEMA)).await
    }

    /// Grants the two roles of a least-privilege deployment what each needs on the table in
    /// this connection's schema, in one transaction, and returns the statements it ran:
    ///
    /// - `instance`, the applications' role: read the keys and their changes, and write the
    ///   last-used times; nothing that issues, changes or revokes a key;
    /// - `admin`, the role of `apikey` (`new`, `list`, `revoke`, `rotate`): write the keys.
    ///
    /// The counter and the record of deletions are written by the table's trigger with its
    /// owner's rights, so neither role needs a right on them beyond this. The same statements
    /// come from [`grant_statements`] without a connection.
    pub async fn grant(&self, instance: &str, admin: &str) -> Result<Vec<String>, DatabaseError> {
        let schema: String = self
            .bounded(
                self.client
                    .query_one("SELECT pg_catalog.current_schema()", &[]),
            )
            .await?
            .try_get(0)
            .map_err(|e| self.query_error(&e))?;
        let statements = grant_statements(&schema, instance, admin)?;
        let script = format!("BEGIN; {} COMMIT;", statements.join(" "));
        self.bounded(self.client.batch_execute(&script)).await?;
        Ok(statements)
    }

    /// Issues a new key named `name` with the fields of `fields` (`scopes=…;expires=…;ips=…;
    /// rate=…`, the entry grammar without the key; empty for none), from the operating
    /// system's CSPRNG. The key is returned once; the table holds its digest.
    pub async fn issue(&self, name: &str, fields: &str) -> Result<IssuedKey, DatabaseError> {
        let key = GeneratedKey::new().map_err(DatabaseError::KeyGen)?;
        let mut entry = key.entry();
        if !fields.is_empty() {
            entry.push(';');
            entry.push_str(fields);
        }
        let entry = parse_entry(&entry).map_err(DatabaseError::Entry)?;
        let name = self.insert(name, &entry).await?;
        Ok(IssuedKey { name, key })
    }

    /// Inserts a key given as an entry (a key, or its `sha256:` digest, and its fields). Returns
    /// the name as stored (lower-case).
    pub async fn insert(&self, name: &str, entry: &KeyEntry) -> Result<String, DatabaseError> {
        let name = key_name(name).ok_or_else(|| DatabaseError::Name(name.to_owned()))?;
        let ips: Vec<String> = entry.ips.iter().map(ToString::to_string).collect();
        let rate = entry.rate.map(|rate| rate.to_string());
        let digest = entry.digest.as_bytes().as_slice();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&name, &digest, &entry.scopes, &entry.expires, &ips, &rate];
        let statement = self.client.execute(
            "INSERT INTO api_keys (name, digest, scopes, expires_at, ips, rate) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &params,
        );
        match rocket::tokio::time::timeout(self.timeout, statement).await {
            Err(_) => Err(DatabaseError::Timeout(self.timeout)),
            Ok(Ok(_)) => Ok(name),
            Ok(Err(e)) => Err(match e.as_db_error().and_then(|db| db.constraint()) {
                Some("api_keys_pkey") => DatabaseError::NameTaken(name),
                Some("api_keys_digest_key") => DatabaseError::KeyTaken,
                _ => self.query_error(&e),
            }),
        }
    }

    /// Revokes the key named `name` now: every instance refuses it within moments. Returns when
    /// it was revoked (earlier, if it already was).
    pub async fn revoke(&self, name: &str) -> Result<OffsetDateTime, DatabaseError> {
        let name = key_name(name).ok_or_else(|| DatabaseError::Name(name.to_owned()))?;
        let row = self
            .bounded(self.client.query_opt(
                "UPDATE api_keys SET revoked_at = least(revoked_at, pg_catalog.now()) WHERE name = $1 \
                 RETURNING revoked_at",
                &[&name],
            ))
            .await?;
        let row = row.ok_or(DatabaseError::NoSuchKey(name))?;
        row.try_get(0).map_err(|e| self.query_error(&e))
    }

    /// Issues a successor to the key named `name`, with its scopes, addresses and rate, under
    /// the same name; the old key is renamed `<name>_r<revision>` and accepted until `grace`
    /// has passed, the overlap clients need to switch. The successor expires at `expires`,
    /// or, when the old key had an expiry, after the same lifetime from now. One
    /// transaction: both or neither.
    ///
    /// A key that is revoked, or has a revocation to come (a scheduled one, or a retired
    /// key's grace period), is refused ([`DatabaseError::Revoked`],
    /// [`DatabaseError::RevocationScheduled`]): its successor would outlive the revocation.
    pub async fn rotate(
        &mut self,
        name: &str,
        grace: Duration,
        expires: Option<OffsetDateTime>,
    ) -> Result<Rotation, DatabaseError> {
        let name = key_name(name).ok_or_else(|| DatabaseError::Name(name.to_owned()))?;
        let key = GeneratedKey::new().map_err(DatabaseError::KeyGen)?;
        let grace_seconds = grace.as_secs_f64();
        let timeout = self.timeout;
        let shown = &self.url;
        let new_digest = key.digest();
        let new_digest = new_digest.as_bytes().as_slice();
        let name = &name;
        let work = async {
            let transaction = self.client.transaction().await?;
            let Some(old) = transaction
                .query_opt(
                    "SELECT revision, revoked_at IS NOT NULL AND revoked_at <= pg_catalog.now(), revoked_at \
                     FROM api_keys WHERE name = $1 FOR UPDATE",
                    &[&name],
                )
                .await?
            else {
                return Ok(Err(DatabaseError::NoSuchKey(name.clone())));
            };
            if old.try_get::<_, bool>(1)? {
                return Ok(Err(DatabaseError::Revoked(name.clone())));
            }
            // A key with a revocation to come (scheduled, or a retired key in its grace
            // period) is not rotated: its successor would outlive the revocation.
            if let Some(at) = old.try_get::<_, Option<OffsetDateTime>>(2)? {
                return Ok(Err(DatabaseError::RevocationScheduled(name.clone(), at)));
            }
            let revision: i64 = old.try_get(0)?;
            let retired = retired_name(name, revision);
            let retired_until: OffsetDateTime = transaction
                .query_one(
                    "UPDATE api_keys SET name = $2, \
                     revoked_at = pg_catalog.now() + pg_catalog.make_interval(secs => $3) \
                     WHERE name = $1 RETURNING revoked_at",
                    &[name, &retired, &grace_seconds],
                )
                .await?
                .try_get(0)?;
            let successor = transaction
                .query_one(
                    "INSERT INTO api_keys AS k (name, digest, scopes, expires_at, ips, rate) \
                     SELECT $1, $2, scopes, \
                     coalesce($3, pg_catalog.now() + (expires_at - created_at)), ips, rate \
                     FROM api_keys WHERE name = $4 \
                     RETURNING k.name, k.scopes, k.expires_at, k.ips, k.rate, \
                     k.created_at, k.revoked_at, NULL::timestamptz",
                    &[name, &new_digest, &expires, &retired],
                )
                .await?;
            let successor = record(&successor)?;
            transaction.commit().await?;
            Ok(Ok((successor, retired, retired_until)))
        };
        let (successor, retired, retired_until) =
            match rocket::tokio::time::timeout(timeout, work).await {
                Err(_) => return Err(DatabaseError::Timeout(timeout)),
                Ok(Err(e)) => return Err(query_error(&e, shown)),
                Ok(Ok(outcome)) => outcome?,
            };
        Ok(Rotation {
            key: IssuedKey {
                name: name.clone(),
                key,
            },
            successor,
            retired,
            retired_until,
        })
    }

    /// Undoes a rotation whose new key reached nobody: deletes the successor and gives the
    /// old key back its name, unrevoked, as it was (a key with a revocation to come is never
    /// rotated). One transaction.
    pub async fn undo_rotation(&mut self, rotation: &Rotation) -> Result<(), DatabaseError> {
        let timeout = self.timeout;
        let shown = &self.url;
        let name = &rotation.key.name;
        let digest = rotation.key.digest();
        let digest = digest.as_bytes().as_slice();
        let work = async {
            let transaction = self.client.transaction().await?;
            transaction
                .execute(
                    "DELETE FROM api_keys WHERE name = $1 AND digest = $2",
                    &[name, &digest],
                )
                .await?;
            transaction
                .execute(
                    "UPDATE api_keys SET name = $1, revoked_at = NULL \
                     WHERE name = $2 AND revoked_at = $3",
                    &[name, &rotation.retired, &rotation.retired_until],
                )
                .await?;
            transaction.commit().await
        };
        match rocket::tokio::time::timeout(timeout, work).await {
            Err(_) => Err(DatabaseError::Timeout(timeout)),
            Ok(Err(e)) => Err(query_error(&e, shown)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Deletes the key named `name` (revoking keeps it listed; deleting does not). Returns
    /// whether there was one.
    pub async fn delete(&self, name: &str) -> Result<bool, DatabaseError> {
        let name = key_name(name).ok_or_else(|| DatabaseError::Name(name.to_owned()))?;
        let deleted = self
            .bounded(
                self.client
                    .execute("DELETE FROM api_keys WHERE name = $1", &[&name]),
            )
            .await?;
        Ok(deleted > 0)
    }

    /// Every key of the table, revoked ones included, sorted by name; never a digest.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, DatabaseError> {
        let query = format!("{RECORD_QUERY} ORDER BY k.name");
        let rows = self.bounded(self.client.query(&query, &[])).await?;
        rows.iter()
            .map(record)
            .collect::<Result<_, _>>()
            .map_err(|e| self.query_error(&e))
    }

    /// The key named `name`, revoked or not.
    pub async fn get(&self, name: &str) -> Result<Option<KeyRecord>, DatabaseError> {
        let name = key_name(name).ok_or_else(|| DatabaseError::Name(name.to_owned()))?;
        let query = format!("{RECORD_QUERY} WHERE k.name = $1");
        let row = self
            .bounded(self.client.query_opt(&query, &[&name]))
            .await?;
        row.as_ref()
            .map(record)
            .transpose()
            .map_err(|e| self.query_error(&e))
    }

    /// The table's identity and revision: where the last change left it.
    pub(crate) async fn position(&self) -> Result<Position, DatabaseError> {
        let row = self
            .bounded(self.client.query_one(POSITION_QUERY, &[]))
            .await?;
        position(&row).map_err(|e| self.query_error(&e))
    }

    /// The live keys and where the table stands, read in one snapshot.
    pub(crate) async fn live_keys(&mut self) -> Result<TableRead, DatabaseError> {
        let query = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL OR revoked_at > pg_catalog.now()"
        );
        self.read_snapshot(&query, None).await
    }

    /// The rows changed and deleted since `revision`, and where they bring the reader, read
    /// in one snapshot. Whoever reads them checks that the table is still the one that
    /// `revision` was counted by.
    pub(crate) async fn changes_since(
        &mut self,
        revision: i64,
    ) -> Result<TableRead, DatabaseError> {
        let query = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE revision > $1");
        self.read_snapshot(&query, Some(revision)).await
    }

    async fn read_snapshot(
        &mut self,
        query: &str,
        since: Option<i64>,
    ) -> Result<TableRead, DatabaseError> {
        // A whole table may take longer than a statement should: six times the timeout.
        let timeout = match since {
            Some(_) => self.timeout,
            None => self.timeout.saturating_mul(FULL_READ_FACTOR),
        };
        let work = async {
            let transaction = self
                .client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            if since.is_none() {
                transaction
                    .batch_execute(&format!(
                        "SET LOCAL statement_timeout = {}",
                        timeout.as_millis().max(1)
                    ))
                    .await?;
            }
            let at = transaction.query_one(POSITION_QUERY, &[]).await?;
            let position = position(&at)?;
            let table: String = at.try_get("table_name")?;
            let mut changes = Vec::new();
            let rows = match since {
                Some(since) => transaction.query(query, &[&since]).await?,
                None => transaction.query(query, &[]).await?,
            };
            for row in &rows {
                changes.push(key_row(row)?);
            }
            if let Some(since) = since {
                for row in transaction
                    .query(
                        "SELECT name, revision FROM api_keys_deleted WHERE revision > $1",
                        &[&since],
                    )
                    .await?
                {
                    changes.push(RowChange::Deleted {
                        name: row.try_get(0)?,
                        revision: row.try_get(1)?,
                    });
                }
            }
            transaction.commit().await?;
            Ok(TableRead {
                position,
                table,
                changes,
            })
        };
        match rocket::tokio::time::timeout(timeout, work).await {
            Err(_) => Err(DatabaseError::Timeout(timeout)),
            Ok(Err(e)) => Err(query_error(&e, &self.url)),
            Ok(Ok(read)) => Ok(read),
        }
    }

    /// Records when keys were last accepted, in one statement; a later time never goes back.
    pub(crate) async fn record_last_used(
        &self,
        used: &[(String, OffsetDateTime)],
    ) -> Result<(), DatabaseError> {
        let (names, times): (Vec<&str>, Vec<OffsetDateTime>) =
            used.iter().map(|(name, at)| (name.as_str(), *at)).unzip();
        self.bounded(self.client.execute(
            "INSERT INTO api_keys_last_used (name, last_used_at) \
             SELECT u.name, u.at FROM unnest($1::text[], $2::timestamptz[]) AS u(name, at) \
             WHERE EXISTS (SELECT 1 FROM api_keys k WHERE k.name = u.name) \
             ON CONFLICT (name) DO UPDATE \
             SET last_used_at = greatest(api_keys_last_used.last_used_at, EXCLUDED.last_used_at)",
            &[&names, &times],
        ))
        .await
        .map(|_| ())
    }

    /// Runs `statement` within the timeout, with its error described.
    async fn bounded<T>(
        &self,
        statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DatabaseError> {
        match rocket::tokio::time::timeout(self.timeout, statement).await {
            Err(_) => Err(DatabaseError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(self.query_error(&e)),
            Ok(Ok(value)) => Ok(value),
        }
    }

    fn query_error(&self, e: &tokio_postgres::Error) -> DatabaseError {
        query_error(e, &self.url)
    }
}
