//! `apikey`: make API keys and their server-side entries.
//!
//! ```text
//! cargo run -p rocket-api-key-cli -- new --name orders --scope read:orders --expires 90d
//! cargo run -p rocket-api-key-cli -- hash --name orders < key.txt
//! cargo run -p rocket-api-key-cli -- new --name orders --scope read:orders --database-url "$URL"
//! ```
//!
//! This file holds the command line and the exit codes; each command group has its own file:
//! [`new`] (`new`, `hash`), [`table`] (`db init`, `list`, `revoke`, `rotate`). What each option
//! accepts is in [`values`]; what is written, in [`output`].

mod new;
mod output;
mod table;
mod values;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

use crate::output::{print, report, to_stderr};

/// The end of `apikey --help`.
const EXIT_STATUS: &str = "\
EXIT STATUS:
  0  done
  1  failed: the input is not a usable key or entry, the database refused or could not be
     reached, or the output could not be written (`new` then shows no key: none was kept,
     run it again)
  2  the command line is wrong";

/// Make API keys for rocket-api-key, and manage its key table in PostgreSQL
#[derive(Parser)]
#[command(name = "apikey", version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The commands, each with only its own options.
#[derive(Subcommand)]
enum Command {
    /// Make a key and print it once, with the configuration line that holds its hash
    ///
    /// Generates a key from the operating system's CSPRNG and prints it once, with the
    /// configuration line that holds only its SHA-256 hash; with `--database`, stores its hash in
    /// the key table instead, where every instance finds it within a second.
    New(new::New),
    /// Print the `sha256:` entry of a key you already have, read from standard input
    ///
    /// Turns an existing key, or an entry (`<key>;scopes=…;ips=…`), into its `sha256:` entry
    /// with the same fields. The key is read from standard input, never from the command line,
    /// so it stays out of shell history: `apikey hash --name legacy < key.txt`.
    Hash(new::Hash),
    /// Create the key table or bring it up to date (`apikey db init`)
    #[command(subcommand)]
    Db(table::Db),
    /// List the table's keys: name, scopes, expiry, revocation and last use (no hashes)
    List(table::List),
    /// Revoke a key of the table: every instance refuses it within a second
    Revoke(table::Revoke),
    /// Issue a successor to a key of the table; the old key stays accepted for a grace period
    ///
    /// Issues a successor to a key of the table with its scopes, addresses and rate, under its
    /// name, and prints it once; the old key, renamed `<NAME>_r<N>`, is accepted until the grace
    /// period ends, so that clients can switch.
    Rotate(table::Rotate),
    /// Print the completion script of a shell (`apikey completions bash`)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The subcommand's path under `apikey`, for the usage line of its errors.
    fn path(&self) -> &'static [&'static str] {
        match self {
            Command::New(_) => &["new"],
            Command::Hash(_) => &["hash"],
            Command::Db(table::Db::Init(_)) => &["db", "init"],
            Command::List(_) => &["list"],
            Command::Revoke(_) => &["revoke"],
            Command::Rotate(_) => &["rotate"],
            Command::Completions { .. } => &["completions"],
        }
    }

    fn run(self) -> Result<(), Failure> {
        match self {
            Command::New(new) => new.run(),
            Command::Hash(hash) => hash.run(),
            Command::Db(db) => db.run(),
            Command::List(list) => list.run(),
            Command::Revoke(revoke) => revoke.run(),
            Command::Rotate(rotate) => rotate.run(),
            Command::Completions { shell } => {
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "apikey", &mut script);
                print(&String::from_utf8_lossy(&script))
            }
        }
    }
}

/// Why a command failed, which decides its exit code.
pub enum Failure {
    /// How the command was called, found once it ran (a scope given twice, no key table):
    /// exit code 2.
    Usage(String),
    /// The input, the database, or writing the output: exit code 1.
    Other(String),
}

impl Failure {
    /// What went wrong, whichever kind.
    fn message(self) -> String {
        match self {
            Failure::Usage(why) | Failure::Other(why) => why,
        }
    }
}

fn main() -> ExitCode {
    // `apikey` alone shows its help, as it always has, and succeeds.
    let cli = match Cli::try_parse_from(
        std::env::args_os().chain((std::env::args_os().len() == 1).then(|| "--help".into())),
    ) {
        Ok(cli) => cli,
        Err(mut e) => {
            suggest_command(&mut e);
            return exit_with(&e);
        }
    };
    let path = cli.command.path();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            let mut cli = Cli::command();
            cli.build();
            let command = path.iter().fold(&cli, |command, name| {
                command.find_subcommand(name).unwrap_or(command)
            });
            exit_with(&values::usage(command, ErrorKind::ValueValidation, message))
        }
        Err(Failure::Other(message)) => {
            report(&message);
            ExitCode::FAILURE
        }
    }
}

/// Adds a suggestion to an unknown command that clap has none for. Clap's measure (Jaro) finds
/// no match for two letters swapped in a three-letter word, `apikey nwe`; one edit or one swap
/// away (the optimal string alignment distance) finds `new`.
fn suggest_command(e: &mut clap::Error) {
    use clap::error::{ContextKind, ContextValue};

    if e.kind() != ErrorKind::InvalidSubcommand || e.get(ContextKind::SuggestedSubcommand).is_some()
    {
        return;
    }
    let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidSubcommand) else {
        return;
    };
    // The command it was typed under: `apikey db nwe` is not one for `new`.
    let cli = Cli::command();
    let mut command = &cli;
    for arg in std::env::args_os().skip(1) {
        if arg.to_str() == Some(typed.as_str()) {
            break;
        }
        match arg.to_str().and_then(|arg| command.find_subcommand(arg)) {
            Some(sub) => command = sub,
            None => return,
        }
    }
    let near = command
        .get_subcommands()
        .map(clap::Command::get_name)
        .find(|name| strsim::osa_distance(typed, name) == 1);
    if let Some(near) = near.map(str::to_owned) {
        e.insert(ContextKind::SuggestedSubcommand, ContextValue::String(near));
    }
}

/// Shows what clap stopped at, and exits with its code: the help on standard output (0), a
/// usage error on standard error (2). The help is written as any output is, checked.
fn exit_with(e: &clap::Error) -> ExitCode {
    let text = e.render().to_string();
    if e.use_stderr() {
        to_stderr(&text);
    } else if let Err(failure) = print(&text) {
        report(&failure.message());
        return ExitCode::FAILURE;
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}
