//! Property tests of the parsers and of presented-key handling: arbitrary input never panics,
//! valid entries round-trip, and no rejection ever repeats the secret.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;
use rocket_api_key_runtime::{
    __private::cli::parse_duration, __private::cli::parse_entry, keygen::checksum,
    keygen::Checksum, keygen::GeneratedKey, keygen::KeyDigest, ApiKeyStore, Reason,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Keys an operator might choose: visible ASCII without `;` and `_` (so never the generated
/// shape) and not starting with `sha256:`.
fn plain_key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&*+.:/@^~-]{16,64}"
        .prop_filter("not a digest entry", |k| !k.starts_with("sha256:"))
}

fn scope() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:/-]{1,64}"
}

fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, p)| IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), p).unwrap()),
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, p)| IpNet::new(IpAddr::V6(Ipv6Addr::from(a)), p).unwrap()),
    ]
}

/// Optional whitespace, which the grammar allows around every separator.
fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" "), Just("  "), Just("\t")]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_entry_never_panics(input in any::<String>()) {
        let _ = parse_entry(&input);
    }

    #[test]
    fn parse_entry_never_panics_on_entry_shaped_input(input in "[ -~]{0,40}(;[a-z]{0,8}=?[ -~]{0,30}){0,4}") {
        let _ = parse_entry(&input);
    }

    #[test]
    fn valid_entries_round_trip(
        key in plain_key(),
        hashed in any::<bool>(),
        scopes in proptest::collection::hash_set(scope(), 0..5),
        expires in proptest::option::of(0i64..4_102_444_800),
        ips in proptest::collection::vec(net(), 0..4),
        spaces in proptest::collection::vec(ws(), 8),
    ) {
        let digest = KeyDigest::of(key.as_bytes());
        let mut entry = if hashed { digest.to_entry() } else { key.clone() };
        entry = format!("{}{entry}{}", spaces[0], spaces[1]);
        let scopes: Vec<String> = scopes.into_iter().collect();
        if !scopes.is_empty() {
            entry += &format!(";{}scopes{}={}{}", spaces[2], spaces[3], scopes.join(&format!("{},", spaces[4])), spaces[5]);
        }
        let expires = expires.map(|t| OffsetDateTime::from_unix_timestamp(t).unwrap());
        if let Some(at) = expires {
            entry += &format!(";expires={}", at.format(&Rfc3339).unwrap());
        }
        if !ips.is_empty() {
            let list: Vec<String> = ips.iter().map(|n| n.to_string()).collect();
            entry += &format!(";{}ips={}", spaces[6], list.join(","));
        }
        let parsed = parse_entry(&entry).map_err(|e| TestCaseError::fail(format!("{entry:?}: {e}")))?;
        prop_assert_eq!(parsed.digest.to_entry(), digest.to_entry());
        prop_assert_eq!(parsed.scopes, scopes);
        prop_assert_eq!(parsed.expires, expires);
        let truncated: Vec<IpNet> = ips.iter().map(|n| n.trunc()).collect();
        prop_assert_eq!(parsed.ips, truncated);
    }

    #[test]
    fn rejections_never_repeat_the_secret(
        secret in "[A-Za-z0-9]{16,40}",
        junk in "[ -~]{0,30}",
        breaker in prop_oneof![Just(" "), Just("\t"), Just("é"), Just("\u{1b}")],
        at in 0usize..16,
    ) {
        let broken = format!("{}{breaker}{}", &secret[..at], &secret[at..]);
        let cases = [
            format!("{secret};{junk}"),
            format!("{secret};scopes={junk} x"),
            format!("{secret};expires={junk}x"),
            format!("{secret};ips={junk}x"),
            format!("{secret};nope={junk}"),
            format!("{secret};scopes=a;scopes=b"),
            broken.clone(),
            format!("{broken};scopes=a"),
            format!("sha256:{secret}"),
            format!("{};scopes=a", &secret[..at.min(15)]),
        ];
        for case in &cases {
            if let Err(e) = parse_entry(case) {
                let message = e.to_string();
                prop_assert!(!message.contains(&secret), "{:?} -> {}", case, message);
                prop_assert!(!message.contains(&broken), "{:?} -> {}", case, message);
                prop_assert!(!message.contains('\u{1b}'), "{:?} -> {}", case, message);
            }
        }
    }

    #[test]
    fn presented_keys_never_panic_and_only_the_key_passes(presented in any::<String>(), key in plain_key()) {
        let keys = ApiKeyStore::builder().from_env(false).key("only", key.clone()).build().unwrap();
        match keys.verify(&presented, None) {
            Ok(found) => {
                prop_assert_eq!(&presented, &key);
                prop_assert_eq!(found.name(), "only");
            }
            Err(reason) => {
                prop_assert_ne!(&presented, &key);
                prop_assert!(matches!(reason, Reason::Malformed | Reason::Unknown), "{:?}", reason);
            }
        }
        prop_assert!(keys.verify(&key, None).is_ok());
    }

    #[test]
    fn near_misses_of_a_key_are_refused(key in plain_key(), i in any::<prop::sample::Index>(), c in "[ -~]") {
        let keys = ApiKeyStore::builder().from_env(false).key("only", key.clone()).build().unwrap();
        let at = i.index(key.len());
        let mut changed = key.clone();
        changed.replace_range(at..at + 1, &c);
        if changed != key {
            prop_assert!(keys.verify(&changed, None).is_err());
        }
        prop_assert!(keys.verify(&key[..key.len() - 1], None).is_err());
        let doubled = key.repeat(2);
        prop_assert!(keys.verify(&doubled, None).is_err());
        prop_assert!(keys.verify(&KeyDigest::of(key.as_bytes()).to_entry(), None).is_err());
    }

    #[test]
    fn checksums_and_durations_never_panic(input in any::<String>()) {
        let _ = checksum(&input);
        let _ = parse_duration(&input);
    }

    #[test]
    fn generated_keys_always_check_out(prefix in "(sha256)?[a-z][a-z0-9]{0,15}") {
        // A key `sha256…` would read as a misspelt digest: no such prefix is taken.
        let Ok(key) = GeneratedKey::with_prefix(&prefix) else {
            prop_assert!(prefix.starts_with("sha256"), "{}", prefix);
            return Ok(());
        };
        prop_assert_eq!(checksum(key.expose_secret()), Checksum::Valid);
        prop_assert!(parse_entry(key.expose_secret()).is_ok());
    }

    #[test]
    fn keys_files_never_panic(contents in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dir = std::env::temp_dir().join(format!("rak-prop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("keys-{}", KeyDigest::of(&contents).fingerprint()));
        std::fs::write(&path, &contents).unwrap();
        // Dated an hour back, as a file that has been in place a while: a fresh one whose last
        // line has no newline is given a poll interval to settle at start, in every case.
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600)).unwrap();
        drop(file);
        let _ = ApiKeyStore::builder().from_env(false).keys_file(&path).build();
        std::fs::remove_file(&path).unwrap();
    }
}
