//! Keys in PostgreSQL (feature `postgres`): issued and revoked at runtime, shared by every
//! instance of a service.
//!
//! The table holds what an environment entry holds, never a key: the key's name, the SHA-256
//! digest of the key, its scopes, expiry, address allowlist and rate, with `created_at`,
//! `revoked_at` and a `revision` the database maintains. A trigger numbers every transaction that
//! changes it from one counter and announces it with `NOTIFY api_keys`; each instance keeps the
//! live keys in memory, listens on a connection of its own, and reads only the rows changed since
//! the revision it has. Requests never wait for the database.
//!
//! [`KeyTable`] is what the `apikey` command uses to create the table and to issue, list, rotate
//! and revoke keys; an application's own administration can use it too:
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn run() -> Result<(), rocket_api_key::database::DatabaseError> {
//! use rocket_api_key::database::KeyTable;
//!
//! let table = KeyTable::connect("postgres://keys_admin@db.internal/orders").await?;
//! table.init().await?;
//! let key = table.issue("batch", "scopes=read:orders;rate=100/m").await?;
//! println!("give this to the client: {}", key.expose_secret());
//! table.revoke("batch").await?;
//! # Ok(()) }
//! ```
//!
//! The listener needs a direct connection: `LISTEN` does not work through PgBouncer in
//! transaction or statement mode.
//!
//! Connections use TLS unless the URL says `sslmode=disable` (a Unix socket, a private network):
//! with no `sslmode`, and with `sslmode=prefer`, TLS is required, as with `sslmode=require`; a
//! server without TLS is refused rather than read in plaintext. Whether the URL sets `sslmode` is
//! decided by the client library's own parse of it, quoting included. Whenever TLS is used the
//! server's certificate is verified, as `sslmode=verify-full` does in libpq: against Mozilla's roots and the CA file given
//! to [`KeyTable::connect_with_ca`] (`keys_database_ca`), for the host name or address of the URL.

//!
//! The parts: the [schema](SCHEMA) (`schema.sql`, `ownership.sql`), the administration client [`KeyTable`]
//! (`table.rs`) and what it returns (`records.rs`), its errors (`error.rs`), the connection and its TLS (`connection.rs`), the
//! least-privilege grants (`grants.rs`), how an instance reads a row (`rows.rs`), and the copy
//! of the table an instance keeps (`keys.rs`), which every load of the keys reads.

mod error;
mod grants;
pub(crate) mod keys;
mod records;
mod rows;
mod table;
pub(crate) mod connection;

pub use error::DatabaseError;
pub use grants::grant_statements;
pub use records::{IssuedKey, KeyRecord, Rotation};
pub use table::{KeyTable, DEFAULT_TIMEOUT};

/// The channel of the table's `NOTIFY`: its payload is the new revision.
pub const CHANNEL: &str = "api_keys";

/// The `application_name` of the listener's connection, to find it in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "rocket-api-key listener";

/// The table, its revision counter, the record of deletions, the last-used times and the trigger
/// that numbers and announces every change. Idempotent: [`KeyTable::init`] runs it as it is.
///
/// It checks, before it writes anything and again at its end, that every table and function of
/// the schema is the connecting role's own, with no trigger or rule of another's
/// (`ownership.sql`).
pub const SCHEMA: &str = concat!(
    include_str!("ownership.sql"),
    include_str!("schema.sql"),
    include_str!("ownership.sql")
);
