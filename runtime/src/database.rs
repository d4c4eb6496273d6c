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
//! # async fn run() -> Result<(), rocket_api_key_runtime::database::DatabaseError> {
//! use rocket_api_key_runtime::database::KeyTable;
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
//! Without the feature the module is empty.

#[cfg(feature = "postgres")]
pub use with_postgres::*;

#[cfg(feature = "postgres")]
mod with_postgres {
    use std::fmt;
    use std::time::Duration;

    use std::path::Path;
    use std::sync::Arc;
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    use tokio_postgres::config::SslMode;
    use tokio_postgres::tls::MakeTlsConnect;
    use tokio_postgres::{Client, Row, Socket};
    use tokio_postgres_rustls::MakeRustlsConnect;

    use crate::config::CredentialUrl;
    use crate::database_keys::{Position, RowChange, TableRead};
    use crate::digest::KeyDigest;
    use crate::entry::{parse_entry, quoted, EntryError, KeyEntry};
    use crate::keygen::{GeneratedKey, KeyGenError};
    use crate::load::{key_name, retired_name};

    /// The channel of the table's `NOTIFY`: its payload is the new revision.
    pub const CHANNEL: &str = "api_keys";

    /// The `application_name` of the listener's connection, to find it in `pg_stat_activity`.
    pub const LISTENER_NAME: &str = "rocket-api-key listener";

    /// The check [`SCHEMA`] makes before it writes anything and again at its end.
    macro_rules! ownership_check {
        () => {
            r#"
    -- Nothing of the schema may belong to another role, or carry a trigger or rule of another's:
    -- the functions run with their owner's rights, and a table or function made beforehand by
    -- another role (CREATE TABLE IF NOT EXISTS keeps a table, CREATE OR REPLACE FUNCTION keeps a
    -- function's owner) would run that role's code as the owner, a superuser included. Checked
    -- before anything is written, and again at the end.
    DO $$
    DECLARE
        schema_name text := pg_catalog.current_schema();
        relation text;
        routine text;
        found record;
        id oid;
        me oid := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
        database_owner oid := pg_catalog.to_regrole('pg_database_owner');
        owns_database boolean := (SELECT d.datdba = me FROM pg_catalog.pg_database d
            WHERE d.datname = pg_catalog.current_database());
    BEGIN
        -- Only this role may create objects in the schemas that names resolve in, or another
        -- could plant a function or operator that the statements below, or the trigger
        -- functions, would call with this role's rights (PostgreSQL 14 and older let every
        -- role create in `public`).
        IF schema_name IS NULL THEN
            RAISE EXCEPTION 'refusing to create the key table: no schema of the search_path exists';
        END IF;
        FOR found IN
            SELECT n.nspname, n.nspowner AS who FROM pg_catalog.pg_namespace n
                WHERE n.nspname = ANY (pg_catalog.current_schemas(false))
            UNION ALL
            SELECT n.nspname, a.grantee FROM pg_catalog.pg_namespace n,
                pg_catalog.aclexplode(n.nspacl) a
                WHERE n.nspname = ANY (pg_catalog.current_schemas(false))
                AND a.privilege_type = 'CREATE'::text
        LOOP
            IF NOT (found.who = me OR (found.who = database_owner AND owns_database)) THEN
                RAISE EXCEPTION 'refusing to create the key table: in schema %, role % may create objects, which this role''s statements could then run; use a schema only % can create in (CREATE SCHEMA keys AUTHORIZATION %; and search_path=keys in the URL''s options), or REVOKE CREATE ON SCHEMA % FROM %',
                    found.nspname,
                    CASE WHEN found.who = 0::oid THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(found.who)::text END,
                    current_user, current_user, found.nspname,
                    CASE WHEN found.who = 0::oid THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(found.who)::text END;
            END IF;
        END LOOP;
        FOREACH relation IN ARRAY
            ARRAY['api_keys', 'api_keys_revision', 'api_keys_deleted', 'api_keys_last_used']
        LOOP
            id := pg_catalog.to_regclass(pg_catalog.format('%I.%I', schema_name, relation));
            CONTINUE WHEN id IS NULL;
            SELECT c.relkind, pg_catalog.pg_get_userbyid(c.relowner) AS owner,
                (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid
                    AND NOT t.tgisinternal
                    AND NOT (relation = 'api_keys'
                        AND t.tgname IN ('api_keys_changed', 'api_keys_truncated'))) AS triggers,
                (SELECT count(*) FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid) AS rules
            INTO found FROM pg_catalog.pg_class c WHERE c.oid = id;
            IF found.relkind <> 'r' OR found.owner <> current_user
                OR found.triggers > 0 OR found.rules > 0 THEN
                RAISE EXCEPTION 'refusing to use %.%: it must be an ordinary table owned by %, with no trigger or rule of another''s', schema_name, relation, current_user;
            END IF;
        END LOOP;
        FOREACH routine IN ARRAY
            ARRAY['api_keys_next_revision(text)', 'api_keys_changed()', 'api_keys_truncated()']
        LOOP
            id := pg_catalog.to_regprocedure(pg_catalog.format('%I.%s', schema_name, routine));
            CONTINUE WHEN id IS NULL;
            IF (SELECT pg_catalog.pg_get_userbyid(p.proowner) FROM pg_catalog.pg_proc p
                WHERE p.oid = id) <> current_user THEN
                RAISE EXCEPTION 'refusing to use %.%: it must be owned by %', schema_name, routine, current_user;
            END IF;
        END LOOP;
    END
    $$;
    "#
        };
    }

    /// The table, its revision counter, the record of deletions, the last-used times and the trigger
    /// that numbers and announces every change. Idempotent: [`KeyTable::init`] runs it as it is.
    pub const SCHEMA: &str = concat!(
        ownership_check!(),
        r#"
    CREATE TABLE IF NOT EXISTS api_keys (
        name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,64}$'),
        digest      bytea NOT NULL UNIQUE CHECK (pg_catalog.octet_length(digest) = 32),
        scopes      text[] NOT NULL DEFAULT '{}'
                    CHECK (pg_catalog.array_position(scopes, NULL) IS NULL
                        AND coalesce(pg_catalog.array_ndims(scopes), 1) = 1),
        expires_at  timestamptz CHECK (pg_catalog.isfinite(expires_at)),
        ips         text[] NOT NULL DEFAULT '{}'
                    CHECK (pg_catalog.array_position(ips, NULL) IS NULL
                        AND coalesce(pg_catalog.array_ndims(ips), 1) = 1),
        rate        text,
        created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
        revoked_at  timestamptz CHECK (pg_catalog.isfinite(revoked_at)),
        revision    bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS api_keys_revision_idx ON api_keys (revision);

    -- One row: the revision of the last change. Writers take its row lock in turn, so revisions
    -- are given in commit order and a reader that sees revision N sees every change up to N;
    -- the changes of one transaction share its revision.
    CREATE TABLE IF NOT EXISTS api_keys_revision (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        revision bigint NOT NULL,
        -- The transaction that took `revision`: every row it writes shares it.
        txid bigint NOT NULL DEFAULT 0
    );
    -- The counter's identity, random, made with its row. Instances read it with the table's
    -- OID beside every revision: a table dropped and created again, restored from a dump or
    -- reset by hand has another, and its revisions are not compared with the old ones'.
    ALTER TABLE api_keys_revision
        ADD COLUMN IF NOT EXISTS epoch text NOT NULL DEFAULT pg_catalog.gen_random_uuid()::text;
    INSERT INTO api_keys_revision (revision) VALUES (0) ON CONFLICT DO NOTHING;

    -- Names deleted (or renamed away), so that instances reading changes see deletions too.
    CREATE TABLE IF NOT EXISTS api_keys_deleted (
        revision bigint NOT NULL,
        name     text NOT NULL,
        PRIMARY KEY (revision, name)
    );

    -- Written in batches by each instance; kept apart so that it never moves the revision.
    CREATE TABLE IF NOT EXISTS api_keys_last_used (
        name         text PRIMARY KEY,
        last_used_at timestamptz NOT NULL
    );

    -- Numbers a change, records a deletion (`*` for every name: TRUNCATE) and announces it.
    -- The functions run with their owner's rights (SECURITY DEFINER), so that a role allowed to
    -- write keys needs no right on the counter, the deletions or the last-used times; their
    -- search_path is pinned below to this schema, then pg_temp, so that no writer's objects
    -- stand in for the schema's. No one else may call this one directly.
    CREATE OR REPLACE FUNCTION api_keys_next_revision(deleted text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER AS $$
    DECLARE
        latest bigint;
        taken_by bigint;
    BEGIN
        -- One revision per transaction, taken at its first change: a bulk write updates the
        -- counter and notifies once, not once a row. The row lock is held to the commit.
        SELECT revision, txid INTO latest, taken_by FROM api_keys_revision FOR UPDATE;
        IF taken_by IS DISTINCT FROM pg_catalog.txid_current() THEN
            UPDATE api_keys_revision SET revision = revision + 1, txid = pg_catalog.txid_current()
                RETURNING revision INTO latest;
        END IF;
        IF deleted = '*' THEN
            DELETE FROM api_keys_last_used;
        ELSIF deleted IS NOT NULL THEN
            DELETE FROM api_keys_last_used WHERE name = deleted;
        END IF;
        IF deleted IS NOT NULL THEN
            INSERT INTO api_keys_deleted (revision, name) VALUES (latest, deleted)
                ON CONFLICT DO NOTHING;
        END IF;
        PERFORM pg_catalog.pg_notify('api_keys', latest::text);
        RETURN latest;
    END
    $$;

    CREATE OR REPLACE FUNCTION api_keys_changed() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER AS $$
    BEGIN
        -- Only for the key table: a trigger that another role puts on a table of its own must
        -- not number, delete or hold the counter with the owner's rights.
        IF TG_RELID OPERATOR(pg_catalog.<>) 'api_keys'::regclass::oid THEN
            RAISE EXCEPTION 'api_keys_changed() is the trigger of api_keys only';
        END IF;
        IF TG_OP = 'DELETE' THEN
            PERFORM api_keys_next_revision(OLD.name);
            RETURN OLD;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.name <> OLD.name THEN
            NEW.revision := api_keys_next_revision(OLD.name);
        ELSE
            NEW.revision := api_keys_next_revision(NULL);
        END IF;
        RETURN NEW;
    END
    $$;
    DROP TRIGGER IF EXISTS api_keys_changed ON api_keys;
    CREATE TRIGGER api_keys_changed BEFORE INSERT OR UPDATE OR DELETE ON api_keys
        FOR EACH ROW EXECUTE FUNCTION api_keys_changed();

    -- TRUNCATE fires no row trigger: it is recorded as the deletion of every name, which makes
    -- instances drop the table's keys.
    CREATE OR REPLACE FUNCTION api_keys_truncated() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER AS $$
    BEGIN
        IF TG_RELID OPERATOR(pg_catalog.<>) 'api_keys'::regclass::oid THEN
            RAISE EXCEPTION 'api_keys_truncated() is the trigger of api_keys only';
        END IF;
        PERFORM api_keys_next_revision('*');
        RETURN NULL;
    END
    $$;
    DROP TRIGGER IF EXISTS api_keys_truncated ON api_keys;
    CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION api_keys_truncated();

    -- Fired for replicated and restored writes too (session_replication_role = replica).
    ALTER TABLE api_keys ENABLE ALWAYS TRIGGER api_keys_changed;
    ALTER TABLE api_keys ENABLE ALWAYS TRIGGER api_keys_truncated;

    DO $$
    DECLARE
        pinned text := pg_catalog.format('%I, pg_temp', pg_catalog.current_schema());
    BEGIN
        EXECUTE pg_catalog.format('ALTER FUNCTION api_keys_next_revision(text) SET search_path = %s', pinned);
        EXECUTE pg_catalog.format('ALTER FUNCTION api_keys_changed() SET search_path = %s', pinned);
        EXECUTE pg_catalog.format('ALTER FUNCTION api_keys_truncated() SET search_path = %s', pinned);
    END
    $$;
    REVOKE ALL ON FUNCTION api_keys_next_revision(text), api_keys_changed(), api_keys_truncated()
        FROM PUBLIC;

    "#,
        ownership_check!()
    );

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
    const RECORD_QUERY: &str =
        "SELECT k.name, k.scopes, k.expires_at, k.ips, k.rate, k.created_at, \
         k.revoked_at, u.last_used_at FROM api_keys k \
         LEFT JOIN api_keys_last_used u ON u.name = k.name";

    /// Why an operation on the table failed. Never holds a key, a digest or the URL's password.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum DatabaseError {
        /// The URL does not parse (the reason, without the URL).
        Url(String),
        /// The server cannot be reached or refused the connection.
        Connect(String),
        /// A statement failed (the server's message and SQLSTATE, without its details, which can
        /// quote a row).
        Query(String),
        /// The server did not answer in time.
        Timeout(Duration),
        /// The table does not exist: run `apikey db init`.
        NoTable,
        /// No key of this name.
        NoSuchKey(String),
        /// A key of this name exists already.
        NameTaken(String),
        /// The same key is in the table already, under another name.
        KeyTaken,
        /// The TLS settings cannot be used: the CA file cannot be read or holds no certificate.
        Tls(String),
        /// An invalid key name.
        Name(String),
        /// An entry that does not parse.
        Entry(EntryError),
        /// The key could not be generated.
        KeyGen(KeyGenError),
        /// The key to rotate is revoked.
        Revoked(String),
        /// The key to rotate is to be revoked at a time set already (a scheduled revocation, or
        /// the end of a rotation's grace period): a successor would outlive it.
        RevocationScheduled(String, OffsetDateTime),
        /// The table was created by an older version of this crate: run `apikey db init`.
        Outdated,
        /// A role name that cannot be granted rights (empty, or with a NUL).
        Role(String),
    }

    impl fmt::Display for DatabaseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                DatabaseError::Url(why) => write!(f, "invalid database URL: {why}"),
                DatabaseError::Connect(why) => write!(f, "cannot connect to the database: {why}"),
                DatabaseError::Query(why) => write!(f, "database error: {why}"),
                DatabaseError::Timeout(after) => {
                    write!(f, "the database did not answer within {after:?}")
                }
                DatabaseError::Tls(why) => write!(f, "TLS for the database: {why}"),
                DatabaseError::NoTable => f.write_str(
                    "the table `api_keys` does not exist; create it with `apikey db init`",
                ),
                DatabaseError::NoSuchKey(name) => write!(f, "no key named `{name}`"),
                DatabaseError::NameTaken(name) => write!(f, "a key named `{name}` exists already"),
                DatabaseError::KeyTaken => {
                    f.write_str("the same key is in the table already under another name")
                }
                DatabaseError::Name(name) => write!(
                    f,
                    "invalid key name {}: use 1 to 64 letters, digits and `_`",
                    quoted(name)
                ),
                DatabaseError::Entry(e) => write!(f, "invalid entry: {e}"),
                DatabaseError::KeyGen(e) => write!(f, "{e}"),
                DatabaseError::Revoked(name) => write!(f, "the key `{name}` is revoked"),
                DatabaseError::RevocationScheduled(name, at) => write!(
                    f,
                    "the key `{name}` is to be revoked at {}, and a successor would outlive that; \
                     revoke it now, or issue a new key",
                    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
                ),
                DatabaseError::Outdated => f.write_str(
                    "the key table was created by an older version; bring it up to date with \
                     `apikey db init`",
                ),
                DatabaseError::Role(role) => write!(f, "invalid role name {}", quoted(role)),
            }
        }
    }

    impl std::error::Error for DatabaseError {}

    /// A key the table holds, as `apikey list` shows it: no digest.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct KeyRecord {
        /// The key's name.
        pub name: String,
        /// Its scopes.
        pub scopes: Vec<String>,
        /// When it expires.
        pub expires_at: Option<OffsetDateTime>,
        /// The networks it may be used from; empty means anywhere.
        pub ips: Vec<String>,
        /// Its rate limit (`100/m`).
        pub rate: Option<String>,
        /// When it was issued.
        pub created_at: OffsetDateTime,
        /// When it was revoked, or is to be (the end of a rotation's grace period).
        pub revoked_at: Option<OffsetDateTime>,
        /// When an instance last accepted it, as of the instances' last flush.
        pub last_used_at: Option<OffsetDateTime>,
    }

    /// A key just issued: shown once, stored nowhere. Its `Debug` shows only the name.
    pub struct IssuedKey {
        /// The key's name.
        pub name: String,
        key: GeneratedKey,
    }

    impl IssuedKey {
        /// The key itself, to give to the client.
        pub fn expose_secret(&self) -> &str {
            self.key.expose_secret()
        }

        /// The key's SHA-256 digest (what the table holds).
        pub fn digest(&self) -> KeyDigest {
            self.key.digest()
        }

        /// The key as generated.
        pub fn generated(&self) -> &GeneratedKey {
            &self.key
        }
    }

    impl fmt::Debug for IssuedKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("IssuedKey")
                .field("name", &self.name)
                .finish_non_exhaustive()
        }
    }

    /// What [`KeyTable::rotate`] did: the new key, shown once, and what became of the old one.
    #[derive(Debug)]
    #[non_exhaustive]
    pub struct Rotation {
        /// The successor's key.
        pub key: IssuedKey,
        /// The successor as the table holds it.
        pub successor: KeyRecord,
        /// The old key's new name, `<name>_r<revision>`.
        pub retired: String,
        /// When the old key stops being accepted.
        pub retired_until: OffsetDateTime,
    }

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

    /// A connection to the server, driven by whoever holds it.
    pub(crate) type Connection =
        tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

    /// The TLS client: Mozilla's roots, and the certificates of the PEM file `ca`.
    fn tls(ca: Option<&Path>) -> Result<MakeRustlsConnect, DatabaseError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;

        let mut roots: rustls::RootCertStore =
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
        if let Some(path) = ca {
            let unreadable =
                |e: &dyn fmt::Display| DatabaseError::Tls(format!("{}: {e}", path.display()));
            let mut added = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
                let cert = cert.map_err(|e| unreadable(&e))?;
                roots.add(cert).map_err(|e| unreadable(&e))?;
                added += 1;
            }
            if added == 0 {
                return Err(unreadable(&"no certificate in the file"));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DatabaseError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
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
            let (client, connection) = Self::open(url, ca, application_name, timeout).await?;
            rocket::tokio::spawn(async move {
                // Ends when the client is dropped or the connection breaks; the next statement
                // reports the break.
                let _ = connection.await;
            });
            Ok(KeyTable::from_client(client, url, timeout))
        }

        /// Opens a connection and returns it unspawned, for the listener, which reads its
        /// notifications.
        pub(crate) async fn open(
            url: &str,
            ca: Option<&Path>,
            application_name: Option<&str>,
            timeout: Duration,
        ) -> Result<(Client, Connection), DatabaseError> {
            let shown = CredentialUrl::new(url);
            let mut config: tokio_postgres::Config = url
                .parse()
                .map_err(|e: tokio_postgres::Error| DatabaseError::Url(describe(&e, &shown)))?;
            // Fail closed: TLS is required unless the URL turns it off. The client's default,
            // and `prefer`, would fall back to plaintext for a server without TLS (or a
            // man in the middle that says so). Read from the client's own parse, so that text
            // inside a quoted value cannot count as the setting.
            if config.get_ssl_mode() != SslMode::Disable {
                config.ssl_mode(SslMode::Require);
            }
            config.connect_timeout(timeout);
            // The server ends what the client stops waiting for: a statement, a lock wait, a
            // transaction left open by a client that went away.
            let millis = timeout.as_millis().max(1);
            // The URL's own `options` (a `search_path`, a role's settings) are kept, after these,
            // so that they win where both set a parameter: replacing them made an instance read
            // another schema's table than `psql` with the same URL.
            let mut options = format!(
                "-c statement_timeout={millis} -c lock_timeout={millis} \
                 -c idle_in_transaction_session_timeout={}",
                millis.saturating_mul(2)
            );
            if let Some(own) = config.get_options().filter(|own| !own.trim().is_empty()) {
                options.push(' ');
                options.push_str(own);
            }
            config.options(options);
            // A dead peer (a cut network, a host gone) is noticed within about a minute even
            // while the listener only waits.
            config.keepalives(true);
            config.keepalives_idle(Duration::from_secs(30));
            config.keepalives_interval(Duration::from_secs(10));
            config.keepalives_retries(3);
            config.tcp_user_timeout(Duration::from_secs(60));
            if let Some(name) = application_name {
                config.application_name(name);
            }
            let tls = tls(ca)?;
            match rocket::tokio::time::timeout(timeout, config.connect(tls)).await {
                Err(_) => Err(DatabaseError::Timeout(timeout)),
                Ok(Err(e)) => Err(DatabaseError::Connect(describe(&e, &shown))),
                Ok(Ok(pair)) => Ok(pair),
            }
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
        pub async fn grant(
            &self,
            instance: &str,
            admin: &str,
        ) -> Result<Vec<String>, DatabaseError> {
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

    fn query_error(e: &tokio_postgres::Error, url: &CredentialUrl) -> DatabaseError {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
            return DatabaseError::NoTable;
        }
        // Every column this crate reads is made by `init`: one missing is a schema made by an
        // older version.
        if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_COLUMN) {
            return DatabaseError::Outdated;
        }
        if e.is_closed() {
            return DatabaseError::Connect(describe(e, url));
        }
        DatabaseError::Query(describe(e, url))
    }

    /// An error of the client, told without what could quote a row or a credential: a server error
    /// by its message, constraint and SQLSTATE (its `DETAIL` can quote a digest), any other with its
    /// causes, and never the URL's password.
    fn describe(e: &tokio_postgres::Error, url: &CredentialUrl) -> String {
        let mut text = match e.as_db_error() {
            Some(db) => match db.constraint() {
                Some(constraint) => format!(
                    "{} (constraint {constraint}, SQLSTATE {})",
                    db.message(),
                    db.code().code()
                ),
                None => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            },
            None => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                text
            }
        };
        if text.contains("server does not support TLS") {
            text.push_str(
                "; add `sslmode=disable` to the URL to connect without TLS, over a Unix socket or \
                 a private network only",
            );
        }
        url.scrub(&text)
    }

    fn position(row: &Row) -> Result<Position, tokio_postgres::Error> {
        Ok(Position {
            epoch: row.try_get("epoch")?,
            revision: row.try_get("revision")?,
        })
    }

    fn record(row: &Row) -> Result<KeyRecord, tokio_postgres::Error> {
        Ok(KeyRecord {
            name: row.try_get(0)?,
            scopes: row.try_get(1)?,
            expires_at: row.try_get(2)?,
            ips: row.try_get(3)?,
            rate: row.try_get(4)?,
            created_at: row.try_get(5)?,
            revoked_at: row.try_get(6)?,
            last_used_at: row.try_get(7)?,
        })
    }

    /// One row of [`KEY_COLUMNS`] as a change: its entry, built and checked by the entry grammar,
    /// so that a row holds the keys-file rules whatever wrote it.
    fn key_row(row: &Row) -> Result<RowChange, tokio_postgres::Error> {
        let name: String = row.try_get("name")?;
        let revision: i64 = row.try_get("revision")?;
        let live: bool = row.try_get("live")?;
        // A value the database holds but this client cannot read (an infinite time, an array
        // with a NULL, written around the table's checks) fails this row's load, not the read.
        let entry = live.then(|| {
            let digest = row
                .try_get::<_, Vec<u8>>("digest")
                .map_err(|_| EntryError::BadDigest)?;
            let scopes = row
                .try_get::<_, Vec<String>>("scopes")
                .map_err(|_| EntryError::BadScope("<an array this client cannot read>".into()))?;
            let ips = row
                .try_get::<_, Vec<String>>("ips")
                .map_err(|_| EntryError::BadIp("<an array this client cannot read>".into()))?;
            let rate = row
                .try_get::<_, Option<String>>("rate")
                .map_err(|_| EntryError::FieldSyntax(0))?;
            let until = row
                .try_get::<_, Option<OffsetDateTime>>("until")
                .map_err(|_| {
                    EntryError::BadExpiry("infinite, or outside the years 1 to 9999".into())
                })?;
            row_entry(&digest, &scopes, &ips, rate.as_deref(), until)
        });
        Ok(RowChange::Row {
            name,
            revision,
            entry,
        })
    }

    /// The entry of a row's fields. A field holding `;` or `,` is refused rather than let it add a
    /// field or an item of its own to the entry.
    fn row_entry(
        digest: &[u8],
        scopes: &[String],
        ips: &[String],
        rate: Option<&str>,
        until: Option<OffsetDateTime>,
    ) -> Result<KeyEntry, EntryError> {
        let digest: [u8; 32] = digest.try_into().map_err(|_| EntryError::BadDigest)?;
        let mut entry = KeyDigest::from_bytes(digest).to_entry();
        let separator = |text: &str| text.contains([';', ',']);
        if let Some(scope) = scopes.iter().find(|s| separator(s)) {
            return Err(EntryError::BadScope(quoted(scope)));
        }
        if let Some(ip) = ips.iter().find(|s| separator(s)) {
            return Err(EntryError::BadIp(quoted(ip)));
        }
        if !scopes.is_empty() {
            entry.push_str(";scopes=");
            entry.push_str(&scopes.join(","));
        }
        if let Some(at) = until {
            entry.push_str(";expires=");
            entry.push_str(
                &at.format(&Rfc3339)
                    .map_err(|e| EntryError::BadExpiry(e.to_string()))?,
            );
        }
        if !ips.is_empty() {
            entry.push_str(";ips=");
            entry.push_str(&ips.join(","));
        }
        if let Some(rate) = rate {
            if rate.contains(';') {
                return Err(EntryError::FieldSyntax(0));
            }
            entry.push_str(";rate=");
            entry.push_str(rate);
        }
        parse_entry(&entry)
    }

    /// The `GRANT` statements of [`KeyTable::grant`] for the table in `schema`: each role name
    /// quoted as an identifier, so that it is taken as written (case included).
    pub fn grant_statements(
        schema: &str,
        instance: &str,
        admin: &str,
    ) -> Result<Vec<String>, DatabaseError> {
        let schema = identifier(schema)?;
        let [instance, admin] = [instance, admin].map(role);
        let (instance, admin) = (instance?, admin?);
        Ok(vec![
            format!("GRANT USAGE ON SCHEMA {schema} TO {instance}, {admin};"),
            format!(
                "GRANT SELECT ON {schema}.api_keys, {schema}.api_keys_revision, \
                 {schema}.api_keys_deleted TO {instance};"
            ),
            format!("GRANT SELECT, INSERT, UPDATE ON {schema}.api_keys_last_used TO {instance};"),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.api_keys TO {admin};"),
            format!("GRANT SELECT ON {schema}.api_keys_last_used TO {admin};"),
        ])
    }

    /// A role to grant to, as a quoted identifier. The names PostgreSQL reads as something else
    /// even quoted (`"public"` is every role) and its own roles are refused.
    fn role(name: &str) -> Result<String, DatabaseError> {
        let lower = name.to_ascii_lowercase();
        let reserved = [
            "public",
            "none",
            "current_user",
            "current_role",
            "session_user",
        ];
        if reserved.contains(&lower.as_str()) || lower.starts_with("pg_") {
            return Err(DatabaseError::Role(name.to_owned()));
        }
        identifier(name)
    }

    /// `name` as a quoted SQL identifier.
    fn identifier(name: &str) -> Result<String, DatabaseError> {
        if name.is_empty() || name.contains('\0') {
            return Err(DatabaseError::Role(name.to_owned()));
        }
        Ok(format!("\"{}\"", name.replace('"', "\"\"")))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_row_is_read_by_the_entry_grammar() {
            let digest = KeyDigest::of(b"0123456789abcdef0123");
            let entry = row_entry(
                digest.as_bytes(),
                &["read:orders".into()],
                &["10.0.0.0/8".into()],
                Some("5/m"),
                None,
            )
            .unwrap();
            assert!(entry.digest.ct_eq(&digest));
            assert_eq!(entry.scopes, ["read:orders"]);
            assert_eq!(entry.ips.len(), 1);
            assert!(entry.rate.is_some());
        }

        #[test]
        fn a_field_cannot_smuggle_another_one_in() {
            let digest = KeyDigest::of(b"0123456789abcdef0123");
            let bytes = digest.as_bytes();
            let smuggled = ["read;ips=0.0.0.0/0".to_owned()];
            assert!(matches!(
                row_entry(bytes, &smuggled, &[], None, None),
                Err(EntryError::BadScope(_))
            ));
            let smuggled = ["10.0.0.1,0.0.0.0/0".to_owned()];
            assert!(row_entry(bytes, &[], &smuggled, None, None).is_err());
            assert!(row_entry(bytes, &[], &[], Some("5/m;scopes=admin"), None).is_err());
            assert!(row_entry(&bytes[..31], &[], &[], None, None).is_err());
            let bad = ["ADMIN ALL".to_owned()];
            assert!(row_entry(bytes, &bad, &[], None, None).is_err());
        }

        #[test]
        fn grants_quote_every_name() {
            let grants = grant_statements("svc", "orders app", "Keys\"; DROP TABLE x; --").unwrap();
            assert_eq!(
                grants[0],
                r#"GRANT USAGE ON SCHEMA "svc" TO "orders app", "Keys""; DROP TABLE x; --";"#
            );
            assert!(
                grants.iter().all(|g| !g.contains("\"Keys\";")),
                "{grants:?}"
            );
            assert!(grant_statements("svc", "", "admin").is_err());
            assert!(grant_statements("svc", "a\0b", "admin").is_err());
            // `"public"` grants to every role.
            for reserved in [
                "public",
                "PUBLIC",
                "none",
                "current_user",
                "session_user",
                "pg_monitor",
            ] {
                assert!(
                    grant_statements("svc", "app", reserved).is_err(),
                    "{reserved}"
                );
            }
        }
    }
}
