//! A variable prefix that covers `API_KEYS_FILE` or `API_KEY`. One test in its own binary: it
//! sets variables that other tests must not see.

use rocket::figment::Figment;
use rocket_api_key_runtime::ApiKeyStore;

#[test]
fn a_prefix_covering_the_keys_file_variable_is_a_configuration_error() {
    let dir = std::env::temp_dir().join(format!("rak-env-prefix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The path is long enough to pass for a key, were it read as one.
    let file = dir.join("keys-file-of-the-service");
    std::fs::write(&file, "batch=batch-key-0123456789abcdef\n").unwrap();
    std::env::set_var("API_KEYS_FILE", &file);
    std::env::set_var("API_KEY", "default-key-0123456789abcdef");

    for prefix in ["API_", "API_KEYS_", "API_KEYS_FILE_"] {
        let error = ApiKeyStore::builder()
            .env_prefix(prefix)
            .build()
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "`api_keys.env_prefix` = \"{prefix}\" would read `API_KEYS_FILE`, which holds the \
                 keys file's path, as another key; choose a prefix that none of `API_KEYS_FILE`, \
                 `API_KEYS_DATABASE_URL` and `API_KEY` starts with, such as \"API_KEY_\" (the \
                 default) or \"ORDERS_KEY_\""
            )
        );
        // The same when the prefix comes from Rocket's configuration.
        let figment =
            Figment::from(rocket::Config::figment()).merge(("api_keys.env_prefix", prefix));
        let error = ApiKeyStore::builder()
            .load(&figment)
            .unwrap_err()
            .to_string();
        assert!(error.contains("would read `API_KEYS_FILE`"), "{error}");
    }
    // The key table's URL is no key either, under a prefix that reaches it by name or as the
    // single-key variable.
    for prefix in ["API_KEYS_DATABASE_", "API_KEYS_DATABASE_URL_"] {
        let error = ApiKeyStore::builder()
            .env_prefix(prefix)
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            error
                .contains("would read `API_KEYS_DATABASE_URL`, which holds the key database's URL"),
            "{error}"
        );
    }

    // The default prefix reads `API_KEY` as `default`, and the path as a path only.
    let keys = ApiKeyStore::builder().build().unwrap();
    assert_eq!(keys.names(), ["batch", "default"]);
    assert!(keys.verify(&file.to_string_lossy(), None).is_err());
    let fairing_keys = ApiKeyStore::builder()
        .load(&rocket::Config::figment())
        .unwrap();
    assert_eq!(fairing_keys.names(), ["batch", "default"]);

    std::fs::remove_dir_all(dir).unwrap();
}
