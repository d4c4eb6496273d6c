//! Why an operation on the key table failed, told without what could quote a row or a
//! credential.

use std::fmt;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::entry::{quoted, EntryError};
use crate::keygen::KeyGenError;
use crate::redact::CredentialUrl;

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
            DatabaseError::NoTable => {
                f.write_str("the table `api_keys` does not exist; create it with `apikey db init`")
            }
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

pub(super) fn query_error(e: &tokio_postgres::Error, url: &CredentialUrl) -> DatabaseError {
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
pub(super) fn describe(e: &tokio_postgres::Error, url: &CredentialUrl) -> String {
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
