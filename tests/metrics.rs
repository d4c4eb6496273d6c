//! The `metrics` feature, through the orders example's `/metrics` over real HTTP: its counts are
//! the usage figures, its labels hold no key material, reloads move its gauge and counter, and
//! `metrics_key_label` bounds the `key` label.
//!
//! A process has one global metrics recorder, so this binary runs one server, which its tests
//! share one at a time: both the scrape and `/admin/usage` count everything that server ever
//! decided, so they can be compared whole. A test of another `metrics_key_label` runs the
//! example in a process of its own, configured as an operator would.

#[path = "../examples/orders/app.rs"]
#[allow(dead_code)]
mod app;

mod support;
#[path = "support/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rocket_api_key::config::{ClientAddress, RateSpec};
use rocket_api_key::ApiKeyStore;
use serde_json::Value;
use support::{agent, get, Server};

const READER: &str = "reader-0123456789abcdef0123456789abcdef";
const ADMIN: &str = "admin-0123456789abcdef0123456789abcdef";
const LIMITED: &str = "limited-0123456789abcdef0123456789abcdef";
const EXTRA: &str = "extra-0123456789abcdef0123456789abcdef";
/// Well formed, configured nowhere.
const UNKNOWN: &str = "nobody-0123456789abcdef0123456789abcdef";
const SECRETS: [&str; 5] = [READER, ADMIN, LIMITED, EXTRA, UNKNOWN];

const KEYS_FILE: &str = "\
reader=reader-0123456789abcdef0123456789abcdef;scopes=read:orders
admin=admin-0123456789abcdef0123456789abcdef;scopes=admin
limited=limited-0123456789abcdef0123456789abcdef;scopes=read:orders;rate=2/m
";

struct Fixture {
    server: Server,
    dir: PathBuf,
    agent: ureq::Agent,
}

impl Fixture {
    fn keys_file(&self) -> PathBuf {
        self.dir.join("keys")
    }

    fn get(&self, path: &str, key: Option<&str>) -> u16 {
        get(&self.agent, &format!("{}{path}", self.server.base), key).0
    }

    /// An admin route's body, which must answer 200.
    fn admin_get(&self, path: &str) -> String {
        let (status, body) = get(
            &self.agent,
            &format!("{}{path}", self.server.base),
            Some(ADMIN),
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `/metrics`, as text.
    fn scrape(&self) -> String {
        self.admin_get("/metrics")
    }

    fn usage(&self) -> Value {
        serde_json::from_str(&self.admin_get("/admin/usage")).unwrap()
    }
}

/// The server, for one test at a time. No reload runs on its own: no polling, no SIGHUP.
fn fixture() -> MutexGuard<'static, Fixture> {
    static FIXTURE: LazyLock<Mutex<Fixture>> = LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!("rak-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keys"), KEYS_FILE).unwrap();
        let keys = ApiKeyStore::builder()
            .from_env(false)
            .keys_file(dir.join("keys"))
            .reload_interval(Duration::ZERO)
            .reload_on_sighup(false)
            // Never reached by the tests, and slow to forget a failure, so the table holds one.
            .failure_limit("100/h".parse::<RateSpec>().unwrap(), ClientAddress::Peer);
        Mutex::new(Fixture {
            server: Server::start(app::rocket(keys)),
            dir,
            agent: agent(),
        })
    });
    FIXTURE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The series of `metric` in a scrape: its labels (name to value) and its value.
fn series(scrape: &str, metric: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    scrape
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once("=\"").expect("name=\"value\"");
                    (name.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            Some((labels, value.trim().parse().expect("a number")))
        })
        .collect()
}

/// One value: the series of `metric` whose labels include `labels` (0 when there is none).
fn value(scrape: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    series(scrape, metric)
        .into_iter()
        .filter(|(have, _)| {
            labels
                .iter()
                .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

/// `api_key_requests_total` by (key, outcome).
fn requests(scrape: &str) -> BTreeMap<(String, String), u64> {
    series(scrape, "api_key_requests_total")
        .into_iter()
        .map(|(labels, n)| ((labels["key"].clone(), labels["outcome"].clone()), n as u64))
        .collect()
}

/// `/admin/usage` in the same shape, without zeros (a series appears at its first request).
fn usage_counts(usage: &Value) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    let mut add = |key: &str, outcome: &str, n: &Value| {
        let n = n.as_u64().unwrap();
        if n > 0 {
            counts.insert((key.to_owned(), outcome.to_owned()), n);
        }
    };
    for key in usage["keys"].as_array().unwrap() {
        let name = key["name"].as_str().unwrap();
        add(name, "accepted", &key["accepted"]);
        for (reason, n) in key["rejected"].as_object().unwrap() {
            add(name, reason, n);
        }
    }
    for (reason, n) in usage["unattributed"].as_object().unwrap() {
        add("(none)", reason, n);
    }
    counts
}

#[test]
fn the_scrape_counts_what_the_usage_figures_count() {
    let f = fixture();
    let reads = [
        ("/orders", Some(READER), 200),
        ("/orders", Some(READER), 200),
        ("/secure-data", Some(LIMITED), 200),
        ("/orders", None, 401),
        ("/orders", Some(UNKNOWN), 401),
        ("/orders", Some(UNKNOWN), 401),
        ("/orders", Some("not a key"), 401),
        ("/admin/usage", Some(READER), 403),
        ("/orders", Some(LIMITED), 200),
        ("/orders", Some(LIMITED), 429),
        ("/metrics", Some(READER), 403),
    ];
    for (path, key, status) in reads {
        assert_eq!(f.get(path, key), status, "{path} with {key:?}");
    }

    let usage = f.usage();
    let scraped = requests(&f.scrape());
    let mut expected = usage_counts(&usage);
    // The scrape came after the usage figures were read, and counted itself.
    *expected
        .get_mut(&("admin".to_owned(), "accepted".to_owned()))
        .unwrap() += 1;
    assert_eq!(scraped, expected);
    // What the sequence above contributed, at least (other tests may have run first).
    for (key, outcome, n) in [
        ("reader", "accepted", 2),
        ("reader", "scope", 2),
        ("limited", "accepted", 2),
        ("limited", "rate_limited", 1),
        ("(none)", "missing", 1),
        ("(none)", "unknown", 2),
        ("(none)", "malformed", 1),
    ] {
        let have = scraped[&(key.to_owned(), outcome.to_owned())];
        assert!(have >= n, "{key} {outcome}: {have} < {n}");
    }

    // The failure table remembers this client, once its gauge has been counted again.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let entries = value(&f.scrape(), "api_key_failure_table_entries", &[]);
        if entries == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "failure table entries: {entries}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn no_label_value_is_a_key_or_a_digest() {
    let f = fixture();
    // Not `LIMITED`: its `rate=` is for the first test.
    for key in [Some(READER), Some(UNKNOWN), Some(ADMIN), None] {
        f.get("/orders", key);
    }
    let scrape = f.scrape();
    for secret in SECRETS {
        assert!(!scrape.contains(secret), "a key in the scrape:\n{scrape}");
    }
    let names = f.server.keys.names();
    let mut seen = 0;
    for metric in [
        "api_key_requests_total",
        "api_key_keys",
        "api_key_reloads_total",
        "api_key_failure_table_entries",
    ] {
        for (labels, _) in series(&scrape, metric) {
            for (label, value) in &labels {
                seen += 1;
                let hex = value.len() >= 8 && value.bytes().all(|b| b.is_ascii_hexdigit());
                assert!(!hex, "{metric}: {label}={value:?} looks like a digest");
                match label.as_str() {
                    "key" => assert!(
                        value == "(none)" || names.contains(value),
                        "{metric}: key={value:?} is no configured name"
                    ),
                    "outcome" => assert!(
                        value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                        "{metric}: outcome={value:?}"
                    ),
                    other => panic!("{metric}: unexpected label {other}"),
                }
            }
        }
    }
    assert!(seen > 0, "no labels in the scrape:\n{scrape}");
}

#[test]
fn a_reload_moves_the_keys_gauge_and_is_counted() {
    let f = fixture();
    let before = f.scrape();
    assert_eq!(value(&before, "api_key_keys", &[]), 3.0, "{before}");
    assert_eq!(f.server.keys.len(), 3);
    let ok = value(&before, "api_key_reloads_total", &[("outcome", "ok")]);
    let failed = value(&before, "api_key_reloads_total", &[("outcome", "error")]);

    std::fs::write(f.keys_file(), format!("{KEYS_FILE}extra={EXTRA}\n")).unwrap();
    f.server.keys.reload().unwrap();
    let after = f.scrape();
    assert_eq!(value(&after, "api_key_keys", &[]), 4.0, "{after}");
    assert_eq!(
        value(&after, "api_key_reloads_total", &[("outcome", "ok")]),
        ok + 1.0
    );
    assert_eq!(f.get("/orders", Some(EXTRA)), 403);

    // A broken file keeps the keys, and counts a failed reload.
    std::fs::write(f.keys_file(), "broken=short\n").unwrap();
    f.server.keys.reload().unwrap_err();
    let broken = f.scrape();
    assert_eq!(value(&broken, "api_key_keys", &[]), 4.0);
    assert_eq!(
        value(&broken, "api_key_reloads_total", &[("outcome", "error")]),
        failed + 1.0
    );
    // `extra` stays: the usage figures list configured keys only, and its series stays in the
    // scrape, which the first test compares with them.
}

/// A keys file for a process of the example: `admin`, `reader`, `reader_r7` (the name
/// `apikey rotate` gives the key it retires) and enough keys of no one to make `total`.
fn many_keys(dir: &process::TempDir, total: usize) -> String {
    let mut text = format!("admin={ADMIN};scopes=admin\nreader={READER};scopes=read:orders\n");
    text.push_str(&format!("reader_r7={EXTRA};scopes=read:orders\n"));
    for i in 3..total {
        text.push_str(&format!("filler_{i}=sha256:{i:064x}\n"));
    }
    let path = dir.0.join("keys");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path.to_str().unwrap().to_owned()
}

/// The same requests against a process of the example: two of `reader`, one of `reader_r7`,
/// one refused for its scope, one unknown key. Its scrape after them, and its output.
fn scrape_of_example(env: &[(&str, &str)]) -> (String, String) {
    let example = process::Example::start(env);
    let base = format!("http://{}", example.addr());
    let agent = agent();
    for (path, key, status) in [
        ("/orders", Some(READER), 200),
        ("/orders", Some(READER), 200),
        ("/orders", Some(EXTRA), 200),
        ("/admin/usage", Some(READER), 403),
        ("/orders", Some(UNKNOWN), 401),
    ] {
        assert_eq!(
            get(&agent, &format!("{base}{path}"), key).0,
            status,
            "{path}"
        );
    }
    let (status, scrape) = get(&agent, &format!("{base}/metrics"), Some(ADMIN));
    assert_eq!(status, 200, "{scrape}");
    (scrape, example.stop())
}

#[test]
fn with_the_none_label_no_series_names_a_key() {
    let dir = process::TempDir::new("metrics-none");
    let keys = many_keys(&dir, 1_001);
    let (scrape, output) = scrape_of_example(&[
        ("API_KEYS_FILE", &keys),
        ("ROCKET_API_KEYS", "{metrics_key_label=\"none\"}"),
    ]);
    let requests: BTreeMap<String, f64> = series(&scrape, "api_key_requests_total")
        .into_iter()
        .map(|(labels, n)| {
            assert_eq!(
                labels.keys().collect::<Vec<_>>(),
                ["outcome"],
                "a label besides `outcome`:\n{scrape}"
            );
            (labels["outcome"].clone(), n)
        })
        .collect();
    // Every key's requests in one series per outcome; the scrape counted before it answered.
    let expected = [("accepted", 4.0), ("scope", 1.0), ("unknown", 1.0)];
    assert_eq!(
        requests,
        expected.map(|(o, n)| (o.to_owned(), n)).into(),
        "{scrape}"
    );
    // Chosen, not defaulted: no warning, whatever the number of keys.
    assert!(output.contains("API keys loaded"), "{output}");
    assert!(!output.contains("metrics_key_label"), "{output}");
}

#[test]
fn by_default_a_retired_name_counts_under_its_key_and_many_keys_are_warned_about() {
    let dir = process::TempDir::new("metrics-name");
    let keys = many_keys(&dir, 1_001);
    let (scrape, output) = scrape_of_example(&[("API_KEYS_FILE", &keys)]);
    let requests = requests(&scrape);
    let expected = [
        ("reader", "accepted", 3),
        ("reader", "scope", 1),
        ("admin", "accepted", 1),
        ("(none)", "unknown", 1),
    ];
    assert_eq!(
        requests,
        expected
            .map(|(k, o, n)| ((k.to_owned(), o.to_owned()), n))
            .into(),
        "{scrape}"
    );
    let warning = output
        .lines()
        .find(|line| line.contains("WARN") && line.contains("api_key_requests_total"))
        .unwrap_or_else(|| panic!("no warning about the key label:\n{output}"));
    for field in ["keys=1001", "setting=\"api_keys.metrics_key_label\""] {
        assert!(warning.contains(field), "{warning}");
    }
}

#[test]
fn an_unknown_key_label_stops_the_start_naming_the_setting() {
    let (status, output) = process::run_to_exit(&[
        ("API_KEY_ADMIN", &format!("{ADMIN};scopes=admin")),
        ("ROCKET_API_KEYS", "{metrics_key_label=\"owner\"}"),
    ]);
    assert!(!status.success(), "{output}");
    let error = output
        .lines()
        .find(|line| line.contains("API key configuration error"))
        .unwrap_or_else(|| panic!("no configuration error:\n{output}"));
    // The environment provider names the setting in capitals.
    let error = error.to_ascii_lowercase();
    for part in ["metrics_key_label", "`owner`", "`name`", "`none`"] {
        assert!(error.contains(part), "{part} in {error}");
    }
}
