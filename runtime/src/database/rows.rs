//! A row of the key table as an instance reads it: its entry built and checked by the entry
//! grammar, so that a row holds the keys-file rules whatever wrote it.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::keys::{Position, RowChange};
use crate::entry::{parse_entry, quoted, EntryError, KeyEntry};
use crate::keygen::digest::KeyDigest;

pub(super) fn position(row: &Row) -> Result<Position, tokio_postgres::Error> {
    Ok(Position {
        epoch: row.try_get("epoch")?,
        revision: row.try_get("revision")?,
    })
}

/// One row of the key columns (`KEY_COLUMNS`) as a change: its entry, built and checked by the entry grammar,
/// so that a row holds the keys-file rules whatever wrote it.
pub(super) fn key_row(row: &Row) -> Result<RowChange, tokio_postgres::Error> {
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
}
