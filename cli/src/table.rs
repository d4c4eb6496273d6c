//! The commands on the PostgreSQL key table: `db init`, `list`, `revoke` and `rotate`, and the
//! connection they (and `new --database`) make.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use rocket_api_key_runtime::__private::cli::{parse_entry, DATABASE_URL_VAR};
use rocket_api_key_runtime::database::{DatabaseError, IssuedKey, KeyRecord, KeyTable};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::output::{announce, entry_text, print, stdout_is_null, time_text, Held};
use crate::values::{self, Checked};
use crate::Failure;

/// Which key table, and how to trust its server.
#[derive(Args)]
pub struct TableOptions {
    /// The key table's PostgreSQL URL [default: $API_KEYS_DATABASE_URL, which keeps a password
    /// out of the process list]
    // The next argument, whatever it begins with: clap's tip for a value that begins with `-`
    // would show it.
    #[arg(
        long,
        value_name = "URL",
        value_parser = Checked(values::database_url),
        allow_hyphen_values = true
    )]
    pub database_url: Option<Zeroizing<String>>,
    /// CA certificates to trust for the database's TLS, besides Mozilla's roots; TLS is required
    /// unless the URL says `sslmode=disable`
    #[arg(long, value_name = "PEM")]
    pub database_ca: Option<PathBuf>,
}

impl TableOptions {
    /// Runs `command` on the key table of `--database-url` or `$API_KEYS_DATABASE_URL`.
    pub fn run<F, Fut>(self, command: F) -> Result<(), Failure>
    where
        F: FnOnce(KeyTable) -> Fut,
        Fut: std::future::Future<Output = Result<(), Failure>>,
    {
        let url = match self.database_url {
            Some(url) => url,
            None => Zeroizing::new(std::env::var(DATABASE_URL_VAR).map_err(|_| {
                Failure::Usage(format!(
                    "no key table: give `--database-url <URL>`, or set {DATABASE_URL_VAR}"
                ))
            })?),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Other(format!("cannot start: {e}")))?;
        runtime.block_on(async move {
            let table = match &self.database_ca {
                Some(ca) => KeyTable::connect_with_ca(&url, ca).await,
                None => KeyTable::connect(&url).await,
            }
            .map_err(failed)?;
            command(table).await
        })
    }
}

/// A failure of the database: exit code 1.
pub fn failed(e: DatabaseError) -> Failure {
    Failure::Other(e.to_string())
}

/// `apikey db`: the key table's schema.
#[derive(Subcommand)]
pub enum Db {
    /// Create the key table, or bring it up to date
    ///
    /// Creates the key table, its indexes and the trigger that notifies every instance, or
    /// brings them up to date; with `--grants`, also grants the applications' role and the
    /// administrators' role what each needs, and prints the statements.
    Init(DbInit),
}

/// `apikey db init`.
#[derive(Args)]
pub struct DbInit {
    /// Also grant the role the applications connect as (reads the keys, writes last-used
    /// times) and the role `apikey` runs as (issues, revokes and rotates keys) what each needs
    // The value name inside clap's `<…>`: `<INSTANCE>,<ADMIN>`.
    #[arg(long, value_name = "INSTANCE>,<ADMIN", value_parser = Checked(values::grants))]
    grants: Option<(String, String)>,
    #[command(flatten)]
    table: TableOptions,
}

impl Db {
    /// Runs the `db` command.
    pub fn run(self) -> Result<(), Failure> {
        match self {
            Db::Init(DbInit { grants, table }) => table.run(|table| db_init(table, grants)),
        }
    }
}

/// `apikey db init`: the schema, then the grants when asked for.
async fn db_init(table: KeyTable, grants: Option<(String, String)>) -> Result<(), Failure> {
    table.init().await.map_err(failed)?;
    let mut out = String::from("The key table `api_keys` is ready.\n");
    if let Some((instance, admin)) = &grants {
        let statements = table.grant(instance, admin).await.map_err(failed)?;
        out.push_str("Granted:\n");
        for statement in statements {
            out.push_str("    ");
            out.push_str(&statement);
            out.push('\n');
        }
    }
    print(&out)
}

/// `apikey list`.
#[derive(Args)]
pub struct List {
    /// Print one JSON array instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    table: TableOptions,
}

impl List {
    /// Runs `apikey list`.
    pub fn run(self) -> Result<(), Failure> {
        let json = self.json;
        self.table.run(|table| list(table, json))
    }
}

async fn list(table: KeyTable, json: bool) -> Result<(), Failure> {
    let records = table.list().await.map_err(failed)?;
    let now = OffsetDateTime::now_utc();
    if json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "scopes": r.scopes,
                    "expires": r.expires_at.map(|at| time_text(Some(at))),
                    "ips": r.ips,
                    "rate": r.rate,
                    "created": time_text(Some(r.created_at)),
                    "revoked": r.revoked_at.map(|at| time_text(Some(at))),
                    "last_used": r.last_used_at.map(|at| time_text(Some(at))),
                })
            })
            .collect();
        return print(&(serde_json::Value::from(rows).to_string() + "\n"));
    }
    let mut out = String::from("NAME\tSCOPES\tEXPIRES\tREVOKED\tLAST USED\n");
    for r in &records {
        let revoked = match r.revoked_at {
            None => "-".to_owned(),
            Some(at) if at > now => format!("from {}", time_text(Some(at))),
            Some(at) => time_text(Some(at)),
        };
        // What the table holds is shown escaped: a row written around `apikey` may hold
        // control characters.
        let scopes = if r.scopes.is_empty() {
            "-".to_owned()
        } else {
            r.scopes.join(",").escape_debug().to_string()
        };
        out.push_str(&format!(
            "{}\t{scopes}\t{}\t{revoked}\t{}\n",
            r.name.escape_debug(),
            r.expires_at
                .map_or("never".to_owned(), |at| time_text(Some(at))),
            r.last_used_at
                .map_or("never".to_owned(), |at| time_text(Some(at))),
        ));
    }
    print(&out)
}

/// `apikey revoke`.
#[derive(Args)]
pub struct Revoke {
    /// The key's name
    #[arg(long, value_parser = Checked(values::name))]
    name: String,
    #[command(flatten)]
    table: TableOptions,
}

impl Revoke {
    /// Runs `apikey revoke`.
    pub fn run(self) -> Result<(), Failure> {
        let name = self.name;
        self.table.run(|table| revoke(table, name))
    }
}

async fn revoke(table: KeyTable, name: String) -> Result<(), Failure> {
    let at = table.revoke(&name).await.map_err(failed)?;
    print(&format!(
        "Revoked `{name}` as of {}; every instance refuses it within a second.\n",
        time_text(Some(at))
    ))
}

/// `apikey rotate`.
#[derive(Args)]
pub struct Rotate {
    /// The key's name
    #[arg(long, value_parser = Checked(values::name))]
    name: String,
    /// How long the old key stays accepted (`24h`, `7d`; `0s`: not at all)
    #[arg(long, value_name = "DURATION", value_parser = Checked(values::grace))]
    grace: Duration,
    /// When the new key expires: a duration from now (`90d`, `12h`, `2w`) or an RFC 3339 time
    /// [default: never]
    #[arg(long, value_name = "WHEN", value_parser = Checked(values::expires))]
    expires: Option<OffsetDateTime>,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
    /// Accepted as in `new --database`; `rotate` has only the table
    #[arg(long, hide = true)]
    database: bool,
    #[command(flatten)]
    table: TableOptions,
}

impl Rotate {
    /// Runs `apikey rotate`.
    pub fn run(self) -> Result<(), Failure> {
        let Rotate {
            name,
            grace,
            expires,
            json,
            database: _,
            table,
        } = self;
        table.run(|table| rotate(table, name, grace, expires, json))
    }
}

/// `apikey rotate`: a successor under the name, shown once; the old key lives out its grace. A
/// successor that cannot be shown is undone: the old key gets its name back.
async fn rotate(
    mut table: KeyTable,
    name: String,
    grace: Duration,
    expires: Option<OffsetDateTime>,
    json: bool,
) -> Result<(), Failure> {
    if stdout_is_null() {
        return Err(Failure::Other(
            "standard output is closed or /dev/null, where the new key would be lost".into(),
        ));
    }
    let rotation = table.rotate(&name, grace, expires).await.map_err(failed)?;
    let until = time_text(Some(rotation.retired_until));
    let out = parse_entry(&record_entry(&rotation.key, &rotation.successor))
        .map_err(|e| Failure::Other(format!("the new key's row does not parse: {e}")))
        .and_then(|entry| {
            announce(
                &rotation.key.name,
                rotation.key.generated(),
                &entry,
                json,
                Held::Table {
                    replaces: Some((&rotation.retired, &until)),
                },
            )
        });
    let Err(why) = out.and_then(|out| print(&out)) else {
        return Ok(());
    };
    let undone = match table.undo_rotation(&rotation).await {
        Ok(()) => format!("the rotation was undone: `{name}` is the old key again"),
        Err(e) => format!(
            "undoing it failed too ({e}): the old key is `{}` until {until}; run \
             `apikey rotate --name {name}` again",
            rotation.retired
        ),
    };
    Err(Failure::Other(format!(
        "the new key was not shown ({}); {undone}",
        why.message()
    )))
}

/// The entry of a table row, for the announcement.
fn record_entry(issued: &IssuedKey, record: &KeyRecord) -> String {
    entry_text(
        &issued.digest().to_entry(),
        &record.scopes,
        record.expires_at,
        &record.ips,
        record.rate.as_deref(),
    )
}
