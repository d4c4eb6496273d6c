//! The commands that make entries: `new` generates a key and prints it once, with its
//! configuration line or into the key table; `hash` turns a key the operator already has into
//! its entry.

use std::io::{IsTerminal, Read, Write};

use clap::Args;
use rocket_api_key_runtime::__private::cli::{
    env_var, is_digest_entry, parse_entry, KeyEntry, DEFAULT_ENV_PREFIX,
};
use rocket_api_key_runtime::database::KeyTable;
use rocket_api_key_runtime::keygen::{GeneratedKey, KeyGenError, DEFAULT_KEY_PREFIX};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::output::{announce, entry_text, print, stdout_is_null, Held};
use crate::table::{failed, TableOptions};
use crate::values::{self, Checked};
use crate::Failure;

/// `apikey new`.
#[derive(Args)]
#[command(
    mut_arg("database_url", |url| url.group("into_table")),
    mut_arg("database_ca", |ca| ca.requires("into_table"))
)]
pub struct New {
    /// The key's name: letters, digits and `_` (`API_KEY_<NAME>`)
    #[arg(long, value_parser = Checked(values::name))]
    name: String,
    /// A scope to grant; repeat for several
    #[arg(long, value_parser = Checked(values::scope))]
    scope: Vec<String>,
    /// When the key expires: a duration from now (`90d`, `12h`, `2w`) or an RFC 3339 time
    /// [default: never]
    #[arg(long, value_name = "WHEN", value_parser = Checked(values::expires))]
    expires: Option<OffsetDateTime>,
    /// An address or network the key may be used from; repeat for several
    #[arg(long, value_name = "IP or CIDR", value_parser = Checked(values::ip))]
    ip: Vec<String>,
    /// The key's rate limit: requests per s, m, h or d (`100/m`)
    #[arg(long, value_name = "N/UNIT", value_parser = Checked(values::rate))]
    rate: Option<String>,
    /// The key's prefix: 1-16 of a-z 0-9, a letter first, not `sha256…` [default: rak]
    #[arg(long)]
    prefix: Option<String>,
    /// The variable prefix of the configuration line [default: API_KEY_]
    #[arg(long, value_parser = Checked(values::env_prefix), conflicts_with = "into_table")]
    env_prefix: Option<String>,
    /// Store the key's hash in the key table, not in a printed line; `--database-url` implies
    /// it, and `--database-ca` needs it
    #[arg(long, group = "into_table")]
    database: bool,
    /// The key table: `--database-url` implies `--database`; `--database-ca` needs either.
    #[command(flatten)]
    table: TableOptions,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

impl New {
    /// Runs `apikey new`: into the key table with `--database` or `--database-url`, else into a
    /// printed configuration line.
    pub fn run(mut self) -> Result<(), Failure> {
        if let Some(twice) = self
            .scope
            .iter()
            .enumerate()
            .find_map(|(i, scope)| self.scope[..i].contains(scope).then_some(scope))
        {
            return Err(Failure::Usage(format!("scope `{twice}` is given twice")));
        }
        if !self.database && self.table.database_url.is_none() {
            return self.into_line();
        }
        let table = TableOptions {
            database_url: self.table.database_url.take(),
            database_ca: self.table.database_ca.take(),
        };
        table.run(|table| self.into_table(table))
    }

    /// A new key from `--prefix`, once standard output is known to lead somewhere.
    fn generate(&self) -> Result<GeneratedKey, Failure> {
        if stdout_is_null() {
            return Err(Failure::Other(
                "standard output is closed or /dev/null, where the key would be lost; \
                 run `apikey new` with its output on a terminal, a pipe or a file"
                    .into(),
            ));
        }
        let prefix = self.prefix.as_deref().unwrap_or(DEFAULT_KEY_PREFIX);
        GeneratedKey::with_prefix(prefix).map_err(|e| match e {
            KeyGenError::Prefix => Failure::Usage(format!("invalid `--prefix`: {e}")),
            e => Failure::Other(e.to_string()),
        })
    }

    /// The entry of the new key, through the runtime's grammar: what the server will load,
    /// checked now.
    fn entry_of(&self, key: &GeneratedKey) -> Result<KeyEntry, Failure> {
        let text = entry_text(
            &key.entry(),
            &self.scope,
            self.expires,
            &self.ip,
            self.rate.as_deref(),
        );
        parse_entry(&text).map_err(|e| Failure::Usage(format!("invalid key options: {e}")))
    }

    /// The key, and the configuration line that holds its hash.
    fn into_line(self) -> Result<(), Failure> {
        let key = self.generate()?;
        let entry = self.entry_of(&key)?;
        let line = entry
            .to_entry()
            .map_err(|e| Failure::Other(e.to_string()))?;
        let env_prefix = self.env_prefix.as_deref().unwrap_or(DEFAULT_ENV_PREFIX);
        let line = config_line(env_prefix, &self.name, &line);
        let out = announce(&self.name, &key, &entry, self.json, Held::Line(&line))?;
        // A key that was not shown is a failure: it exists nowhere else.
        print(&out).map_err(|e| match e {
            Failure::Other(why) => Failure::Other(format!(
                "the key was not shown ({why}); it was stored nowhere, so run `apikey new` again"
            )),
            usage => usage,
        })
    }

    /// The key's hash into the table, then the key, once. A key that cannot be shown is
    /// deleted at once: nobody has it.
    async fn into_table(self, table: KeyTable) -> Result<(), Failure> {
        let key = self.generate()?;
        let entry = self.entry_of(&key)?;
        let name = table.insert(&self.name, &entry).await.map_err(failed)?;
        let out = announce(
            &name,
            &key,
            &entry,
            self.json,
            Held::Table { replaces: None },
        );
        let Err(why) = out.and_then(|out| print(&out)) else {
            return Ok(());
        };
        // A key that was not shown exists nowhere else: its row goes, name included.
        let undone = match table.delete(&name).await {
            Ok(_) => "its row was deleted".to_owned(),
            Err(e) => {
                format!("deleting its row failed too ({e}): run `apikey revoke --name {name}`")
            }
        };
        Err(Failure::Other(format!(
            "the key was not shown ({}); {undone}; run `apikey new` again",
            why.message()
        )))
    }
}

/// `apikey hash`.
#[derive(Args)]
pub struct Hash {
    /// The key's name: prints a configuration line, `API_KEY_<NAME>=sha256:…`, instead of the
    /// entry alone
    #[arg(long, value_parser = Checked(values::name))]
    name: Option<String>,
    /// The variable prefix of the configuration line [default: API_KEY_]
    #[arg(long, value_parser = Checked(values::env_prefix))]
    env_prefix: Option<String>,
    /// Never holds a value: a key given here is refused, with where to give it instead, and is
    /// not shown.
    #[arg(
        id = "key",
        value_name = "KEY",
        hide = true,
        value_parser = Checked(values::key_on_command_line)
    )]
    _key: Option<String>,
}

impl Hash {
    /// Runs `apikey hash`: the key from standard input, its entry to standard output.
    pub fn run(self) -> Result<(), Failure> {
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
        let line = match &self.name {
            Some(name) => config_line(
                self.env_prefix.as_deref().unwrap_or(DEFAULT_ENV_PREFIX),
                name,
                &entry,
            ),
            None => entry,
        };
        print(&format!("{line}\n"))
    }
}

/// `API_KEY_<NAME>=<entry>`
fn config_line(env_prefix: &str, name: &str, entry: &str) -> String {
    format!("{}={entry}", env_var(env_prefix, name))
}
