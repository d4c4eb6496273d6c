use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;

use super::*;

#[test]
fn redis_urls_are_shown_without_credentials() {
    for (url, shown) in [
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        (
            "redis://:s3cret@127.0.0.1:6379/0",
            "redis://:***@127.0.0.1:6379/0",
        ),
        (
            "redis://alice:s3cret@10.0.0.7:6379/2",
            "redis://alice:***@10.0.0.7:6379/2",
        ),
        (
            "rediss://s3cret@cache.internal",
            "rediss://***@cache.internal",
        ),
        // Characters a URL parser would stop at, and an `@` in the password.
        (
            "redis://alice:s3/c?r#e@t@host/1",
            "redis://alice:***@host/1",
        ),
        (
            "redis+unix:///run/redis.sock?db=2&user=alice&pass=s3cret&protocol=resp3",
            "redis+unix:///run/redis.sock?db=2&user=***&pass=***&protocol=resp3",
        ),
        ("not a url :s3cret@", "not a url :***@"),
        ("", ""),
    ] {
        assert_eq!(CredentialUrl::new(url).shown, shown, "{url}");
    }
}

#[test]
fn credentials_are_scrubbed_from_text_that_quotes_them() {
    let url = CredentialUrl::new("redis://alice:p%40ss%2Fword@host:6379");
    assert_eq!(url.shown, "redis://alice:***@host:6379");
    let error = "auth failed for p%40ss%2Fword, sent p@ss/word";
    assert_eq!(url.scrub(error), "auth failed for ***, sent ***");
    let url = CredentialUrl::new("unix:///tmp/r.sock?pass=hunter2");
    assert_eq!(url.scrub("hunter2 hunter22"), "*** ***2");
    // Nothing to hide, nothing changed (an empty password hides nothing).
    assert_eq!(CredentialUrl::new("redis://:@host").scrub("a:b"), "a:b");
}

#[test]
fn connection_strings_hide_their_password_quoted_or_not() {
    let url = CredentialUrl::new("host=db user=keys password=s3cret dbname=orders");
    assert_eq!(url.shown, "host=db user=keys password=*** dbname=orders");
    assert_eq!(url.scrub("auth failed: s3cret"), "auth failed: ***");
    let url = CredentialUrl::new(r"host=db password='it\'s a secret' sslmode=disable");
    assert_eq!(url.shown, "host=db password=*** sslmode=disable");
    assert_eq!(url.scrub("it's a secret"), "***");
    let url = CredentialUrl::new(r"host=db password=ab\ S3cret user=k");
    assert_eq!(url.shown, "host=db password=*** user=k");
    assert_eq!(url.scrub("auth failed: ab S3cret"), "auth failed: ***");
    let url = CredentialUrl::new("password = 'spaced out'");
    assert!(!url.shown.contains("spaced"), "{}", url.shown);
    // Unterminated quoting hides everything after it.
    let url = CredentialUrl::new("host=db password='never closed");
    assert!(!url.shown.contains("never"), "{}", url.shown);
}

/// Text that merely holds `://` is not a URL: a conninfo password `ab://S3cret` was shown
/// whole when any `://` made the string a URL.
#[test]
fn the_format_is_decided_by_the_scheme_only() {
    for (text, secret) in [
        ("host=db password=ab://S3cret", "S3cret"),
        ("password='x://y z' host=db", "y z"),
        ("host=db user=k password=postgres://u:S3cret@h", "S3cret"),
    ] {
        let url = CredentialUrl::new(text);
        assert!(!url.shown.contains(secret), "{text}: {}", url.shown);
        let config = Config {
            keys_database_url: Some(text.into()),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains(secret), "{config:?}");
    }
    for url in [
        "postgresql://u:S3cret@h/db",
        "rediss://u:S3cret@h",
        "redis+unix://:S3cret@/s",
        // Neither a scheme nor a parameter first: read as a URL, hiding what precedes `@`.
        " postgres://u:S3cret@h/db?sslmode=require",
        "u:S3cret@h/db?sslmode=require",
        "post gres://u:S3cret@h/db?x=y",
    ] {
        assert!(!CredentialUrl::new(url).shown.contains("S3cret"), "{url}");
    }
}

#[test]
fn config_debug_hides_the_key_database_password() {
    let config = Config {
        keys_database_url: Some(
            "postgres://keys:pg%2Fs3cret@db.internal/orders?password=x1y2z3".into(),
        ),
        ..Config::default()
    };
    let debug = format!("{config:?}");
    for secret in ["pg%2Fs3cret", "pg/s3cret", "x1y2z3"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(
        debug.contains(
            r#"keys_database_url: Some("postgres://keys:***@db.internal/orders?password=***")"#
        ),
        "{debug}"
    );
}

#[test]
fn config_debug_hides_the_redis_password() {
    let config = Config {
        redis_url: Some("redis://alice:s3cret@10.0.0.7:6379".into()),
        ..Config::default()
    };
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(
        debug.contains(r#"redis_url: Some("redis://alice:***@10.0.0.7:6379")"#),
        "{debug}"
    );
    assert!(debug.contains(r#"header: "x-api-key""#), "{debug}");
    // The value itself is untouched, for what reads it.
    assert_eq!(
        config.clone().redis_url.as_deref(),
        Some("redis://alice:s3cret@10.0.0.7:6379")
    );
}

/// The TOML block of `Config`'s documentation, as written there.
fn documented_block() -> String {
    let source = include_str!("mod.rs");
    let start = source.find("/// ```toml\n").expect("the block") + "/// ```toml\n".len();
    let end = start + source[start..].find("/// ```\n").expect("its end");
    source[start..end]
        .lines()
        .map(|line| line.trim_start().trim_start_matches("///").trim_start())
        .map(|line| format!("{line}\n"))
        .collect()
}

fn extract(toml: &str) -> Config {
    Figment::from(Toml::string(toml).nested())
        .select("default")
        .focus("api_keys")
        .extract()
        .unwrap_or_else(|e| panic!("the documented block does not parse: {e}\n{toml}"))
}

#[test]
fn the_documented_block_shows_the_defaults() {
    let block = documented_block();
    assert!(block.contains("keys_file_max_size = 67108864"), "{block}");
    assert_eq!(extract(&block), Config::default());
    // The commented settings are real fields too.
    let uncommented: String = block
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(extract(&uncommented).keys_file.is_some());
}

/// Each rule's message, word for word as operators have seen it, and every broken rule
/// reported at once.
/// What `validate` says about `config`, one message per bad setting.
fn messages_of(config: &Config) -> Vec<String> {
    config
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn every_bad_setting_is_reported_with_its_message() {
    let config = Config {
        header: "bad header".into(),
        env_prefix: "api".into(),
        keys_file_max_size: 0,
        reload_interval: Duration::from_millis(500),
        failure_limit: Some("30/m".parse().unwrap()),
        failure_table_size: 0,
        rate_limit_backend: LimitBackend::Redis,
        max_key_len: 8193,
        ..Config::default()
    };
    let mut expected = vec![
        "`api_keys.header` = \"bad header\" is not an HTTP header name",
        "`api_keys.env_prefix` = \"api\" must be upper-case letters, digits and `_`, ending in `_`",
        "`api_keys.keys_file_max_size` must be at least 1 byte",
        "`api_keys.reload_interval` must be at least 1s, or 0 to turn polling off",
        "`api_keys.failure_limit` needs `api_keys.failure_limit_address`: \"peer\" when clients connect directly, \"proxy\" behind the proxies in `trusted_proxies`",
        "`api_keys.failure_table_size` must be between 1 and 16777216",
        "`api_keys.rate_limit_backend = \"redis\"` needs the `redis` feature of rocket-api-key",
        "`api_keys.rate_limit_backend = \"redis\"` needs `api_keys.redis_url`",
        "`api_keys.rate_limit_backend = \"redis\"` needs an explicit `api_keys.redis_unavailable`: \"allow\" or \"deny\"",
        "`api_keys.max_key_len` = 8193 must be between 16 and 8192",
    ];
    if cfg!(feature = "redis") {
        expected.retain(|m| !m.ends_with("feature of rocket-api-key"));
    }
    let messages = messages_of(&config);
    assert_eq!(messages, expected);

    let config = Config {
        header: "Authorization".into(),
        failure_limit: Some("30/m".parse().unwrap()),
        failure_limit_address: Some(ClientAddress::Proxy),
        ..Config::default()
    };
    let messages = messages_of(&config);
    assert_eq!(
        messages,
        [
            "`api_keys.header` cannot be `Authorization`; set `api_keys.accept_bearer = true` to accept `Authorization: Bearer <key>`",
            "`api_keys.failure_limit_address = \"proxy\"` needs the proxies' addresses in `api_keys.trusted_proxies`",
        ]
    );
    assert_eq!(Config::default().validate(), Ok(()));
}

#[test]
fn a_prefix_that_covers_the_keys_file_variable_is_refused() {
    for prefix in ["API_", "API_KEYS_", "API_KEYS_FILE_"] {
        let config = Config {
            env_prefix: prefix.into(),
            ..Config::default()
        };
        let errors = config.validate().unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let message = errors[0].to_string();
        assert!(
            message.starts_with(&format!(
                "`api_keys.env_prefix` = \"{prefix}\" would read `API_KEYS_FILE`, which holds the keys file's path, as another key;"
            )),
            "{message}"
        );
        assert!(message.contains("such as \"API_KEY_\""), "{message}");
    }
    for prefix in ["API_KEY_", "BILLING_KEY_", "APIKEY_", "API_KEYSET_"] {
        let config = Config {
            env_prefix: prefix.into(),
            ..Config::default()
        };
        assert_eq!(config.validate(), Ok(()), "{prefix}");
    }
}
