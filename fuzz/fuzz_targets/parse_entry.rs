//! The key-entry parser: never panics, never echoes the key or a control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocket_api_key_runtime::__private::cli::parse_entry;

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
    // Nor when the key is made of our own wording: then a different key still shows it.
    let shifted: String = key
        .chars()
        .map(|c| match c {
            'a'..='y' | 'A'..='Y' | '0'..='8' => (c as u8 + 1) as char,
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            c => c,
        })
        .collect();
    let wording = parse_entry(&input.replacen(key, &shifted, 1)).err().map(|e| e.to_string());
    let in_wording = wording.is_some_and(|w| w.contains(key));
    if key.len() >= 16 && !repeated && !in_wording {
        assert!(!message.contains(key), "{input:?} -> {message}");
    }
});
