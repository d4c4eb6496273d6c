//! Key digests: the only form in which key material is kept after loading.

use std::fmt;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// The tag of a key written as its digest in a configuration entry (`sha256:<hex>`). No key may
/// start with it, in any case: see the entry grammar.
pub(crate) const DIGEST_TAG: &str = "sha256";

/// The SHA-256 digest of a key: what the store holds in place of the key itself.
///
/// Compared in constant time; its `Debug` and `Display` show only the
/// [fingerprint](KeyDigest::fingerprint), never the full digest.
#[derive(Clone, Copy)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// Hashes a presented or configured key.
    pub fn of(key: &[u8]) -> Self {
        KeyDigest(Sha256::digest(key).into())
    }

    /// Parses the 64 hex digits of a `sha256:` entry (either case).
    pub(crate) fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(KeyDigest(out))
    }

    /// The digest as a database column holds it.
    #[cfg(feature = "postgres")]
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        KeyDigest(bytes)
    }

    /// The digest's 32 bytes, for a database column.
    #[cfg(feature = "postgres")]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest in the `sha256:<64 hex digits>` form of a configuration entry.
    ///
    /// This is not a secret in the sense that it cannot be replayed (a server hashes what it is
    /// sent, so presenting the digest fails), but it is never logged either: a full digest lets
    /// anyone test guesses of a weak key offline.
    pub fn to_entry(&self) -> String {
        let mut s = String::with_capacity(DIGEST_TAG.len() + 1 + 64);
        s.push_str(DIGEST_TAG);
        s.push(':');
        push_hex(&mut s, &self.0);
        s
    }

    /// A short fingerprint for logs: the first 8 hex digits of the digest.
    ///
    /// Enough to tell keys and attempts apart and to match a `sha256:` entry by eye, too short to
    /// help anyone guess the key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// The first eight bytes, the store's index key (a SHA-256 output is uniformly distributed).
    pub(crate) fn prefix(&self) -> u64 {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(head)
    }

    /// Constant-time equality of the full 32 bytes: the differences of all four 64-bit words
    /// are combined without a branch, and `subtle` decides on the result. (`subtle`'s own slice
    /// comparison works byte by byte behind an optimisation barrier, several times slower.)
    pub(crate) fn ct_eq(&self, other: &KeyDigest) -> bool {
        let diff = self
            .0
            .chunks_exact(8)
            .zip(other.0.chunks_exact(8))
            .fold(0u64, |acc, (a, b)| acc | (word(a) ^ word(b)));
        diff.ct_eq(&0).into()
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({})", self.fingerprint())
    }
}

/// The first 8 hex digits of a key's SHA-256 digest, as it appears in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(8);
        push_hex(&mut s, &self.0);
        f.write_str(&s)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_ne_bytes(w)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_differing_in_any_one_bit_are_unequal() {
        let d = KeyDigest::of(b"some key or other");
        assert!(d.ct_eq(&d));
        for bit in 0..256 {
            let mut other = d;
            other.0[bit / 8] ^= 1 << (bit % 8);
            assert!(!d.ct_eq(&other), "bit {bit}");
        }
    }

    #[test]
    fn sha256_of_known_input() {
        // printf 'abc' | sha256sum
        let d = KeyDigest::of(b"abc");
        assert_eq!(
            d.to_entry(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.fingerprint().to_string(), "ba7816bf");
        assert_eq!(format!("{d:?}"), "KeyDigest(ba7816bf)");
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let d = KeyDigest::of(b"abc");
        let hex = &d.to_entry()[7..];
        assert!(KeyDigest::from_hex(hex).unwrap().ct_eq(&d));
        assert!(KeyDigest::from_hex(&hex.to_uppercase()).unwrap().ct_eq(&d));
        assert!(KeyDigest::from_hex(&hex[1..]).is_none());
        assert!(KeyDigest::from_hex(&format!("{}g", &hex[1..])).is_none());
        assert!(KeyDigest::from_hex("é").is_none());
    }
}
