//! What the key table gives back: a key as listed, a key just issued, a rotation.

use std::fmt;

use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::keygen::digest::KeyDigest;
use crate::keygen::GeneratedKey;

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
    pub(super) key: GeneratedKey,
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

/// What [`KeyTable::rotate`](super::KeyTable::rotate) did: the new key, shown once, and what became of the old one.
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

pub(super) fn record(row: &Row) -> Result<KeyRecord, tokio_postgres::Error> {
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
