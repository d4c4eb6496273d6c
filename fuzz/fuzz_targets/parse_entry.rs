//! The key-entry parser: never panics, never echoes the key or a control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocket_api_key_runtime::parse_entry;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let Err(error) = parse_entry(input) else { return };
    let message = error.to_string();
    assert!(!message.chars().any(|c| c.is_control()), "control character in {message:?}");
    // A key long enough to be one must not come back, unless the other fields repeat enough of
    // it (8 characters in a row) that an echo of those fields could show it.
    let (key, rest) = input.split_once(';').unwrap_or((input, ""));
    let key = key.trim();
    let repeated = key.as_bytes().windows(8).any(|w| rest.as_bytes().windows(8).any(|r| r == w));
    if key.len() >= 16 && !repeated {
        assert!(!message.contains(key), "{input:?} -> {message}");
    }
});
