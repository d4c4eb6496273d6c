//! `apikey`: make API keys and their server-side entries.
//!
//! ```text
//! cargo run -p rocket-api-key-cli -- new --name orders --scope read:orders --expires 90d
//! cargo run -p rocket-api-key-cli -- hash --name orders < key.txt
//! cargo run -p rocket-api-key-cli -- new --name orders --scope read:orders --database-url "$URL"
//! ```

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use rocket_api_key_runtime::__private::cli::{
    env_prefix_problem, env_var, key_name, DATABASE_URL_VAR, DEFAULT_ENV_PREFIX,
};
use rocket_api_key_runtime::database::{DatabaseError, IssuedKey, KeyRecord, KeyTable};
use rocket_api_key_runtime::{
    __private::cli::is_digest_entry, __private::cli::parse_duration, __private::cli::parse_entry,
    __private::cli::KeyEntry, keygen::GeneratedKey, keygen::KeyGenError,
    keygen::DEFAULT_KEY_PREFIX, scope::is_valid_scope,
};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

const USAGE: &str = "\
apikey: make API keys for rocket-api-key

USAGE:
    apikey new --name <NAME> [--scope <SCOPE>]... [--expires <WHEN>] [--ip <IP or CIDR>]...
               [--rate <N/UNIT>] [--prefix <PREFIX>] [--env-prefix <ENV_PREFIX>]
               [--database [--database-url <URL>] [--database-ca <PEM>]] [--json]
    apikey hash [--name <NAME>] [--env-prefix <ENV_PREFIX>]    (the key is read from stdin)
    apikey db init [--grants <INSTANCE_ROLE>,<ADMIN_ROLE>] [--database-url <URL>]
                   [--database-ca <PEM>]
    apikey list [--database-url <URL>] [--database-ca <PEM>] [--json]
    apikey revoke --name <NAME> [--database-url <URL>] [--database-ca <PEM>]
    apikey rotate --name <NAME> --grace <DURATION> [--expires <WHEN>] [--database-url <URL>]
                  [--database-ca <PEM>] [--json]

new     generates a key from the operating system's CSPRNG and prints it once, with the
        configuration line that holds only its SHA-256 hash; with `--database`, stores its
        hash in the key table instead, where every instance finds it within a second.
hash    turns an existing key, or an entry (`<key>;scopes=…;ips=…`), into its `sha256:` entry
        with the same fields. The key is read from standard input, never from the command
        line, so it stays out of shell history.
db init creates the key table, its indexes and the trigger that notifies every instance,
        or brings them up to date; with `--grants`, also grants the applications' role and
        the administrators' role what each needs, and prints the statements.
list    prints the table's keys: name, scopes, expiry, revocation and last use (no hashes).
revoke  revokes a key of the table: every instance refuses it within a second.
rotate  issues a successor to a key of the table with its scopes, addresses and rate, under
        its name, and prints it once; the old key, renamed `<NAME>_r<N>`, is accepted until
        the grace period ends, so that clients can switch.

OPTIONS:
    --name <NAME>              the key's name: letters, digits and `_` (API_KEY_<NAME>)
    --scope <SCOPE>            a scope to grant; repeat for several
    --expires <WHEN>           a duration from now (`90d`, `12h`, `2w`) or an RFC 3339 time
    --ip <IP or CIDR>          an address or network the key may be used from; repeat for several
    --rate <N/UNIT>            the key's rate limit: requests per s, m, h or d (`100/m`)
    --prefix <PREFIX>          the key's prefix (default `rak`): 1-16 of a-z 0-9, a letter first, not `sha256…`
    --env-prefix <ENV_PREFIX>  the variable prefix of the configuration line (default `API_KEY_`)
    --database                 `new`: store the key in the key table, not in a printed line
    --database-url <URL>       the key table's PostgreSQL URL (default $API_KEYS_DATABASE_URL,
                               which keeps a password out of the process list); implies
                               `--database`
    --database-ca <PEM>        CA certificates to trust for the database's TLS, besides Mozilla's
                               roots; TLS is required unless the URL says `sslmode=disable`
    --grace <DURATION>         how long a rotated key stays accepted (`24h`, `7d`; `0s`: none)
    --grants <INSTANCE>,<ADMIN>
                               `db init`: the role the applications connect as (reads the keys,
                               writes last-used times) and the role `apikey` runs as (issues,
                               revokes and rotates keys)
    --json                     print one JSON object instead of text
    -h, --help                 print this help

EXIT STATUS:
    0  done
    1  failed: the input is not a usable key or entry, the database refused or could not be
       reached, or the output could not be written (`new` then shows no key: none was kept,
       run it again)
    2  the command line is wrong
";

/// A mistake in how the command was called: exit code 2.
struct Usage(String);

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            report(&format!("{message}\n\nrun `apikey --help` for usage"));
            ExitCode::from(2)
        }
        Err(Failure::Other(message)) => {
            report(&message);
            ExitCode::FAILURE
        }
    }
}

/// Why the command failed, which decides its exit code.
enum Failure {
    /// How the command was called: exit code 2.
    Usage(String),
    /// The input, or writing the output: exit code 1.
    Other(String),
}

impl From<Usage> for Failure {
    fn from(Usage(m): Usage) -> Self {
        Failure::Usage(m)
    }
}

impl From<lexopt::Error> for Failure {
    fn from(e: lexopt::Error) -> Self {
        Failure::Usage(e.to_string())
    }
}

#[derive(Default)]
struct Options {
    name: Option<String>,
    scopes: Vec<String>,
    expires: Option<OffsetDateTime>,
    ips: Vec<String>,
    rate: Option<String>,
    prefix: Option<String>,
    env_prefix: Option<String>,
    database_url: Option<Zeroizing<String>>,
    database_ca: Option<std::path::PathBuf>,
    /// `new --database`: into the key table of `$API_KEYS_DATABASE_URL`.
    database: bool,
    grace: Option<std::time::Duration>,
    /// `db init --grants`: the instances' role and the administrators'.
    grants: Option<(String, String)>,
    json: bool,
}

/// The commands, and which options each takes.
const COMMANDS: &[(&str, &[&str])] = &[
    (
        "new",
        &[
            "name",
            "scope",
            "expires",
            "ip",
            "rate",
            "prefix",
            "env-prefix",
            "database",
            "database-url",
            "database-ca",
            "json",
        ],
    ),
    ("hash", &["name", "env-prefix"]),
    ("db", &["grants", "database-url", "database-ca"]),
    ("list", &["database-url", "database-ca", "json"]),
    ("revoke", &["name", "database-url", "database-ca"]),
    (
        "rotate",
        &[
            "name",
            "grace",
            "expires",
            "database",
            "database-url",
            "database-ca",
            "json",
        ],
    ),
];

fn run(args: Vec<OsString>) -> Result<(), Failure> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let command = match parser.next()? {
        Some(Value(cmd)) => cmd.string()?,
        Some(Short('h') | Long("help")) | None => return print(USAGE),
        Some(arg) => return Err(arg.unexpected().into()),
    };
    let Some(&(_, accepted)) = COMMANDS.iter().find(|(name, _)| *name == command) else {
        return Err(Usage(format!(
            "unknown command `{}`; expected `new`, `hash`, `db`, `list`, `revoke` or `rotate`",
            command.escape_debug()
        ))
        .into());
    };
    if command == "db" {
        match parser.next()? {
            Some(Value(sub)) if sub == "init" => {}
            Some(Short('h') | Long("help")) => return print(USAGE),
            _ => return Err(Usage("expected `apikey db init`".into()).into()),
        }
    }

    let mut opts = Options::default();
    while let Some(arg) = parser.next()? {
        if let Long(option) = arg {
            if option != "help" && !accepted.contains(&option) {
                return Err(Usage(format!("`apikey {command}` takes no `--{option}`")).into());
            }
        }
        match arg {
            Long("name") => opts.name = Some(name(parser.value()?.string()?)?),
            Long("scope") => {
                let scope = parser.value()?.string()?;
                if !is_valid_scope(&scope) {
                    return Err(Usage(format!(
                        "invalid scope `{}`; a scope is 1 to 64 characters of `A-Z a-z 0-9 _ . : / -`",
                        scope.escape_debug()
                    ))
                    .into());
                }
                if opts.scopes.contains(&scope) {
                    return Err(Usage(format!("scope `{scope}` is given twice")).into());
                }
                opts.scopes.push(scope);
            }
            Long("expires") => opts.expires = Some(expiry(&parser.value()?.string()?)?),
            Long("ip") => opts.ips.push(list_item(parser.value()?.string()?, "--ip")?),
            Long("rate") => opts.rate = Some(list_item(parser.value()?.string()?, "--rate")?),
            Long("prefix") => opts.prefix = Some(parser.value()?.string()?),
            Long("env-prefix") => opts.env_prefix = Some(env_prefix(parser.value()?.string()?)?),
            Long("database-url") => {
                opts.database_url = Some(Zeroizing::new(parser.value()?.string()?))
            }
            Long("database-ca") => opts.database_ca = Some(parser.value()?.into()),
            Long("database") => opts.database = true,
            Long("grace") => {
                let text = parser.value()?.string()?;
                opts.grace = Some(
                    parse_duration(&text).map_err(|e| Usage(format!("invalid `--grace`: {e}")))?,
                );
            }
            Long("grants") => opts.grants = Some(grants(parser.value()?.string()?)?),
            Long("json") => opts.json = true,
            Short('h') | Long("help") => return print(USAGE),
            Value(_) if command == "hash" => {
                return Err(Usage(
                    "`apikey hash` reads the key from standard input, not from the command line, \
                     so it stays out of shell history: `apikey hash < key.txt`"
                        .into(),
                )
                .into())
            }
            arg => return Err(arg.unexpected().into()),
        }
    }
    // What each command needs, checked before any connection is made.
    let needs_name = matches!(command.as_str(), "new" | "revoke" | "rotate");
    if needs_name && opts.name.is_none() {
        return Err(Usage(format!("`apikey {command}` needs `--name <NAME>`")).into());
    }
    if command == "rotate" && opts.grace.is_none() {
        return Err(
            Usage("`apikey rotate` needs `--grace <DURATION>` (`0s` for none)".into()).into(),
        );
    }
    if command == "new" {
        // Each mode's own options: one given to the other would be silently ignored.
        let into_table = opts.database || opts.database_url.is_some();
        if into_table && opts.env_prefix.is_some() {
            return Err(Usage(
                "`--env-prefix` names a configuration line, which `new --database` does not print"
                    .into(),
            )
            .into());
        }
        if !into_table && opts.database_ca.is_some() {
            return Err(Usage(
                "`--database-ca` needs `--database` (or `--database-url <URL>`)".into(),
            )
            .into());
        }
    }
    match command.as_str() {
        "new" if opts.database || opts.database_url.is_some() => database(opts, new_in_table),
        "new" => new(opts),
        "hash" => hash(opts),
        "db" => database(opts, db_init),
        "list" => database(opts, list),
        "revoke" => database(opts, revoke),
        _ => database(opts, rotate),
    }
}

/// `--grants <INSTANCE>,<ADMIN>`: two role names.
fn grants(value: String) -> Result<(String, String), Usage> {
    match value.split(',').map(str::trim).collect::<Vec<_>>()[..] {
        [instance, admin] if !instance.is_empty() && !admin.is_empty() => {
            Ok((instance.to_owned(), admin.to_owned()))
        }
        _ => Err(Usage(format!(
            "invalid `--grants` `{}`: give the instances' role and the administrators' role, \
             `--grants orders_app,keys_admin`",
            value.escape_debug()
        ))),
    }
}

/// One item of `--ip` or `--rate`: the entry grammar checks it, but a `;` or `,` would be read
/// as a field or an item of its own.
fn list_item(value: String, option: &str) -> Result<String, Usage> {
    if value.contains([';', ',']) {
        return Err(Usage(format!(
            "invalid `{option}` `{}`: give one value per `{option}`",
            value.escape_debug()
        )));
    }
    Ok(value)
}

fn name(name: String) -> Result<String, Usage> {
    key_name(&name).ok_or_else(|| {
        Usage(format!(
            "invalid name `{}`; use letters, digits and `_`",
            name.escape_debug()
        ))
    })
}

/// A prefix the server would accept: the runtime's rule, so that no line this command prints
/// is one the server refuses to start with (`API_` would read `API_KEYS_FILE` as a key).
fn env_prefix(prefix: String) -> Result<String, Usage> {
    match env_prefix_problem(&prefix) {
        None => Ok(prefix),
        Some(problem) => Err(Usage(format!("invalid `--env-prefix`: {problem}"))),
    }
}

fn expiry(text: &str) -> Result<OffsetDateTime, Usage> {
    let now = OffsetDateTime::now_utc();
    let at = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let after = parse_duration(text).map_err(|e| {
                Usage(format!(
                    "{e}, or an RFC 3339 time such as `2027-01-31T00:00:00Z`"
                ))
            })?;
            now + after
        }
    };
    if at <= now {
        return Err(Usage(format!(
            "`--expires {}` is not in the future",
            text.escape_debug()
        )));
    }
    Ok(at
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at))
}

/// `API_KEY_<NAME>=<entry>`
fn config_line(env_prefix: &str, name: &str, entry: &str) -> String {
    format!("{}={entry}", env_var(env_prefix, name))
}

/// The entry of a new key from the options, through the runtime's grammar: what the server
/// will load, checked now.
fn entry_of(key: &GeneratedKey, opts: &Options) -> Result<KeyEntry, Failure> {
    let text = entry_text(
        &key.entry(),
        &opts.scopes,
        opts.expires,
        &opts.ips,
        opts.rate.as_deref(),
    );
    parse_entry(&text).map_err(|e| Failure::Usage(format!("invalid key options: {e}")))
}

/// A new key from `--prefix`, once `--name` is known and standard output leads somewhere.
fn generate(opts: &Options) -> Result<(String, GeneratedKey), Failure> {
    let name = opts
        .name
        .clone()
        .ok_or_else(|| Usage("`apikey new` needs `--name <NAME>`".into()))?;
    if stdout_is_null() {
        return Err(Failure::Other(
            "standard output is closed or /dev/null, where the key would be lost; \
             run `apikey new` with its output on a terminal, a pipe or a file"
                .into(),
        ));
    }
    let prefix = opts.prefix.as_deref().unwrap_or(DEFAULT_KEY_PREFIX);
    let key = GeneratedKey::with_prefix(prefix).map_err(|e| match e {
        KeyGenError::Prefix => Failure::Usage(format!("invalid `--prefix`: {e}")),
        e => Failure::Other(e.to_string()),
    })?;
    Ok((name, key))
}

/// The announcement of a new key: the key once, and what holds its hash.
fn announce(
    name: &str,
    key: &GeneratedKey,
    entry: &KeyEntry,
    json: bool,
    held_by: Held<'_>,
) -> Result<Zeroizing<String>, Failure> {
    let expires = entry
        .expires
        .map(|at| at.format(&Rfc3339))
        .transpose()
        .map_err(|e| Failure::Other(e.to_string()))?;
    let ips: Vec<String> = entry.ips.iter().map(ToString::to_string).collect();
    let rate = entry.rate.map(|rate| rate.to_string());
    let fingerprint = key.digest().fingerprint().to_string();
    Ok(Zeroizing::new(if json {
        let mut object = json!({
            "key": key.expose_secret(),
            "name": name,
            "scopes": entry.scopes,
            "expires": expires,
            "ips": ips,
            "rate": rate,
            "fingerprint": fingerprint,
        });
        match held_by {
            Held::Line(line) => object["config"] = json!(line),
            Held::Table { replaces } => {
                object["stored"] = json!("database");
                if let Some((old, until)) = replaces {
                    object["replaces"] = json!({ "name": old, "accepted_until": until });
                }
            }
        }
        object.to_string() + "\n"
    } else {
        let scopes = if entry.scopes.is_empty() {
            "none".to_owned()
        } else {
            entry.scopes.join(", ")
        };
        let expires = expires.as_deref().unwrap_or("never");
        let mut text = format!(
            "New API key `{name}` (scopes: {scopes}; expires: {expires}; fingerprint: {fingerprint})\n\n\
             The key, shown once: give it to the client and store it nowhere else.\n\n    {key}\n\n",
            key = key.expose_secret(),
        );
        match held_by {
            Held::Line(line) => text.push_str(&format!(
                "The server's configuration line, which holds only the key's hash:\n\n    {line}\n"
            )),
            Held::Table { replaces } => {
                text.push_str(
                    "The key table holds only its hash; every instance accepts it within a second.\n",
                );
                if let Some((old, until)) = replaces {
                    text.push_str(&format!(
                        "The key it replaces, now named `{old}`, is accepted until {until}.\n"
                    ));
                }
            }
        }
        text
    }))
}

/// Where the hash of a new key is kept.
enum Held<'a> {
    /// In the configuration line printed with it.
    Line(&'a str),
    /// In the key table; with the rotated key's new name and the end of its grace period.
    Table {
        replaces: Option<(&'a str, &'a str)>,
    },
}

fn new(opts: Options) -> Result<(), Failure> {
    let (name, key) = generate(&opts)?;
    let entry = entry_of(&key, &opts)?;
    let line = entry
        .to_entry()
        .map_err(|e| Failure::Other(e.to_string()))?;
    let env_prefix = opts.env_prefix.as_deref().unwrap_or(DEFAULT_ENV_PREFIX);
    let line = config_line(env_prefix, &name, &line);
    let out = announce(&name, &key, &entry, opts.json, Held::Line(&line))?;
    // A key that was not shown is a failure: it exists nowhere else.
    print(&out).map_err(|e| match e {
        Failure::Other(why) => Failure::Other(format!(
            "the key was not shown ({why}); it was stored nowhere, so run `apikey new` again"
        )),
        usage => usage,
    })
}

/// Runs a command on the key table of `--database-url` or `$API_KEYS_DATABASE_URL`.
fn database<F, Fut>(mut opts: Options, command: F) -> Result<(), Failure>
where
    F: FnOnce(KeyTable, Options) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let url = match opts.database_url.take() {
        Some(url) => url,
        None => Zeroizing::new(std::env::var(DATABASE_URL_VAR).map_err(|_| {
            Usage(format!(
                "no key table: give `--database-url <URL>`, or set {DATABASE_URL_VAR}"
            ))
        })?),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start: {e}")))?;
    runtime.block_on(async move {
        let table = match &opts.database_ca {
            Some(ca) => KeyTable::connect_with_ca(&url, ca).await,
            None => KeyTable::connect(&url).await,
        }
        .map_err(failed)?;
        command(table, opts).await
    })
}

fn failed(e: DatabaseError) -> Failure {
    Failure::Other(e.to_string())
}

/// `apikey new --database-url`: the key's hash into the table, then the key, once. A key that
/// cannot be shown is revoked at once: nobody has it.
async fn new_in_table(table: KeyTable, opts: Options) -> Result<(), Failure> {
    let (name, key) = generate(&opts)?;
    let entry = entry_of(&key, &opts)?;
    let name = table.insert(&name, &entry).await.map_err(failed)?;
    let out = announce(
        &name,
        &key,
        &entry,
        opts.json,
        Held::Table { replaces: None },
    );
    let Err(why) = out.and_then(|out| print(&out)) else {
        return Ok(());
    };
    // A key that was not shown exists nowhere else: its row goes, name included.
    let undone = match table.delete(&name).await {
        Ok(_) => "its row was deleted".to_owned(),
        Err(e) => format!("deleting its row failed too ({e}): run `apikey revoke --name {name}`"),
    };
    Err(Failure::Other(format!(
        "the key was not shown ({}); {undone}; run `apikey new` again",
        failure_text(why)
    )))
}

fn failure_text(failure: Failure) -> String {
    match failure {
        Failure::Usage(why) | Failure::Other(why) => why,
    }
}

/// `apikey rotate`: a successor under the name, shown once; the old key lives out its grace. A
/// successor that cannot be shown is undone: the old key gets its name back.
async fn rotate(mut table: KeyTable, opts: Options) -> Result<(), Failure> {
    let (Some(name), Some(grace)) = (opts.name.as_deref(), opts.grace) else {
        return Err(Usage("`apikey rotate` needs `--name` and `--grace`".into()).into());
    };
    if stdout_is_null() {
        return Err(Failure::Other(
            "standard output is closed or /dev/null, where the new key would be lost".into(),
        ));
    }
    let rotation = table
        .rotate(name, grace, opts.expires)
        .await
        .map_err(failed)?;
    let until = time_text(Some(rotation.retired_until));
    let out = parse_entry(&record_entry(&rotation.key, &rotation.successor))
        .map_err(|e| Failure::Other(format!("the new key's row does not parse: {e}")))
        .and_then(|entry| {
            announce(
                &rotation.key.name,
                rotation.key.generated(),
                &entry,
                opts.json,
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
        failure_text(why)
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

/// An entry in the runtime's grammar, from a key (or its `sha256:` form) and its fields.
fn entry_text(
    key: &str,
    scopes: &[String],
    expires: Option<OffsetDateTime>,
    ips: &[String],
    rate: Option<&str>,
) -> String {
    let mut text = key.to_owned();
    let fields = [
        ("scopes", scopes.join(",")),
        ("expires", time_text(expires)),
        ("ips", ips.join(",")),
        ("rate", rate.unwrap_or_default().to_owned()),
    ];
    for (name, value) in fields {
        if !value.is_empty() {
            text.push_str(&format!(";{name}={value}"));
        }
    }
    text
}

/// `apikey db init`: the schema, then the grants when asked for.
async fn db_init(table: KeyTable, opts: Options) -> Result<(), Failure> {
    table.init().await.map_err(failed)?;
    let mut out = String::from("The key table `api_keys` is ready.\n");
    if let Some((instance, admin)) = &opts.grants {
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

async fn revoke(table: KeyTable, opts: Options) -> Result<(), Failure> {
    let name = opts
        .name
        .ok_or_else(|| Usage("`apikey revoke` needs `--name <NAME>`".into()))?;
    let at = table.revoke(&name).await.map_err(failed)?;
    print(&format!(
        "Revoked `{name}` as of {}; every instance refuses it within a second.\n",
        time_text(Some(at))
    ))
}

async fn list(table: KeyTable, opts: Options) -> Result<(), Failure> {
    let records = table.list().await.map_err(failed)?;
    let now = OffsetDateTime::now_utc();
    if opts.json {
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

/// A time as RFC 3339, in UTC, to the second.
fn time_text(at: Option<OffsetDateTime>) -> String {
    at.map(|at| {
        let at = at.to_offset(time::UtcOffset::UTC);
        at.replace_nanosecond(0)
            .unwrap_or(at)
            .format(&Rfc3339)
            .unwrap_or_else(|_| at.unix_timestamp().to_string())
    })
    .unwrap_or_default()
}

fn hash(opts: Options) -> Result<(), Failure> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        let _ = writeln!(
            std::io::stderr().lock(),
            "Paste the key (or its entry) and press Enter, then Ctrl-D:"
        );
    }
    let mut input = Zeroizing::new(String::new());
    stdin
        .read_to_string(&mut input)
        .map_err(|e| Failure::Other(format!("cannot read standard input: {e}")))?;
    let value = input.trim();
    // Bad input is a data error (1), not a usage error (2): the command was called right.
    if is_digest_entry(value) {
        return Err(Failure::Other(
            "the input is already a `sha256:` entry; it needs no hashing".into(),
        ));
    }
    // The runtime's own grammar, so that the fields carried over are the ones it will load.
    let entry = parse_entry(value)
        .map_err(|e| Failure::Other(format!("the input is not a usable key or entry: {e}")))?;
    let entry = entry
        .to_entry()
        .map_err(|e| Failure::Other(e.to_string()))?;
    let line = match &opts.name {
        Some(name) => config_line(
            opts.env_prefix.as_deref().unwrap_or(DEFAULT_ENV_PREFIX),
            name,
            &entry,
        ),
        None => entry,
    };
    print(&format!("{line}\n"))
}

/// An error on standard error. Not checked: with standard error gone there is nowhere left to
/// report to, and the exit code still tells.
fn report(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}

/// Writes `text` whole to standard output. Every write is checked (`print!` panics on a closed
/// pipe), and flushed here so that a full disk is an error now rather than lost at exit.
fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Other(output_error(&e)))
}

fn output_error(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        "cannot write to standard output: it was closed before the output was written".into()
    } else {
        format!("cannot write to standard output: {e}")
    }
}

/// Whether standard output leads nowhere: to /dev/null, or closed when the command started (the
/// standard library then opens /dev/null in its place). A key written there is lost unseen.
#[cfg(unix)]
fn stdout_is_null() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return true;
    };
    match (
        std::fs::File::from(fd).metadata(),
        std::fs::metadata("/dev/null"),
    ) {
        (Ok(out), Ok(null)) => out.file_type().is_char_device() && out.rdev() == null.rdev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn stdout_is_null() -> bool {
    false
}
