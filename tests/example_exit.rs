//! A broken key configuration stops the example with status 1 and the error lines: no panic, no
//! backtrace, no key.

#[path = "support/process.rs"]
mod process;

#[test]
fn a_configuration_error_exits_1_with_the_errors_only() {
    let short = "short-secret";
    let (status, output) = process::run_to_exit(&[
        ("API_KEY_ORDERS", short),
        ("API_KEY_lower", "lower-case-name-0123456789abcdef"),
        ("RUST_BACKTRACE", "1"),
    ]);
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains(
            "API key configuration error error=environment variable `API_KEY_ORDERS`: the key is shorter than 16"
        ),
        "{output}"
    );
    assert!(
        output.contains("environment variable `API_KEY_lower`"),
        "{output}"
    );
    assert!(
        output.contains("API key configuration rejected"),
        "{output}"
    );
    for noise in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!output.contains(noise), "{noise}:\n{output}");
    }
    assert!(!output.contains(short), "{output}");
}
