//! What `apikey` writes: checked writes to standard output, errors to standard error, and the
//! announcement of a new key that `new` and `rotate` share.

use std::io::Write;

use rocket_api_key_runtime::__private::cli::KeyEntry;
use rocket_api_key_runtime::keygen::GeneratedKey;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::Failure;

/// Writes `text` whole to standard output. Every write is checked (`print!` panics on a closed
/// pipe), and flushed here so that a full disk is an error now rather than lost at exit.
pub fn print(text: &str) -> Result<(), Failure> {
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

/// Writes `text` to standard error. Not checked: with standard error gone there is nowhere left
/// to report to, and the exit code still tells.
pub fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// An error on standard error.
pub fn report(message: &str) {
    to_stderr(&format!("error: {message}\n"));
}

/// Whether standard output leads nowhere: to /dev/null, or closed when the command started (the
/// standard library then opens /dev/null in its place). A key written there is lost unseen.
#[cfg(unix)]
pub fn stdout_is_null() -> bool {
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
pub fn stdout_is_null() -> bool {
    false
}

/// Where the hash of a new key is kept.
pub enum Held<'a> {
    /// In the configuration line printed with it.
    Line(&'a str),
    /// In the key table; with the rotated key's new name and the end of its grace period.
    Table {
        replaces: Option<(&'a str, &'a str)>,
    },
}

/// The announcement of a new key: the key once, and what holds its hash.
pub fn announce(
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

/// An entry in the runtime's grammar, from a key (or its `sha256:` form) and its fields.
pub fn entry_text(
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

/// A time as RFC 3339, in UTC, to the second.
pub fn time_text(at: Option<OffsetDateTime>) -> String {
    at.map(|at| {
        let at = at.to_offset(time::UtcOffset::UTC);
        at.replace_nanosecond(0)
            .unwrap_or(at)
            .format(&Rfc3339)
            .unwrap_or_else(|_| at.unix_timestamp().to_string())
    })
    .unwrap_or_default()
}
