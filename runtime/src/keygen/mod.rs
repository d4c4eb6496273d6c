//! Generating keys: `<prefix>_<43 random base62 characters><6-character CRC32 checksum>`.
//!
//! 43 characters drawn uniformly from 62 carry 256.03 bits from the operating system's CSPRNG
//! (Python's `secrets.token_hex(32)` carries 256). The prefix makes a leaked key recognisable to
//! secret scanners, and the checksum lets a scanner, or this crate, tell a real key from a
//! random string or a typo without any lookup, the scheme GitHub uses for its tokens. A key of
//! the default prefix matches
//!
//! ```text
//! \brak_[0-9A-Za-z]{49}\b
//! ```
//!
//! and any generated key `\b[a-z][a-z0-9]{0,15}_[0-9A-Za-z]{49}\b`.

use std::fmt;

use rand::rngs::SysRng;
use rand::TryRng;
use zeroize::Zeroizing;

pub(crate) mod digest;

use digest::DIGEST_TAG;

pub use digest::{Fingerprint, KeyDigest};

/// The prefix of generated keys unless another is chosen: `rak_…` ("rocket api key").
pub const DEFAULT_KEY_PREFIX: &str = "rak";

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
const MAX_PREFIX_LEN: usize = 16;

/// A freshly generated key. Its `Debug` shows only the fingerprint; the key itself is wiped from
/// memory when dropped.
pub struct GeneratedKey {
    key: Zeroizing<String>,
}

/// Why a key could not be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyGenError {
    /// The prefix is not 1 to 16 characters of `a-z 0-9` starting with a letter, or starts with
    /// `sha256`.
    Prefix,
    /// The operating system's random number generator failed.
    Random(String),
}

impl fmt::Display for KeyGenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyGenError::Prefix => write!(
                f,
                "a key prefix is 1 to {MAX_PREFIX_LEN} characters of `a-z 0-9`, starting with a letter and not with `{DIGEST_TAG}` (a key that does reads as a misspelt digest)"
            ),
            KeyGenError::Random(e) => write!(f, "the operating system's random generator failed: {e}"),
        }
    }
}

impl std::error::Error for KeyGenError {}

impl GeneratedKey {
    /// A new key with the [default prefix](DEFAULT_KEY_PREFIX).
    ///
    /// ```
    /// use rocket_api_key::{keygen::checksum, keygen::Checksum, keygen::GeneratedKey};
    ///
    /// let key = GeneratedKey::new().unwrap();
    /// assert!(key.expose_secret().starts_with("rak_"));
    /// assert_eq!(key.expose_secret().len(), 4 + 49);
    /// assert_eq!(checksum(key.expose_secret()), Checksum::Valid);
    /// ```
    pub fn new() -> Result<Self, KeyGenError> {
        Self::with_prefix(DEFAULT_KEY_PREFIX)
    }

    /// A new key with this prefix (1 to 16 characters of `a-z 0-9`, starting with a letter and not
    /// with `sha256`).
    pub fn with_prefix(prefix: &str) -> Result<Self, KeyGenError> {
        let mut rng = SysRng;
        Self::from_rng(prefix, &mut |buf| {
            rng.try_fill_bytes(buf)
                .map_err(|e| KeyGenError::Random(e.to_string()))
        })
    }

    fn from_rng(
        prefix: &str,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<(), KeyGenError>,
    ) -> Result<Self, KeyGenError> {
        if !valid_prefix(prefix) {
            return Err(KeyGenError::Prefix);
        }
        let mut key = Zeroizing::new(String::with_capacity(
            prefix.len() + 1 + RANDOM_LEN + CHECKSUM_LEN,
        ));
        key.push_str(prefix);
        key.push('_');
        // Rejection sampling: bytes of 248 or more are dropped so that each of the 62
        // characters is equally likely (248 = 4 × 62).
        let mut buf = Zeroizing::new([0u8; 64]);
        let mut drawn = 0;
        while drawn < RANDOM_LEN {
            fill(&mut buf[..])?;
            for &b in buf.iter() {
                if b < 248 && drawn < RANDOM_LEN {
                    key.push(ALPHABET[usize::from(b % 62)] as char);
                    drawn += 1;
                }
            }
        }
        let sum = crc32fast::hash(key.as_bytes());
        key.extend(base62_checksum(sum).map(char::from));
        Ok(GeneratedKey { key })
    }

    /// The key. Show it once, to whoever will use it; the server needs only [`entry`](Self::entry).
    pub fn expose_secret(&self) -> &str {
        &self.key
    }

    /// The key's digest.
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(self.key.as_bytes())
    }

    /// The hashed form for the server's configuration: `sha256:<64 hex digits>`.
    pub fn entry(&self) -> String {
        self.digest().to_entry()
    }
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GeneratedKey({})", self.digest().fingerprint())
    }
}

/// What the checksum of a key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// The key does not have the generated shape; nothing to check (a key chosen by the operator).
    NotGenerated,
    /// A generated key whose checksum matches.
    Valid,
    /// The generated shape with a wrong checksum: a typo, a truncation or a made-up key.
    Invalid,
}

/// Checks the checksum of a key that has the generated shape, with no lookup.
///
/// ```
/// use rocket_api_key::{keygen::checksum, keygen::Checksum};
///
/// assert_eq!(checksum("a-key-the-operator-chose-0123"), Checksum::NotGenerated);
/// assert_eq!(checksum("rak_0000000000000000000000000000000000000000000000000"), Checksum::Invalid);
/// ```
pub fn checksum(key: &str) -> Checksum {
    // The first `_` ends the prefix. One further in than the longest prefix cannot make a
    // generated key, so the search stops there: a short loop, cheaper than `split_once`'s
    // general search, and this runs on every presented key.
    let Some(cut) = key.bytes().take(MAX_PREFIX_LEN + 1).position(|b| b == b'_') else {
        return Checksum::NotGenerated;
    };
    let (prefix, tail) = (&key[..cut], &key[cut + 1..]);
    let shaped = valid_prefix(prefix)
        && tail.len() == RANDOM_LEN + CHECKSUM_LEN
        && tail
            .bytes()
            .fold(true, |ok, b| ok & b.is_ascii_alphanumeric());
    if !shaped {
        return Checksum::NotGenerated;
    }
    let (body, sum) = key.split_at(key.len() - CHECKSUM_LEN);
    // Six base62 digits and the numbers below 62⁶ correspond one to one, so comparing numbers
    // is comparing digits; reading them is cheaper than writing the CRC out.
    if base62_value(sum.as_bytes()) == Some(u64::from(crc32fast::hash(body.as_bytes()))) {
        Checksum::Valid
    } else {
        Checksum::Invalid
    }
}

/// A prefix of generated keys. Not `sha256…`: the entry grammar refuses such a key as a misspelt
/// digest, and every generated key must load as an entry.
fn valid_prefix(prefix: &str) -> bool {
    !prefix.starts_with(DIGEST_TAG)
        && (1..=MAX_PREFIX_LEN).contains(&prefix.len())
        && prefix.as_bytes()[0].is_ascii_lowercase()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The number that base62 `digits` (most significant first) write; `None` for another byte.
fn base62_value(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, &d| {
        let value = match d {
            b'0'..=b'9' => d - b'0',
            b'A'..=b'Z' => d - b'A' + 10,
            b'a'..=b'z' => d - b'a' + 36,
            _ => return None,
        };
        Some(n * 62 + u64::from(value))
    })
}

/// CRC32 in 6 base62 digits, most significant first (62⁶ > 2³²). ASCII, without an allocation:
/// this runs on every presented key of the generated shape.
fn base62_checksum(mut n: u32) -> [u8; CHECKSUM_LEN] {
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    digits
}

#[cfg(test)]
mod tests {
    #[test]
    fn base62_digits_read_back() {
        for n in [0u32, 1, 61, 62, 3_843, 1 << 31, u32::MAX] {
            assert_eq!(
                super::base62_value(&super::base62_checksum(n)),
                Some(u64::from(n))
            );
        }
        assert_eq!(super::base62_value(b"zzzzzz"), Some(62u64.pow(6) - 1));
        assert_eq!(super::base62_value(b"00000-"), None);
    }

    use std::collections::HashSet;

    use super::*;

    #[test]
    fn format_length_and_checksum() {
        for prefix in ["rak", "x", "orders2", "abcdefghijklmnop"] {
            let key = GeneratedKey::with_prefix(prefix).unwrap();
            let s = key.expose_secret();
            assert_eq!(s.len(), prefix.len() + 1 + 49, "{s}");
            assert!(s.starts_with(&format!("{prefix}_")));
            assert!(s[prefix.len() + 1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(checksum(s), Checksum::Valid);
            // Every generated key is accepted as a configuration entry.
            crate::__private::cli::parse_entry(s).unwrap();
        }
    }

    #[test]
    fn bad_prefixes() {
        for prefix in [
            "",
            "Rak",
            "1ab",
            "ra_k",
            "r-k",
            "abcdefghijklmnopq",
            "sha256",
            "sha256x",
        ] {
            assert_eq!(
                GeneratedKey::with_prefix(prefix).unwrap_err(),
                KeyGenError::Prefix,
                "{prefix}"
            );
        }
    }

    #[test]
    fn any_single_change_breaks_the_checksum() {
        let key = GeneratedKey::new().unwrap();
        let s = key.expose_secret();
        for i in 4..s.len() {
            let mut bytes = s.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(checksum(&changed), Checksum::Invalid, "position {i}");
        }
        assert_eq!(checksum(&s.replacen("rak", "rat", 1)), Checksum::Invalid);
        assert_eq!(checksum(&s[..s.len() - 1]), Checksum::NotGenerated);
    }

    #[test]
    fn unique_and_uniform() {
        let mut seen = HashSet::new();
        let mut counts = [0u32; 62];
        for _ in 0..10_000 {
            let key = GeneratedKey::new().unwrap();
            let s = key.expose_secret().to_owned();
            for b in s[4..4 + RANDOM_LEN].bytes() {
                counts[ALPHABET.iter().position(|&a| a == b).unwrap()] += 1;
            }
            assert!(seen.insert(s));
        }
        // 430,000 draws over 62 symbols: about 6,935 each. A biased generator (e.g. `b % 62`
        // without rejection favours the first 8 symbols by 1/32) would leave this band.
        let expected = 430_000.0 / 62.0;
        for (i, &c) in counts.iter().enumerate() {
            let deviation = (f64::from(c) - expected).abs() / expected;
            assert!(
                deviation < 0.06,
                "symbol {} drawn {c} times",
                ALPHABET[i] as char
            );
        }
    }

    #[test]
    fn randomness_comes_from_the_given_source() {
        // A source of constant bytes yields a constant key: nothing else feeds the key.
        let mut zeros = |buf: &mut [u8]| {
            buf.fill(0);
            Ok(())
        };
        let a = GeneratedKey::from_rng("rak", &mut zeros).unwrap();
        let b = GeneratedKey::from_rng("rak", &mut zeros).unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert!(a
            .expose_secret()
            .starts_with(&format!("rak_{}", "0".repeat(43))));
        // Bytes at or above 248 are rejected, not folded onto the first symbols.
        let mut calls = 0;
        let mut mostly_high = |buf: &mut [u8]| {
            calls += 1;
            buf.fill(if calls < 3 { 250 } else { 61 });
            Ok(())
        };
        let c = GeneratedKey::from_rng("rak", &mut mostly_high).unwrap();
        assert!(c
            .expose_secret()
            .starts_with(&format!("rak_{}", "z".repeat(43))));
        let mut failing = |_: &mut [u8]| Err(KeyGenError::Random("no entropy".into()));
        assert!(GeneratedKey::from_rng("rak", &mut failing).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let key = GeneratedKey::new().unwrap();
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.expose_secret()[4..]), "{debug}");
        assert!(!debug.contains(&key.entry()[7..]), "{debug}");
    }
}
