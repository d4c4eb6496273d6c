//! The key-entry grammar shared by environment variables, the keys file and the builder:
//!
//! ```text
//! <key>[;scopes=<scope>,<scope>…][;expires=<RFC 3339 time>][;ips=<IP or CIDR>,…][;rate=<n>/<s|m|h|d>]
//! ```
//!
//! `<key>` is the secret itself, or `sha256:<64 hex digits>` of it (`sha256` in any case, then `:`
//! or `=`). A key that looks like a digest written some other way (`sha-256:<hex>`) is an error,
//! never a key. Errors describe what is wrong without ever repeating the key, its digest, or text
//! that might be part of either.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::keygen::digest::{KeyDigest, DIGEST_TAG};
use crate::keygen::{checksum, Checksum};
use crate::rate::{RateError, RateSpec};
use crate::scope::{is_valid_scope, MAX_SCOPE_LEN};

/// The shortest plaintext key accepted: shorter secrets can be guessed.
pub(crate) const MIN_PLAINTEXT_KEY_LEN: usize = 16;

/// The longest plaintext key accepted, and the default cap on a presented key.
pub(crate) const MAX_KEY_LEN: usize = 256;

/// One parsed key entry: the digest of the key and what it may do.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The SHA-256 digest of the key.
    pub digest: KeyDigest,
    /// The scopes granted, in the order written, without duplicates.
    pub scopes: Vec<String>,
    /// When the key stops being accepted.
    pub expires: Option<OffsetDateTime>,
    /// Client networks the key may be used from; empty means anywhere.
    pub ips: Vec<IpNet>,
    /// The key's request rate limit, if any.
    pub rate: Option<RateSpec>,
}

impl KeyEntry {
    /// The entry in the grammar, with the key as its digest: what a configuration holds for it.
    /// It parses back to the same entry; networks in `ips` are written as networks (`10.1.2.3/8`
    /// as `10.0.0.0/8`, an address with `/32` or `/128`).
    ///
    /// Fails only for an expiry that RFC 3339 cannot express (a year past 9999), which
    /// [`parse_entry`] never yields.
    ///
    /// ```
    /// use rocket_api_key::{__private::cli::parse_entry, keygen::KeyDigest};
    ///
    /// let entry = parse_entry("0123456789abcdef0123;scopes=admin;ips=10.0.0.0/8").unwrap();
    /// let digest = KeyDigest::of(b"0123456789abcdef0123").to_entry();
    /// assert_eq!(entry.to_entry().unwrap(), format!("{digest};scopes=admin;ips=10.0.0.0/8"));
    /// ```
    pub fn to_entry(&self) -> Result<String, time::error::Format> {
        let mut entry = self.digest.to_entry();
        if !self.scopes.is_empty() {
            entry.push_str(";scopes=");
            entry.push_str(&self.scopes.join(","));
        }
        if let Some(at) = self.expires {
            entry.push_str(";expires=");
            entry.push_str(&at.format(&Rfc3339)?);
        }
        if !self.ips.is_empty() {
            let ips: Vec<String> = self.ips.iter().map(IpNet::to_string).collect();
            entry.push_str(";ips=");
            entry.push_str(&ips.join(","));
        }
        if let Some(rate) = self.rate {
            entry.push_str(";rate=");
            entry.push_str(&rate.to_string());
        }
        Ok(entry)
    }
}

/// What is wrong with an entry. Never contains the key, its digest, or a fragment of either.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// Nothing before the first `;`.
    EmptyKey,
    /// A plaintext key shorter than 16 bytes.
    KeyTooShort,
    /// A plaintext key longer than 256 bytes.
    KeyTooLong,
    /// A plaintext key with a character outside visible ASCII.
    KeyCharacters,
    /// `sha256:` not followed by exactly 64 hex digits.
    BadDigest,
    /// A key that looks like a digest but is not `sha256:` (or `sha256=`) and hex: one that starts
    /// with `sha256` (any case) without `:` or `=` after it, or any other tag of up to 16
    /// characters, then `:` or `=`, then 64, 96 or 128 hex digits (`sha-256:…`, `SHA2=…`,
    /// `sha512:…`). A misspelt digest, never taken for a plaintext key.
    MisspeltDigest,
    /// A key of the generated shape (`rak_…`) whose checksum is wrong: a typo or a truncation.
    BadChecksum,
    /// A field (1-based position after the key) without `=`.
    FieldSyntax(usize),
    /// A field name that is not `scopes`, `expires`, `ips` or `rate`; carries the name only when it
    /// is short and lowercase, so a secret that contained `;` is never echoed.
    UnknownField(Option<String>),
    /// The same field twice.
    DuplicateField(&'static str),
    /// A field with nothing after `=`, or an empty item in a list.
    EmptyValue(&'static str),
    /// A scope outside the grammar (the scope, escaped and truncated).
    BadScope(String),
    /// The same scope twice.
    DuplicateScope(String),
    /// An `expires=` that is not an RFC 3339 time (the parser's explanation).
    BadExpiry(String),
    /// A `rate=` that is not `<n>/<s|m|h|d>`.
    BadRate(RateError),
    /// An `ips=` item that is neither an IP address nor a CIDR network (escaped and truncated).
    BadIp(String),
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::EmptyKey => f.write_str("the key is empty; write the key (or `sha256:<hex>`) before the first `;`"),
            EntryError::KeyTooShort => write!(
                f,
                "the key is shorter than {MIN_PLAINTEXT_KEY_LEN} characters; generate a random key of at least 32 bytes"
            ),
            EntryError::KeyTooLong => write!(f, "the key is longer than {MAX_KEY_LEN} bytes"),
            EntryError::KeyCharacters => f.write_str(
                "the key contains a space, a control or a non-ASCII character; keys are sent in an HTTP header and may use visible ASCII characters other than `;` only",
            ),
            EntryError::BadDigest => f.write_str("`sha256:` must be followed by exactly 64 hex digits"),
            EntryError::MisspeltDigest => f.write_str(
                "the key looks like a digest but is not `sha256:` and 64 hex digits; write a digest as `sha256:<hex>` (no key may start with `sha256`, nor be a short tag, `:` or `=`, and 64, 96 or 128 hex digits)",
            ),
            EntryError::BadChecksum => f.write_str(
                "the key has the shape of a generated key but its checksum is wrong; check it was copied whole",
            ),
            EntryError::FieldSyntax(n) => write!(
                f,
                "field {n} after the key is not of the form `name=value` (a key may not contain `;`)"
            ),
            EntryError::UnknownField(Some(name)) => {
                let closest = FIELDS.iter().min_by_key(|field| edit_distance(name, field));
                write!(f, "unknown field `{name}`; did you mean `{}`?", closest.unwrap_or(&"scopes"))
            }
            EntryError::UnknownField(None) => {
                f.write_str("unknown field; expected `scopes`, `expires`, `ips` or `rate` (a key may not contain `;`)")
            }
            EntryError::DuplicateField(name) => write!(f, "`{name}` is given twice"),
            EntryError::EmptyValue(name) => write!(f, "`{name}` has an empty value or list item"),
            EntryError::BadScope(s) => write!(
                f,
                "invalid scope {s}; a scope is 1 to {MAX_SCOPE_LEN} characters of `A-Z a-z 0-9 _ . : / -`"
            ),
            EntryError::DuplicateScope(s) => write!(f, "scope `{s}` is listed twice"),
            EntryError::BadExpiry(why) => write!(
                f,
                "`expires` is not an RFC 3339 time such as `2027-01-31T00:00:00Z` ({why})"
            ),
            EntryError::BadRate(why) => write!(f, "invalid `rate`: {why}"),
            EntryError::BadIp(s) => write!(
                f,
                "invalid address {s} in `ips`; expected an IP address or a CIDR network such as `10.0.0.0/8`"
            ),
        }
    }
}

impl std::error::Error for EntryError {}

/// Parses an entry value (everything after `API_KEY_<NAME>=` or `<name>=`).
///
/// ```
/// use rocket_api_key::__private::cli::parse_entry;
///
/// let entry = parse_entry("0123456789abcdef0123;scopes=read:orders,admin;ips=10.0.0.0/8").unwrap();
/// assert_eq!(entry.scopes, ["read:orders", "admin"]);
/// assert!(parse_entry("short").is_err());
/// ```
pub fn parse_entry(value: &str) -> Result<KeyEntry, EntryError> {
    let mut parts = value.split(';');
    let key = parts.next().unwrap_or_default().trim();
    let digest = parse_key(key)?;

    let mut entry = KeyEntry {
        digest,
        scopes: Vec::new(),
        expires: None,
        ips: Vec::new(),
        rate: None,
    };
    let (mut seen_scopes, mut seen_expires, mut seen_ips, mut seen_rate) =
        (false, false, false, false);
    for (i, field) in parts.enumerate() {
        let Some((name, value)) = field.split_once('=') else {
            return Err(EntryError::FieldSyntax(i + 1));
        };
        let value = value.trim();
        match name.trim() {
            "scopes" => {
                once(&mut seen_scopes, "scopes")?;
                entry.scopes = parse_scopes(value)?;
            }
            "expires" => {
                once(&mut seen_expires, "expires")?;
                if value.is_empty() {
                    return Err(EntryError::EmptyValue("expires"));
                }
                let at = OffsetDateTime::parse(value, &Rfc3339)
                    .map_err(|e| EntryError::BadExpiry(e.to_string()))?;
                entry.expires = Some(at);
            }
            "ips" => {
                once(&mut seen_ips, "ips")?;
                entry.ips = parse_ips(value)?;
            }
            "rate" => {
                once(&mut seen_rate, "rate")?;
                if value.is_empty() {
                    return Err(EntryError::EmptyValue("rate"));
                }
                entry.rate = Some(value.parse().map_err(EntryError::BadRate)?);
            }
            other => return Err(EntryError::UnknownField(echoable_field_name(other))),
        }
    }
    Ok(entry)
}

/// Whether an entry's key is written as its digest (`sha256:<hex>`, in any spelling that
/// [`parse_entry`] accepts) rather than as the key itself. Says nothing of whether the entry is
/// valid.
///
/// ```
/// use rocket_api_key::__private::cli::is_digest_entry;
///
/// assert!(is_digest_entry("SHA256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08;scopes=x"));
/// assert!(!is_digest_entry("0123456789abcdef0123;scopes=x"));
/// ```
pub fn is_digest_entry(value: &str) -> bool {
    let key = value.split(';').next().unwrap_or_default().trim();
    matches!(digest_hex(key), Ok(Some(_)))
}

/// The longest text before `:` or `=` that is read as a digest's tag when hex follows: room for
/// `sha-256`, `SHA2-256`, `sha512`, `digest`, and as long as the longest key prefix
/// `keygen` allows.
const MAX_TAG_LEN: usize = 16;

/// Lengths of hex that make a tagged key a digest: SHA-256's, and SHA-384's and SHA-512's for an
/// operator who hashed with the wrong tool. Not MD5's 32 or SHA-1's 40: those are also
/// `token_hex(16)` and `token_hex(20)` behind a prefix, keys an operator may well have chosen.
const DIGEST_HEX_LENS: [usize; 3] = [64, 96, 128];

/// The hex digits of a key written as a digest. The tag is `sha256` in any case, followed by `:`
/// or `=` (operators write `SHA256:`, and `=` separates everything else in the configuration).
///
/// A key that looks like a digest written otherwise is an error: read as a plaintext key, a
/// misspelt digest would let whoever can read the configuration authenticate with the entry's
/// own text. That is any key starting with `sha256`, and any short tag followed by `:` or `=`
/// and a digest's length of hex digits, whatever the tag says (`sha-256:`, `SHA2=`, `hash:`,
/// `sha512:`). A generated key has neither `:` nor `=`, and a key an operator chose ends in
/// exactly 64, 96 or 128 hex digits after such a tag only if made that way.
fn digest_hex(key: &str) -> Result<Option<&str>, EntryError> {
    let tagged = key
        .get(..DIGEST_TAG.len())
        .is_some_and(|tag| tag.eq_ignore_ascii_case(DIGEST_TAG));
    if tagged {
        return match key.as_bytes().get(DIGEST_TAG.len()) {
            Some(b':' | b'=') => Ok(key.get(DIGEST_TAG.len() + 1..)),
            _ => Err(EntryError::MisspeltDigest),
        };
    }
    // The last separator, so that a tag with `:` in it (`sha:256:`) is a tag too.
    let digest_shaped = key.rsplit_once([':', '=']).is_some_and(|(tag, hex)| {
        tag.len() <= MAX_TAG_LEN
            && DIGEST_HEX_LENS.contains(&hex.len())
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if digest_shaped {
        return Err(EntryError::MisspeltDigest);
    }
    Ok(None)
}

fn parse_key(key: &str) -> Result<KeyDigest, EntryError> {
    if key.is_empty() {
        return Err(EntryError::EmptyKey);
    }
    // First, so that no message about a digest can quote a key with spaces in it.
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EntryError::KeyCharacters);
    }
    if let Some(hex) = digest_hex(key)? {
        return KeyDigest::from_hex(hex).ok_or(EntryError::BadDigest);
    }
    if key.len() < MIN_PLAINTEXT_KEY_LEN {
        return Err(EntryError::KeyTooShort);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(EntryError::KeyTooLong);
    }
    if checksum(key) == Checksum::Invalid {
        return Err(EntryError::BadChecksum);
    }
    Ok(KeyDigest::of(key.as_bytes()))
}

fn once(seen: &mut bool, name: &'static str) -> Result<(), EntryError> {
    if std::mem::replace(seen, true) {
        return Err(EntryError::DuplicateField(name));
    }
    Ok(())
}

fn list<'a>(value: &'a str, field: &'static str) -> Result<Vec<&'a str>, EntryError> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.iter().any(|s| s.is_empty()) {
        return Err(EntryError::EmptyValue(field));
    }
    Ok(items)
}

fn parse_scopes(value: &str) -> Result<Vec<String>, EntryError> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in list(value, "scopes")? {
        if !is_valid_scope(scope) {
            return Err(EntryError::BadScope(quoted(scope)));
        }
        if scopes.iter().any(|s| s == scope) {
            return Err(EntryError::DuplicateScope(scope.to_owned()));
        }
        scopes.push(scope.to_owned());
    }
    Ok(scopes)
}

fn parse_ips(value: &str) -> Result<Vec<IpNet>, EntryError> {
    list(value, "ips")?
        .into_iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| EntryError::BadIp(quoted(item)))
        })
        .collect()
}

/// A field name is echoed only when it is plainly a misspelt field (lowercase, within two edits
/// of a field name): the text before `=` could otherwise be the tail of a secret
/// that contained `;`.
fn echoable_field_name(name: &str) -> Option<String> {
    let name = name.trim();
    let plausible = (1..=10).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && FIELDS.iter().any(|field| edit_distance(name, field) <= 2);
    plausible.then(|| name.to_owned())
}

const FIELDS: [&str; 4] = ["scopes", "expires", "ips", "rate"];

/// Levenshtein distance, for short ASCII names. The attribute's "did you mean" has its own copy
/// (a proc-macro crate cannot share code with this one); its tests check that both agree.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// User text quoted for an error message: escaped (no control characters reach a terminal or a
/// log line) and cut to a readable length.
pub(crate) fn quoted(text: &str) -> String {
    const MAX: usize = 72;
    let mut cut: String = text.chars().take(MAX).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{:?}", cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn err(value: &str) -> EntryError {
        parse_entry(value).expect_err(value)
    }

    #[test]
    fn plain_key_is_hashed() {
        let e = parse_entry(KEY).unwrap();
        assert!(e.digest.ct_eq(&KeyDigest::of(KEY.as_bytes())));
        assert!(e.scopes.is_empty() && e.expires.is_none() && e.ips.is_empty());
    }

    #[test]
    fn hashed_key_is_taken_as_is() {
        let entry = KeyDigest::of(KEY.as_bytes()).to_entry();
        let e = parse_entry(&entry).unwrap();
        assert!(e.digest.ct_eq(&KeyDigest::of(KEY.as_bytes())));
        let upper = format!("sha256:{}", entry[7..].to_uppercase());
        assert!(parse_entry(&upper).unwrap().digest.ct_eq(&e.digest));
    }

    #[test]
    fn digest_tag_in_any_case_with_colon_or_equals() {
        let digest = KeyDigest::of(KEY.as_bytes());
        let hex = &digest.to_entry()[7..];
        for tag in ["sha256:", "SHA256:", "Sha256:", "sha256=", "SHA256="] {
            for hex in [hex.to_owned(), hex.to_uppercase()] {
                let entry = format!("{tag}{hex};scopes=admin");
                assert!(is_digest_entry(&entry), "{entry}");
                let e = parse_entry(&entry).unwrap();
                assert!(
                    e.digest.ct_eq(&digest),
                    "{tag}{hex} is the digest, not a key"
                );
                assert_eq!(e.scopes, ["admin"]);
            }
        }
    }

    #[test]
    fn misspelt_digests_are_never_plaintext_keys() {
        let hex = &KeyDigest::of(KEY.as_bytes()).to_entry()[7..];
        for tag in [
            "sha256-", "SHA256", "sha256_", "Sha256.", "sha256;", "sHa256/",
        ] {
            let entry = format!("{tag}{hex}");
            assert!(!is_digest_entry(&entry), "{entry}");
            let e = err(&entry);
            assert_eq!(e, EntryError::MisspeltDigest, "{entry}");
            assert!(!e.to_string().contains(&hex[..16]), "{e}");
        }
        // Not a key either way: a space or a non-ASCII character is never in a key.
        assert_eq!(err(&format!("sha256 {hex}")), EntryError::KeyCharacters);
        assert_eq!(
            err(&format!("sha256\u{e9}{hex}")),
            EntryError::KeyCharacters
        );
        assert_eq!(err("sha256"), EntryError::MisspeltDigest);
        assert_eq!(
            err("SHA256xxxxxxxxxxxxxxxxxxxxxxxx"),
            EntryError::MisspeltDigest
        );
        assert_eq!(err(&format!("SHA256:{}", &hex[1..])), EntryError::BadDigest);
        assert_eq!(err("sha256="), EntryError::BadDigest);
        // A key that merely contains the word is a key.
        assert!(parse_entry("my-sha256-key-0123456789").is_ok());
    }

    #[test]
    fn digests_under_another_tag_are_never_plaintext_keys() {
        let hex = &KeyDigest::of(KEY.as_bytes()).to_entry()[7..];
        let sha512 = hex.repeat(2);
        let sha384 = &sha512[..96];
        let tags = [
            "sha-256:",
            "sha_256=",
            "SHA2:",
            "s256:",
            "sha512:",
            "hash:",
            "digest=",
            "hex:",
            "SHA-256=",
            "sha2-256:",
            "sha:256:",
            "sha256sum=",
            ":",
            "=",
            "0123456789abcdef:",
        ];
        for tag in tags {
            for hex in [hex, &hex.to_uppercase(), sha384, &sha512] {
                for entry in [format!("{tag}{hex}"), format!(" {tag}{hex} ;scopes=admin")] {
                    assert!(!is_digest_entry(&entry), "{entry}");
                    let e = err(&entry);
                    assert_eq!(e, EntryError::MisspeltDigest, "{entry}");
                    assert!(!e.to_string().contains(&hex[..16]), "{e}");
                }
            }
        }
        // A space inside the key refuses it either way.
        for entry in [format!("sha-256 :{hex}"), format!("sha-256: {hex}")] {
            assert_eq!(err(&entry), EntryError::KeyCharacters, "{entry}");
        }
    }

    #[test]
    fn keys_with_a_colon_or_equals_sign_are_keys() {
        let hex = &KeyDigest::of(KEY.as_bytes()).to_entry()[7..];
        let keys = [
            // Base64 with its padding, a user:password pair, a URL-ish key.
            "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1leGFjdGx5IQ==".to_owned(),
            "service-account:0123456789abcdef".to_owned(),
            "key=value&token=0123456789abcdef".to_owned(),
            // Past the tag's length, or not a digest's length of hex.
            format!("0123456789abcdefg:{hex}"),
            format!("hash:{}", &hex[1..]),
            format!("hash:{hex}0"),
            format!("md5:{}", &hex[..32]),
            format!("sha1:{}", &hex[..40]),
            format!("hash:{}g", &hex[1..]),
        ];
        for key in &keys {
            let e = parse_entry(key).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(e.digest.ct_eq(&KeyDigest::of(key.as_bytes())), "{key}");
        }
        // Generated keys, of every prefix length: no `:` or `=` in them.
        for prefix in ["r", "rak", "abcdefghijklmnop", "hash", "sha", "sha25"] {
            for _ in 0..50 {
                let key = crate::keygen::GeneratedKey::with_prefix(prefix).unwrap();
                let e = parse_entry(key.expose_secret()).unwrap();
                assert!(e.digest.ct_eq(&key.digest()));
            }
        }
    }

    #[test]
    fn all_fields_with_spaces() {
        let e = parse_entry(&format!(
            " {KEY} ; scopes = read:orders , admin ; expires=2030-01-02T03:04:05+01:00; ips=10.1.2.3/8, 192.168.0.1 ,::1"
        ))
        .unwrap();
        assert_eq!(e.scopes, ["read:orders", "admin"]);
        assert_eq!(e.expires.unwrap().unix_timestamp(), 1_893_549_845);
        let ips: Vec<String> = e.ips.iter().map(|n| n.to_string()).collect();
        assert_eq!(ips, ["10.0.0.0/8", "192.168.0.1/32", "::1/128"]);
        let e = parse_entry(&format!("{KEY};rate = 600/m ")).unwrap();
        assert_eq!(e.rate.unwrap().to_string(), "600/m");
    }

    #[test]
    fn entries_print_as_they_parse() {
        let digest = KeyDigest::of(KEY.as_bytes()).to_entry();
        let cases = [
            (KEY.to_owned(), digest.clone()),
            (
                format!(" {KEY} ; rate = 600/m ; ips = 10.1.2.3/8, ::1 ; expires=2030-01-02T03:04:05.5+01:00 ; scopes = a , b:c "),
                format!("{digest};scopes=a,b:c;expires=2030-01-02T03:04:05.5+01:00;ips=10.0.0.0/8,::1/128;rate=600/m"),
            ),
            (
                format!("{};expires=2030-01-02T03:04:05Z", digest.to_uppercase().replace("SHA256:", "SHA256=")),
                format!("{digest};expires=2030-01-02T03:04:05Z"),
            ),
        ];
        for (written, printed) in cases {
            let entry = parse_entry(&written).unwrap();
            assert_eq!(entry.to_entry().unwrap(), printed);
            let again = parse_entry(&printed).unwrap();
            assert!(again.digest.ct_eq(&entry.digest));
            assert_eq!(
                (&again.scopes, again.expires, &again.ips, again.rate),
                (&entry.scopes, entry.expires, &entry.ips, entry.rate)
            );
        }
    }

    /// Every malformed entry, with the message an operator reads for it: the key's own
    /// problems first, then each field's. `…` at the end of an expected message means "starts
    /// with" (the time crate's explanation follows).
    #[test]
    fn malformed_entries_and_what_they_say() {
        let k = KEY;
        let over = "s".repeat(65);
        let cases: Vec<(String, &str)> = vec![
            // The key.
            (String::new(), "the key is empty; write the key (or `sha256:<hex>`) before the first `;`"),
            ("   ;scopes=a".into(), "the key is empty; write the key (or `sha256:<hex>`) before the first `;`"),
            ("short".into(), "the key is shorter than 16 characters; generate a random key of at least 32 bytes"),
            ("k".repeat(257), "the key is longer than 256 bytes"),
            ("0123456789 abcdef0123".into(), "the key contains a space, a control or a non-ASCII character; keys are sent in an HTTP header and may use visible ASCII characters other than `;` only"),
            ("0123456789\tabcdef0123".into(), "the key contains a space, a control or a non-ASCII character; keys are sent in an HTTP header and may use visible ASCII characters other than `;` only"),
            ("0123456789abcdéf0123".into(), "the key contains a space, a control or a non-ASCII character; keys are sent in an HTTP header and may use visible ASCII characters other than `;` only"),
            ("sha256:abcd".into(), "`sha256:` must be followed by exactly 64 hex digits"),
            (format!("sha256:{}", "z".repeat(64)), "`sha256:` must be followed by exactly 64 hex digits"),
            ("sha256-0123456789abcdef".into(), "the key looks like a digest but is not `sha256:` and 64 hex digits; write a digest as `sha256:<hex>` (no key may start with `sha256`, nor be a short tag, `:` or `=`, and 64, 96 or 128 hex digits)"),
            (format!("sha-256:{}", "0a".repeat(32)), "the key looks like a digest but is not `sha256:` and 64 hex digits; write a digest as `sha256:<hex>` (no key may start with `sha256`, nor be a short tag, `:` or `=`, and 64, 96 or 128 hex digits)"),
            // Field syntax and names.
            (format!("{k};scopes"), "field 1 after the key is not of the form `name=value` (a key may not contain `;`)"),
            (format!("{k};scopes=a;;"), "field 2 after the key is not of the form `name=value` (a key may not contain `;`)"),
            (format!("{k};scope=a"), "unknown field `scope`; did you mean `scopes`?"),
            (format!("{k};expire=x"), "unknown field `expire`; did you mean `expires`?"),
            (format!("{k};ip=x"), "unknown field `ip`; did you mean `ips`?"),
            (format!("{k};Xy9=a"), "unknown field; expected `scopes`, `expires`, `ips` or `rate` (a key may not contain `;`)"),
            (format!("{k};password=a"), "unknown field; expected `scopes`, `expires`, `ips` or `rate` (a key may not contain `;`)"),
            (format!("{k};scopes=a;scopes=b"), "`scopes` is given twice"),
            (format!("{k};rate=1/s;rate=2/s"), "`rate` is given twice"),
            (format!("{k};expires=2030-01-01T00:00:00Z;expires=2031-01-01T00:00:00Z"), "`expires` is given twice"),
            // Values.
            (format!("{k};scopes="), "`scopes` has an empty value or list item"),
            (format!("{k};scopes=a,,b"), "`scopes` has an empty value or list item"),
            (format!("{k};scopes=read orders"), "invalid scope \"read orders\"; a scope is 1 to 64 characters of `A-Z a-z 0-9 _ . : / -`"),
            (format!("{k};scopes={over}"), "invalid scope \"sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\"; a scope is 1 to 64 characters of `A-Z a-z 0-9 _ . : / -`"),
            (format!("{k};scopes=a,b,a"), "scope `a` is listed twice"),
            (format!("{k};expires="), "`expires` has an empty value or list item"),
            (format!("{k};expires=tomorrow"), "`expires` is not an RFC 3339 time such as `2027-01-31T00:00:00Z` (…"),
            (format!("{k};expires=2030-01-01"), "`expires` is not an RFC 3339 time such as `2027-01-31T00:00:00Z` (…"),
            (format!("{k};ips="), "`ips` has an empty value or list item"),
            (format!("{k};ips=10.0.0.300"), "invalid address \"10.0.0.300\" in `ips`; expected an IP address or a CIDR network such as `10.0.0.0/8`"),
            (format!("{k};ips=10.0.0.0/33"), "invalid address \"10.0.0.0/33\" in `ips`; expected an IP address or a CIDR network such as `10.0.0.0/8`"),
            (format!("{k};rate="), "`rate` has an empty value or list item"),
            (format!("{k};rate=600"), "invalid `rate`: `600` is not a rate; write `<n>/<s|m|h|d>` with n from 1 to 1000000000, e.g. `600/m`"),
        ];
        for (entry, expected) in &cases {
            let message = err(entry).to_string();
            match expected.strip_suffix('…') {
                Some(start) => assert!(message.starts_with(start), "{entry:?}: {message}"),
                None => assert_eq!(&message, expected, "{entry:?}"),
            }
        }
    }

    #[test]
    fn errors_never_repeat_the_secret() {
        let secret = "s3cr3t-VALUE-that-must-not-leak";
        let cases = [
            format!("{secret};{secret}"),
            format!("{secret};{secret}=x"),
            format!("x{secret} y"),
            format!("sha256:{secret}"),
            format!("{secret};scope=a"),
            format!("{secret};ips={}", "\u{1b}[31m"),
        ];
        for case in &cases {
            let message = err(case).to_string();
            assert!(!message.contains(secret), "{message}");
            assert!(!message.contains('\u{1b}'), "{message}");
        }
    }
}
