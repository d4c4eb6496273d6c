//! Presented-key handling: any string is refused unless it is exactly a configured key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rocket_api_key_runtime::{keygen::checksum, ApiKeyStore, keygen::GeneratedKey};

const PLAIN: &str = "plain-key-0123456789abcdef";

fn keys() -> &'static (ApiKeyStore, String) {
    static KEYS: OnceLock<(ApiKeyStore, String)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let generated = GeneratedKey::new().expect("OS randomness");
        let keys = ApiKeyStore::builder()
            .from_env(false)
            .key("plain", PLAIN)
            .key("generated", generated.entry())
            .build()
            .expect("valid keys");
        (keys, generated.expose_secret().to_owned())
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(presented) = std::str::from_utf8(data) else { return };
    let (keys, generated) = keys();
    let _ = checksum(presented);
    match keys.verify(presented, None) {
        Ok(key) => assert!(presented == PLAIN || presented == generated, "{:?} let in as {}", presented, key.name()),
        Err(_) => assert!(presented != PLAIN && presented != generated),
    }
});
