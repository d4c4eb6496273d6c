//! `apikey`: make API keys and their server-side entries.
//!
//! ```text
//! cargo run -p rocket-api-key-cli -- new --name orders --scope read:orders --expires 90d
//! cargo run -p rocket-api-key-cli -- hash --name orders < key.txt
//! ```

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use rocket_api_key_runtime::__private::cli::{
    env_prefix_problem, env_var, key_name, DEFAULT_ENV_PREFIX,
};
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
    apikey new --name <NAME> [--scope <SCOPE>]... [--expires <WHEN>] [--prefix <PREFIX>]
               [--env-prefix <ENV_PREFIX>] [--json]
    apikey hash [--name <NAME>] [--env-prefix <ENV_PREFIX>]    (the key is read from stdin)

new     generates a key from the operating system's CSPRNG and prints it once, with the
        configuration line that holds only its SHA-256 hash.
hash    turns an existing key, or an entry (`<key>;scopes=…;ips=…`), into its `sha256:` entry
        with the same fields. The key is read from standard input, never from the command
        line, so it stays out of shell history.

OPTIONS:
    --name <NAME>              the key's name: letters, digits and `_` (API_KEY_<NAME>)
    --scope <SCOPE>            a scope to grant; repeat for several
    --expires <WHEN>           a duration from now (`90d`, `12h`, `2w`) or an RFC 3339 time
    --prefix <PREFIX>          the key's prefix (default `rak`): 1-16 of a-z 0-9, starting with a letter
    --env-prefix <ENV_PREFIX>  the variable prefix of the configuration line (default `API_KEY_`)
    --json                     print one JSON object instead of text
    -h, --help                 print this help

EXIT STATUS:
    0  done
    1  failed: the input is not a usable key or entry, or the output could not be written
       (`new` then shows no key: none was stored, run it again)
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
    prefix: Option<String>,
    env_prefix: Option<String>,
    json: bool,
}

fn run(args: Vec<OsString>) -> Result<(), Failure> {
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let command = match parser.next()? {
        Some(Value(cmd)) => cmd.string()?,
        Some(Short('h') | Long("help")) | None => return print(USAGE),
        Some(arg) => return Err(arg.unexpected().into()),
    };
    if command != "new" && command != "hash" {
        return Err(Usage(format!(
            "unknown command `{}`; expected `new` or `hash`",
            command.escape_debug()
        ))
        .into());
    }

    let mut opts = Options::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("name") => opts.name = Some(name(parser.value()?.string()?)?),
            Long("scope") if command == "new" => {
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
            Long("expires") if command == "new" => {
                opts.expires = Some(expiry(&parser.value()?.string()?)?)
            }
            Long("prefix") if command == "new" => opts.prefix = Some(parser.value()?.string()?),
            Long("env-prefix") => opts.env_prefix = Some(env_prefix(parser.value()?.string()?)?),
            Long("json") if command == "new" => opts.json = true,
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
    match command.as_str() {
        "new" => new(opts),
        _ => hash(opts),
    }
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

fn new(opts: Options) -> Result<(), Failure> {
    let name = opts
        .name
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
    let expires = opts
        .expires
        .map(|at| at.format(&Rfc3339))
        .transpose()
        .map_err(|e| Failure::Other(e.to_string()))?;
    let entry = KeyEntry {
        digest: key.digest(),
        scopes: opts.scopes.clone(),
        expires: opts.expires,
        ips: Vec::new(),
        rate: None,
    };
    let entry = entry
        .to_entry()
        .map_err(|e| Failure::Other(e.to_string()))?;
    let env_prefix = opts.env_prefix.as_deref().unwrap_or(DEFAULT_ENV_PREFIX);
    let line = config_line(env_prefix, &name, &entry);

    let out = Zeroizing::new(if opts.json {
        json!({
            "key": key.expose_secret(),
            "name": name,
            "scopes": opts.scopes,
            "expires": expires,
            "fingerprint": key.digest().fingerprint().to_string(),
            "config": line,
        })
        .to_string()
            + "\n"
    } else {
        let scopes = if opts.scopes.is_empty() {
            "none".to_owned()
        } else {
            opts.scopes.join(", ")
        };
        let expires = expires.as_deref().unwrap_or("never");
        format!(
            "New API key `{name}` (scopes: {scopes}; expires: {expires}; fingerprint: {fp})\n\n\
             The key, shown once: give it to the client and store it nowhere else.\n\n    {key}\n\n\
             The server's configuration line, which holds only the key's hash:\n\n    {line}\n",
            fp = key.digest().fingerprint(),
            key = key.expose_secret(),
        )
    });
    // A key that was not shown is a failure: it exists nowhere else.
    print(&out).map_err(|e| match e {
        Failure::Other(why) => Failure::Other(format!(
            "the key was not shown ({why}); it was stored nowhere, so run `apikey new` again"
        )),
        usage => usage,
    })
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
