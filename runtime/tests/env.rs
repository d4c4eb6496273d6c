//! Loading from the process environment. One test in its own binary: it sets variables that
//! other tests must not see.

use rocket_api_key_runtime::{keygen::KeyDigest, ApiKeyStore};

#[test]
fn keys_from_environment_and_keys_file() {
    let dir = std::env::temp_dir().join(format!("rak-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(
        &file,
        "# rotated weekly\nbatch = batch-key-0123456789abcdef;scopes=read:orders\n",
    )
    .unwrap();

    std::env::set_var("API_KEY", "default-key-0123456789abcdef");
    let orders = KeyDigest::of(b"orders-key-0123456789abcdef").to_entry();
    std::env::set_var(
        "API_KEY_ORDERS",
        format!("{orders};scopes=read:orders,write:orders"),
    );
    std::env::set_var("API_KEYS_FILE", &file);

    let keys = ApiKeyStore::builder().build().unwrap();
    assert_eq!(keys.names(), ["batch", "default", "orders"]);
    assert_eq!(keys.config().keys_file.as_deref(), Some(file.as_path()));
    assert_eq!(
        keys.verify("default-key-0123456789abcdef", None)
            .unwrap()
            .scopes(),
        Vec::<&str>::new()
    );
    let key = keys.verify("orders-key-0123456789abcdef", None).unwrap();
    assert_eq!(key.name(), "orders");
    assert_eq!(key.scopes(), ["read:orders", "write:orders"]);
    assert_eq!(
        keys.verify("batch-key-0123456789abcdef", None)
            .unwrap()
            .name(),
        "batch"
    );

    // `from_env(false)` reads neither the variables nor API_KEYS_FILE.
    assert!(ApiKeyStore::builder()
        .from_env(false)
        .build()
        .unwrap()
        .is_empty());

    // Another prefix for another service on the same host.
    std::env::set_var("BILLING_KEY_NIGHTLY", "nightly-key-0123456789abcdef");
    let billing = ApiKeyStore::builder()
        .env_prefix("BILLING_KEY_")
        .build()
        .unwrap();
    assert_eq!(billing.names(), ["batch", "nightly"]);

    // A bad variable is named; its value is not repeated; nothing loads.
    std::env::set_var("API_KEY_BROKEN", "tiny-secret");
    let error = ApiKeyStore::builder().build().unwrap_err().to_string();
    assert_eq!(
        error,
        "environment variable `API_KEY_BROKEN`: the key is shorter than 16 characters; generate a random key of at least 32 bytes"
    );
    std::env::remove_var("API_KEY_BROKEN");

    // So is a digest under a misspelt tag, never taken for the key it spells.
    let hex = &KeyDigest::of(b"admin-key-0123456789abcdef").to_entry()["sha256:".len()..];
    std::env::set_var("API_KEY_ADMIN", format!("SHA2={hex};scopes=admin"));
    let error = ApiKeyStore::builder().build().unwrap_err().to_string();
    assert!(
        error.starts_with("environment variable `API_KEY_ADMIN`: the key looks like a digest"),
        "{error}"
    );
    assert!(!error.contains(&hex[..8]), "{error}");
    std::env::remove_var("API_KEY_ADMIN");

    // The same name twice across sources is refused.
    std::env::set_var("API_KEY_BATCH", "other-batch-key-0123456789");
    let error = ApiKeyStore::builder().build().unwrap_err().to_string();
    assert!(
        error.contains("this name is already used by environment variable `API_KEY_BATCH`"),
        "{error}"
    );
    std::env::remove_var("API_KEY_BATCH");

    // An unreadable keys file stops loading rather than silently serving fewer keys.
    std::env::set_var("API_KEYS_FILE", dir.join("missing"));
    let error = ApiKeyStore::builder().build().unwrap_err().to_string();
    assert!(error.starts_with("cannot read keys file "), "{error}");

    std::fs::remove_dir_all(dir).unwrap();
}
