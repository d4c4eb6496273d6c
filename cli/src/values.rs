//! What each option's value may be: its parser, with the message a wrong value gets.
//!
//! Every parser runs while clap reads the command line, so a wrong value is a usage error (exit
//! code 2) before anything is generated or connected to. The messages are `apikey`'s own, shown
//! as written with the command's usage line under them: clap's `invalid value '…' for '…':`
//! before them would say the value twice, and would print the value of an option whose value is
//! a secret.

use std::ffi::OsStr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use rocket_api_key_runtime::__private::cli::{env_prefix_problem, key_name, parse_duration};
use rocket_api_key_runtime::scope::is_valid_scope;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A parser of `apikey`'s: a function from the value's text to the value, or to the message that
/// says what is wrong with it.
#[derive(Clone, Copy)]
pub struct Checked<T>(pub fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Checked<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        // Not clap's `invalid UTF-8` error either: it would show the value.
        let text = value.to_str().ok_or_else(|| {
            usage(
                cmd,
                ErrorKind::InvalidUtf8,
                "an option's value is not valid UTF-8".into(),
            )
        })?;
        (self.0)(text).map_err(|message| usage(cmd, ErrorKind::ValueValidation, message))
    }
}

/// A usage error of `cmd` (exit code 2): the message, the command's usage line, and where its
/// help is.
pub fn usage(cmd: &clap::Command, kind: ErrorKind, message: String) -> clap::Error {
    clap::Error::raw(kind, message).format(&mut cmd.clone())
}

/// `--name`: letters, digits and `_`, as the store keeps it.
pub fn name(name: &str) -> Result<String, String> {
    key_name(name).ok_or_else(|| {
        format!(
            "invalid name `{}`; use letters, digits and `_`",
            name.escape_debug()
        )
    })
}

/// `--scope`: the scope grammar of `#[require_api_key(scope = "…")]`.
pub fn scope(scope: &str) -> Result<String, String> {
    if !is_valid_scope(scope) {
        return Err(format!(
            "invalid scope `{}`; a scope is 1 to 64 characters of `A-Z a-z 0-9 _ . : / -`",
            scope.escape_debug()
        ));
    }
    Ok(scope.to_owned())
}

/// `--ip`: one item of the entry's `ips` field, which the entry grammar checks with the rest.
pub fn ip(value: &str) -> Result<String, String> {
    list_item(value, "--ip")
}

/// `--rate`: the entry's `rate` field, which the entry grammar checks with the rest.
pub fn rate(value: &str) -> Result<String, String> {
    list_item(value, "--rate")
}

/// One item of an entry's field: a `;` or `,` in it would be read as a field or an item of its
/// own.
fn list_item(value: &str, option: &str) -> Result<String, String> {
    if value.contains([';', ',']) {
        return Err(format!(
            "invalid `{option}` `{}`: give one value per `{option}`",
            value.escape_debug()
        ));
    }
    Ok(value.to_owned())
}

/// `--env-prefix`: a prefix the server would accept, by the runtime's rule, so that no line
/// `apikey` prints is one the server refuses to start with (`API_` would read `API_KEYS_FILE` as
/// a key).
pub fn env_prefix(prefix: &str) -> Result<String, String> {
    match env_prefix_problem(prefix) {
        None => Ok(prefix.to_owned()),
        Some(problem) => Err(format!("invalid `--env-prefix`: {problem}")),
    }
}

/// `--expires`: a duration from now (`90d`) or an RFC 3339 time, in the future; to the second,
/// in UTC.
pub fn expires(text: &str) -> Result<OffsetDateTime, String> {
    let now = OffsetDateTime::now_utc();
    let at = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let after = parse_duration(text)
                .map_err(|e| format!("{e}, or an RFC 3339 time such as `2027-01-31T00:00:00Z`"))?;
            now + after
        }
    };
    if at <= now {
        return Err(format!(
            "`--expires {}` is not in the future",
            text.escape_debug()
        ));
    }
    Ok(at
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at))
}

/// `--grace`: how long a rotated key stays accepted.
pub fn grace(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| format!("invalid `--grace`: {e}"))
}

/// `--grants <INSTANCE>,<ADMIN>`: two role names.
pub fn grants(value: &str) -> Result<(String, String), String> {
    match value.split(',').map(str::trim).collect::<Vec<_>>()[..] {
        [instance, admin] if !instance.is_empty() && !admin.is_empty() => {
            Ok((instance.to_owned(), admin.to_owned()))
        }
        _ => Err(format!(
            "invalid `--grants` `{}`: give the instances' role and the administrators' role, \
             `--grants orders_app,keys_admin`",
            value.escape_debug()
        )),
    }
}

/// `--database-url`: taken as it is, into memory that is wiped when dropped. Never in a
/// message: a URL may hold a password.
pub fn database_url(url: &str) -> Result<Zeroizing<String>, String> {
    Ok(Zeroizing::new(url.to_owned()))
}

/// The key given to `apikey hash` on its command line: refused, and not shown.
pub fn key_on_command_line(_: &str) -> Result<String, String> {
    Err(
        "`apikey hash` reads the key from standard input, not from the command line, so it \
         stays out of shell history: `apikey hash < key.txt`"
            .into(),
    )
}
