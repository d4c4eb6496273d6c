//! The `apikey` command, run as a user would, its output parsed and fed back to the runtime.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use rocket_api_key_runtime::{keygen::checksum, keygen::Checksum, keygen::KeyDigest, ApiKeyStore};
use serde_json::Value;

fn apikey(args: &[&str], stdin: Option<&str>) -> Output {
    apikey_into(args, stdin, Stdio::piped())
}

/// `apikey` with its standard output where the test says: a closed pipe, /dev/full.
fn apikey_into(args: &[&str], stdin: Option<&str>, stdout: impl Into<Stdio>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apikey"))
        .args(args)
        .env_remove("API_KEYS_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The value of an `API_KEY_<NAME>=<entry>` line, loaded as the server would.
fn load_line(line: &str) -> ApiKeyStore {
    let (var, entry) = line.split_once('=').unwrap();
    let name = var.strip_prefix("API_KEY_").unwrap().to_ascii_lowercase();
    ApiKeyStore::builder()
        .from_env(false)
        .key(name, entry)
        .build()
        .unwrap()
}

#[test]
fn new_json_round_trips_through_the_runtime() {
    let out = apikey(
        &[
            "new",
            "--name",
            "orders",
            "--scope",
            "read:orders",
            "--scope",
            "write:orders",
            "--expires",
            "90d",
            "--json",
        ],
        None,
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let key = v["key"].as_str().unwrap();
    assert!(key.starts_with("rak_") && key.len() == 53, "{key}");
    assert_eq!(checksum(key), Checksum::Valid);
    assert_eq!(v["name"], "orders");
    assert_eq!(
        v["scopes"],
        serde_json::json!(["read:orders", "write:orders"])
    );
    let config = v["config"].as_str().unwrap();
    let digest = KeyDigest::of(key.as_bytes());
    assert!(config.starts_with(&format!(
        "API_KEY_ORDERS={};scopes=read:orders,write:orders;expires=",
        digest.to_entry()
    )));
    assert!(
        !config.contains(key),
        "the configuration line holds only the hash"
    );
    assert_eq!(v["fingerprint"], digest.fingerprint().to_string());

    let keys = load_line(config);
    let verified = keys.verify(key, None).unwrap();
    assert_eq!(verified.scopes(), ["read:orders", "write:orders"]);
    let expires = verified.expires().unwrap();
    let days = (expires - time::OffsetDateTime::now_utc()).whole_days();
    assert!((89..=90).contains(&days), "{days}");
}

#[test]
fn new_with_an_allowlist_and_a_rate_loads_with_both() {
    let out = apikey(
        &[
            "new",
            "--name",
            "edge",
            "--ip",
            "10.0.0.0/8",
            "--ip",
            "2001:db8::/32",
            "--rate",
            "5/m",
            "--json",
        ],
        None,
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ips"], serde_json::json!(["10.0.0.0/8", "2001:db8::/32"]));
    assert_eq!(v["rate"], "5/m");
    let config = v["config"].as_str().unwrap();
    assert!(
        config.ends_with(";ips=10.0.0.0/8,2001:db8::/32;rate=5/m"),
        "{config}"
    );
    let keys = load_line(config);
    let key = v["key"].as_str().unwrap();
    assert!(keys.verify(key, Some([10, 1, 2, 3].into())).is_ok());
    assert!(keys.verify(key, Some([192, 0, 2, 1].into())).is_err());
}

#[test]
fn new_text_output_and_prefix() {
    let text = stdout(&apikey(&["new", "--name", "ci", "--prefix", "acme"], None));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let key = lines.iter().find(|l| l.starts_with("acme_")).unwrap();
    let line = lines
        .iter()
        .find(|l| l.starts_with("API_KEY_CI=sha256:"))
        .unwrap();
    assert!(lines[0].starts_with("New API key `ci` (scopes: none; expires: never; fingerprint: "));
    assert_eq!(load_line(line).verify(key, None).unwrap().name(), "ci");
}

#[test]
fn keys_are_unique_across_runs() {
    let a = stdout(&apikey(&["new", "--name", "a", "--json"], None));
    let b = stdout(&apikey(&["new", "--name", "a", "--json"], None));
    let key = |s: &str| {
        serde_json::from_str::<Value>(s).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(key(&a), key(&b));
}

#[test]
fn hash_reads_the_key_from_stdin() {
    let out = stdout(&apikey(&["hash"], Some("my-existing-key-0123456789\n")));
    assert_eq!(
        out.trim(),
        KeyDigest::of(b"my-existing-key-0123456789").to_entry()
    );
    let out = stdout(&apikey(
        &["hash", "--name", "legacy"],
        Some("my-existing-key-0123456789"),
    ));
    assert_eq!(
        load_line(out.trim())
            .verify("my-existing-key-0123456789", None)
            .unwrap()
            .name(),
        "legacy"
    );
}

#[test]
fn usage_errors_exit_2_without_echoing_keys() {
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["new"],
            None,
            "required arguments were not provided:\n  --name <NAME>",
        ),
        (
            &["new", "--name", "x", "--scope", "read orders"],
            None,
            "invalid scope `read orders`",
        ),
        (
            &["new", "--name", "x", "--scope", "a", "--scope", "a"],
            None,
            "scope `a` is given twice",
        ),
        (
            &["new", "--name", "x", "--expires", "soon"],
            None,
            "is not a duration",
        ),
        (
            &["new", "--name", "x", "--expires", "2000-01-01T00:00:00Z"],
            None,
            "is not in the future",
        ),
        (
            &["new", "--name", "x", "--prefix", "Bad_"],
            None,
            "invalid `--prefix`",
        ),
        (
            &["new", "--name", "x", "--prefix", "sha256x"],
            None,
            "not with `sha256` (a key that does reads as a misspelt digest)",
        ),
        (&["new", "--name", "bad-name"], None, "invalid name"),
        (&["rotated"], None, "unrecognized subcommand 'rotated'"),
        (&["db"], None, "Usage: apikey db <COMMAND>"),
        (&["db", "drop"], None, "unrecognized subcommand 'drop'"),
        (
            &["revoke"],
            None,
            "required arguments were not provided:\n  --name <NAME>",
        ),
        (
            &["rotate", "--name", "x"],
            None,
            "required arguments were not provided:\n  --grace <DURATION>",
        ),
        (
            &["rotate", "--name", "x", "--grace", "soon"],
            None,
            "invalid `--grace`",
        ),
        (
            &["list", "--scope", "x"],
            None,
            "unexpected argument '--scope' found",
        ),
        (
            &["hash", "--database-url", "x"],
            None,
            "unexpected argument '--database-url' found",
        ),
        (
            &["new", "--name", "x", "--database-ca", "ca.pem"],
            None,
            "required arguments were not provided:\n  <--database|--database-url <URL>>",
        ),
        (
            &[
                "new",
                "--name",
                "x",
                "--database",
                "--env-prefix",
                "ORDERS_KEY_",
            ],
            None,
            "the argument '--env-prefix <ENV_PREFIX>' cannot be used with:\n  --database",
        ),
        (&["new", "--name", "x", "--database"], None, "no key table"),
        (
            &["new", "--name", "x", "--ip", "10.0.0.1,0.0.0.0/0"],
            None,
            "give one value per `--ip`",
        ),
        (
            &["new", "--name", "x", "--ip", "10.0.0.300"],
            None,
            "invalid key options",
        ),
        (
            &["new", "--name", "x", "--rate", "lots"],
            None,
            "invalid key options",
        ),
        (
            &["hash", "secret-on-the-command-line"],
            None,
            "not from the command line",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = apikey(args, *stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("secret-on-the-command-line") && !stderr.contains("short-secret"),
            "{stderr}"
        );
    }
    assert!(stdout(&apikey(&["--help"], None)).contains("Usage:"));
}

const EXISTING: &str = "my-existing-key-0123456789";

#[test]
fn hash_keeps_the_fields_of_an_entry() {
    let entry = format!(
        "{EXISTING};scopes=admin,read:orders;expires=2999-01-01T00:00:00Z;ips=10.0.0.0/8, 2001:db8::/32;rate=10/s\n"
    );
    let out = stdout(&apikey(&["hash"], Some(&entry)));
    assert_eq!(
        out,
        format!(
            "{};scopes=admin,read:orders;expires=2999-01-01T00:00:00Z;ips=10.0.0.0/8,2001:db8::/32;rate=10/s\n",
            KeyDigest::of(EXISTING.as_bytes()).to_entry()
        )
    );

    let out = stdout(&apikey(
        &["hash", "--name", "legacy"],
        Some(&format!("{EXISTING};scopes=admin;ips=10.0.0.0/8")),
    ));
    assert!(!out.contains(EXISTING));
    let keys = load_line(out.trim());
    let key = keys.verify(EXISTING, Some([10, 1, 2, 3].into())).unwrap();
    assert_eq!((key.name(), key.scopes()), ("legacy", vec!["admin"]));
    assert!(keys.verify(EXISTING, Some([192, 0, 2, 1].into())).is_err());
}

#[test]
fn hash_refuses_input_that_does_not_parse_as_a_data_error() {
    let digest = &KeyDigest::of(EXISTING.as_bytes()).to_entry()[7..];
    let cases = [
        (
            "short-secret".to_owned(),
            "not a usable key or entry: the key is shorter",
        ),
        ("sha256:abc".to_owned(), "already a `sha256:` entry"),
        (format!("SHA256={digest}"), "already a `sha256:` entry"),
        (format!("SHA256-{digest}"), "the key looks like a digest"),
        (format!("sha-256:{digest}"), "the key looks like a digest"),
        (
            format!("{EXISTING};scopes=read orders"),
            "invalid scope \"read orders\"",
        ),
        (
            format!("{EXISTING};ips=nowhere"),
            "invalid address \"nowhere\"",
        ),
        (
            format!("{EXISTING};{EXISTING}"),
            "field 1 after the key is not of the form",
        ),
        (
            format!("{EXISTING}\nsecond-line-0123456789"),
            "a space, a control",
        ),
    ];
    for (input, expected) in &cases {
        let out = apikey(&["hash"], Some(input));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{input}: {stderr}");
        assert!(stderr.contains(expected), "{input}: {stderr}");
        assert!(!stderr.contains("--help"), "not a usage error: {stderr}");
        assert!(out.stdout.is_empty());
        for secret in [EXISTING, "short-secret", &digest[..16]] {
            assert!(!stderr.contains(secret), "{stderr}");
        }
    }
}

/// A pipe whose reading end is already closed.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// What a failed `apikey` said: exit code 1, a message, no panic and no key.
fn failed(out: &Output, expected: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("rak_") && !stderr.contains(EXISTING),
        "a key on stderr: {stderr}"
    );
    stderr
}

#[test]
fn a_closed_output_pipe_is_a_failure_not_a_panic() {
    let closed = "cannot write to standard output: it was closed before the output was written";
    let out = apikey_into(&["hash"], Some(EXISTING), closed_pipe());
    failed(&out, closed);
    let out = apikey_into(&["--help"], None, closed_pipe());
    failed(&out, closed);
    for args in [
        &["new", "--name", "x"][..],
        &["new", "--name", "x", "--json"],
    ] {
        let out = apikey_into(args, None, closed_pipe());
        let stderr = failed(&out, "the key was not shown (");
        assert!(
            stderr.contains(closed) && stderr.contains("run `apikey new` again"),
            "{stderr}"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_output_is_a_failure() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let no_space = "cannot write to standard output: No space left on device";
    failed(&apikey_into(&["hash"], Some(EXISTING), full()), no_space);
    failed(&apikey_into(&["--help"], None, full()), no_space);
    for args in [
        &["new", "--name", "x"][..],
        &["new", "--name", "x", "--json"],
    ] {
        let stderr = failed(&apikey_into(args, None, full()), "the key was not shown (");
        assert!(stderr.contains(no_space), "{stderr}");
    }
}

#[cfg(unix)]
#[test]
fn new_will_not_print_a_key_where_no_one_sees_it() {
    let nowhere = "standard output is closed or /dev/null, where the key would be lost";
    failed(
        &apikey_into(&["new", "--name", "x"], None, Stdio::null()),
        nowhere,
    );
    // Closed outright, by a shell.
    let out = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" new --name x >&-",
            env!("CARGO_BIN_EXE_apikey"),
        ])
        .output()
        .unwrap();
    failed(&out, nowhere);
    // `hash` loses nothing there: the key is still the operator's.
    let out = apikey_into(&["hash"], Some(EXISTING), Stdio::null());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn env_prefixes_follow_the_servers_rule() {
    // A prefix the server would refuse to start with is refused here, as a usage error.
    for prefix in ["API_", "API_KEYS_", "api_key_", "API-KEY_", "API_KEY"] {
        let out = apikey(&["new", "--name", "orders", "--env-prefix", prefix], None);
        assert_eq!(out.status.code(), Some(2), "{prefix}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid `--env-prefix`"), "{prefix}: {err}");
        assert!(out.stdout.is_empty(), "{prefix}: no key was made");
    }
    let out = apikey(
        &["new", "--name", "orders", "--env-prefix", "ORDERS_KEY_"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("ORDERS_KEY_ORDERS=sha256:"));
}

/// What `apikey` printed for `args`: its exit code, standard output and standard error.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = apikey(args, None);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_mistyped_command_gets_a_suggestion() {
    for (typed, meant) in [("nwe", "new"), ("hsah", "hash"), ("rotaet", "rotate")] {
        let (code, out, err) = run(&[typed]);
        assert_eq!(code, Some(2), "{typed}: {err}");
        assert!(out.is_empty(), "{typed}: {out}");
        assert!(
            err.contains(&format!("a similar subcommand exists: '{meant}'")),
            "{typed}: {err}"
        );
    }
    // Under `db`, only `db`'s commands are suggested.
    let (code, _, err) = run(&["db", "nwe"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains("similar"), "{err}");
}

#[test]
fn each_command_has_its_own_help() {
    // `apikey` alone shows the help and succeeds, as `apikey --help` does.
    for args in [&[][..], &["--help"], &["help"]] {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        for command in [
            "new",
            "hash",
            "db",
            "list",
            "revoke",
            "rotate",
            "EXIT STATUS:",
        ] {
            assert!(out.contains(command), "{args:?}: {command}: {out}");
        }
    }
    // A command's help lists its own options, and none of the others'.
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (
            &["rotate", "--help"],
            &[
                "Usage: apikey rotate",
                "--name <NAME>",
                "--grace <DURATION>",
                "--json",
            ],
            &["--scope", "--env-prefix", "--grants"],
        ),
        (
            &["new", "--help"],
            &[
                "Usage: apikey new",
                "--scope <SCOPE>",
                "--database-url <URL>",
            ],
            &["--grace", "--grants"],
        ),
        (
            &["db", "init", "--help"],
            &["Usage: apikey db init", "--grants <INSTANCE>,<ADMIN>"],
            &["--name", "--json"],
        ),
        (
            &["hash", "-h"],
            &["Usage: apikey hash", "--name <NAME>"],
            &["--database-url", "<KEY>", "[KEY]"],
        ),
    ];
    for (args, present, absent) in cases {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        for text in *present {
            assert!(out.contains(text), "{args:?}: {text}: {out}");
        }
        for text in *absent {
            assert!(!out.contains(text), "{args:?}: {text}: {out}");
        }
    }
}

#[test]
fn a_database_url_is_never_echoed() {
    let secret = "hunter2-in-the-url";
    let url = format!("postgres://keys:{secret}@127.0.0.1:1/keys");
    let assigned = format!("--database-url={url}");
    let cases: &[&[&str]] = &[
        // Refused by the command line.
        &["hash", "--database-url", &url],
        &["hash", &assigned],
        &["list", &assigned, &assigned],
        &["list", "--databse-url", &url],
        &["list", &assigned, "extra"],
        &[
            "new",
            "--name",
            "x",
            &assigned,
            "--env-prefix",
            "ORDERS_KEY_",
        ],
        &["rotate", "--name", "x", &assigned],
        // Refused by the database's driver, or no server there.
        &["list", "--database-url", &url],
        &[
            "list",
            "--database-url",
            &format!("postgres://keys:{secret}@[::1/keys"),
        ],
        &[
            "list",
            "--database-url",
            &format!("host=127.0.0.1 password={secret} sslmode=no"),
        ],
        &["list", "--database-url", secret],
    ];
    for args in cases {
        let (code, out, err) = run(args);
        assert!(matches!(code, Some(1 | 2)), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(
            !err.contains(secret) && !out.contains(secret),
            "{args:?}: {err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_value_that_is_not_utf8_is_a_usage_error_that_does_not_show_it() {
    use std::os::unix::ffi::OsStrExt;

    let value = std::ffi::OsStr::from_bytes(b"postgres://keys:hunter2\xff@127.0.0.1:1/keys");
    for args in [["list", "--database-url"], ["new", "--name"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_apikey"))
            .args(args)
            .arg(value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("not valid UTF-8") && !err.contains("hunter2"),
            "{err}"
        );
    }
}

#[test]
fn completions_are_printed_for_a_shell() {
    let (code, out, err) = run(&["completions", "bash"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("apikey") && out.contains("--grace"), "{out}");
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, Some(2), "{err}");
}
