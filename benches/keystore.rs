//! Loading 100,000 keys at start-up: how long it takes and how much memory the keys hold, from a
//! keys file and, given a PostgreSQL database, from the key table.
//!
//! ```text
//! cargo bench --bench keystore                           # 100,000 keys, 7 runs
//! cargo bench --bench keystore -- --keys 1000000 --runs 3
//! cargo bench --bench keystore -- --database-url postgres://u:p@127.0.0.1:5432/db
//! python3 bench/database_load.py                         # the same, on a throwaway cluster
//! ```
//!
//! Memory is counted by a global allocator that wraps the system one: `retained` is what the
//! loaded [`ApiKeyStore`] holds (bytes requested from the allocator, less an empty store's), `peak`
//! the high-water mark during the load, file contents and parse included. The process's
//! `VmHWM` growth (from `/proc/self/status`, first run only) is printed beside them as a
//! cross-check that includes the allocator's own overhead.
//!
//! With `--database-url`, the table there is created if need be (`KeyTable::init`), emptied, and
//! filled with the file's keys (same names, digests and scope) in one statement; each run then
//! also ignites a Rocket instance whose fairing reads the table, as an application starts. Its
//! `retained` is beyond an ignite of the same instance over an empty table, so it counts what the
//! keys add: the store, and the table's entries the fairing keeps to apply later changes to. The
//! two sources are loaded in turn within each run, so their ratio is not skewed by the machine's
//! drift. Two more timings say where the database's time goes: a connection alone, and a
//! connection with every row fetched but not parsed.
//!
//! A `bench` target without the criterion harness: one load of 100,000 keys is a measurement
//! of its own, and memory is not something criterion measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rocket::figment::Figment;
use rocket::tokio::runtime::Runtime;
use rocket_api_key::{database::KeyTable, keygen::KeyDigest, ApiKeyStore};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(live, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let live = LIVE.fetch_add(new_size, Relaxed) + new_size;
            PEAK.fetch_max(live, Relaxed);
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn vm_hwm_kib() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn load(path: &std::path::Path) -> ApiKeyStore {
    ApiKeyStore::builder()
        .from_env(false)
        .keys_file(path)
        .build()
        .expect("the generated keys file is valid")
}

/// Ignites an instance whose fairing loads the keys of the table at `url`, and returns it.
fn ignite(runtime: &Runtime, url: &str) -> rocket::Rocket<rocket::Ignite> {
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(("log_level", "off"))
        .merge(("api_keys.from_env", false))
        .merge(("api_keys.keys_database_url", url));
    runtime.block_on(async {
        let ignited = rocket::custom(figment)
            .attach(ApiKeyStore::fairing())
            .ignite()
            .await
            .expect("the fairing loads the key table");
        // The fairing's connection is closed by a task of its own: let it end and free its
        // buffers before anything is counted.
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
        ignited
    })
}

/// Connects to `url` directly, without the crate: for filling the table and for timing the
/// connection and the fetch apart from the load.
async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the database accepts the URL's credentials");
    rocket::tokio::spawn(connection);
    client
}

/// Creates the key table if need be and fills it with `keys` keys, the file's: `client_<i>`, the
/// SHA-256 of `bench-key-<i>-0123456789abcdef`, scope `read:orders`. Checks that the database's
/// digest of one key is the one the file holds.
fn fill_table(runtime: &Runtime, url: &str, keys: usize) {
    runtime.block_on(async {
        KeyTable::connect(url)
            .await
            .expect("the database accepts the URL")
            .init()
            .await
            .expect("the key table is created");
        let client = client(url).await;
        // TRUNCATE fires no row trigger: the table's revision and history stay as they are.
        client
            .batch_execute("TRUNCATE api_keys, api_keys_deleted, api_keys_last_used")
            .await
            .expect("the key table is emptied");
        if keys == 0 {
            return;
        }
        // Through the table's trigger, as a bulk import would be: one transaction, one revision
        // and one notification (about 2 s for 100,000 rows).
        client
            .batch_execute(&format!(
                "INSERT INTO api_keys (name, digest, scopes) \
                 SELECT 'client_' || i, \
                        sha256(convert_to('bench-key-' || lpad(i::text, 10, '0') || '-0123456789abcdef', 'UTF8')), \
                        '{{read:orders}}' \
                 FROM generate_series(0, {}) AS i; \
                 ANALYZE api_keys",
                keys - 1
            ))
            .await
            .expect("the keys are inserted");
        let i = keys - 1;
        let row = client
            .query_one(
                "SELECT 'sha256:' || encode(digest, 'hex') FROM api_keys WHERE name = $1",
                &[&format!("client_{i}")],
            )
            .await
            .expect("the last key is in the table");
        let expected = KeyDigest::of(format!("bench-key-{i:010}-0123456789abcdef").as_bytes());
        assert_eq!(row.get::<_, String>(0), expected.to_entry(), "the table's digest is the file's");
    })
}

/// One load's figures, per key.
#[derive(Default)]
struct Loads {
    secs: Vec<f64>,
    retained: Vec<f64>,
    peak: Vec<f64>,
    hwm_growth_kib: Option<usize>,
}

impl Loads {
    /// Times `load`, counts what it allocates beyond `baseline` bytes, keeps the result for
    /// `check`, then drops it.
    fn measure<T>(
        &mut self,
        keys: usize,
        baseline: usize,
        load: impl FnOnce() -> (T, Duration),
        check: impl FnOnce(&T),
    ) {
        let first = self.secs.is_empty();
        let hwm_before = vm_hwm_kib();
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let (loaded, elapsed) = load();
        self.secs.push(elapsed.as_secs_f64());
        check(&loaded);
        self.retained
            .push((LIVE.load(Relaxed) - before - baseline) as f64 / keys as f64);
        self.peak
            .push((PEAK.load(Relaxed) - before) as f64 / keys as f64);
        if first {
            self.hwm_growth_kib = vm_hwm_kib().zip(hwm_before).map(|(a, b)| a - b);
        }
        drop(loaded);
    }
}

fn timed<T>(load: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let loaded = load();
    (loaded, start.elapsed())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// `xs`'s median as `<n> <unit>`, or an empty cell.
fn cell(xs: &[f64], scale: f64, unit: &str) -> String {
    if xs.is_empty() {
        return String::new();
    }
    let digits = if unit == "ms" { 1 } else { 0 };
    format!("{:.*} {unit}", digits, median(xs.to_vec()) * scale)
}

fn main() {
    let (mut keys, mut runs, mut url) = (100_000usize, 7usize, None::<String>);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keys" => keys = args.next().and_then(|v| v.parse().ok()).expect("--keys N"),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--database-url" => url = Some(args.next().expect("--database-url URL")),
            // `cargo bench` passes `--bench`; other flags are criterion's, for the other target.
            _ => {}
        }
    }

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("keys-{keys}.txt"));
    let mut file = String::with_capacity(keys * 100);
    for i in 0..keys {
        let digest = KeyDigest::of(format!("bench-key-{i:010}-0123456789abcdef").as_bytes());
        file.push_str(&format!(
            "client_{i}={};scopes=read:orders\n",
            digest.to_entry()
        ));
    }
    std::fs::write(&path, &file).unwrap();
    let file_bytes = file.len();
    drop(file);

    let empty_path = dir.join("keys-0.txt");
    std::fs::write(&empty_path, "").unwrap();
    let before = LIVE.load(Relaxed);
    let empty = load(&empty_path);
    let empty_bytes = LIVE.load(Relaxed) - before;
    drop(empty);

    // The fairing logs every key's name at ignite, through `log` when no subscriber is set: a
    // line of 1.6 MB at 100,000 keys, which is the terminal's time, not the load's.
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())
        .expect("the first subscriber");
    // Built before anything is counted: its threads and buffers are not the keys'.
    let runtime = rocket::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let mut empty_ignite_bytes = 0;
    if let Some(url) = &url {
        fill_table(&runtime, url, 0);
        // Twice: the first ignite also sets up what a process does once (Rocket's logger, …).
        drop(ignite(&runtime, url));
        let before = LIVE.load(Relaxed);
        let empty = ignite(&runtime, url);
        empty_ignite_bytes = LIVE.load(Relaxed) - before;
        drop(empty);
        let start = Instant::now();
        fill_table(&runtime, url, keys);
        eprintln!(
            "filled the key table with {keys} keys in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }

    let (mut from_file, mut from_table) = (Loads::default(), Loads::default());
    let (mut connect, mut fetch) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        from_file.measure(
            keys,
            empty_bytes,
            || timed(|| load(&path)),
            |loaded| assert_eq!(loaded.len(), keys),
        );
        let Some(url) = &url else { continue };
        from_table.measure(
            keys,
            empty_ignite_bytes,
            || {
                let start = Instant::now();
                let ignited = ignite(&runtime, url);
                // Less the pause in `ignite` that lets the connection's task end.
                (
                    ignited,
                    start.elapsed().saturating_sub(Duration::from_millis(20)),
                )
            },
            |ignited| {
                let store = ignited
                    .state::<ApiKeyStore>()
                    .expect("the fairing manages the store");
                assert_eq!(store.len(), keys);
            },
        );
        runtime.block_on(async {
            let start = Instant::now();
            let table = KeyTable::connect(url).await.expect("a connection");
            connect.push(start.elapsed().as_secs_f64());
            drop(table);
            let start = Instant::now();
            let client = client(url).await;
            // The fairing's query (`KEY_COLUMNS` in runtime/src/database.rs, which is private).
            let rows = client
                .query(
                    "SELECT name, digest, scopes, ips, rate, least(expires_at, revoked_at) AS until, \
                     (revoked_at IS NULL OR revoked_at > now()) AS live, revision FROM api_keys \
                     WHERE revoked_at IS NULL OR revoked_at > now()",
                    &[],
                )
                .await
                .expect("the rows");
            fetch.push(start.elapsed().as_secs_f64());
            assert_eq!(rows.len(), keys);
        });
    }

    println!(
        "{keys} keys (`client_<i>=sha256:<hex>;scopes=read:orders`; keys file of {file_bytes} bytes), {runs} runs\n"
    );
    let database = url.is_some();
    if database {
        println!("| measure (median) | keys file | PostgreSQL table | target |");
        println!("|---|---|---|---|");
    } else {
        println!("| measure (median) | keys file | target |");
        println!("|---|---|---|");
    }
    let row = |measure: &str, file: String, table: String, target: &str| {
        if database {
            println!("| {measure} | {file} | {table} | {target} |");
        } else {
            println!("| {measure} | {file} | {target} |");
        }
    };
    row(
        "load time (file: `ApiKeyStore::builder().keys_file(..).build()`; table: `ignite()` with the fairing)",
        cell(&from_file.secs, 1e3, "ms"),
        cell(&from_table.secs, 1e3, "ms"),
        "< 1000 ms",
    );
    if database {
        // Per run, the two loads a moment apart: the machine's drift cancels out.
        let ratios: Vec<f64> = from_table
            .secs
            .iter()
            .zip(&from_file.secs)
            .map(|(t, f)| t / f)
            .collect();
        row(
            "load time, table / file (median of the runs' ratios)",
            String::new(),
            format!("{:.2}×", median(ratios)),
            "",
        );
        row(
            "of which a connection (`KeyTable::connect`), timed apart",
            String::new(),
            cell(&connect, 1e3, "ms"),
            "",
        );
        row(
            "of which a connection and every row fetched, not parsed (tokio-postgres), timed apart",
            String::new(),
            cell(&fetch, 1e3, "ms"),
            "",
        );
    }
    row(
        &format!("retained memory per key (allocator count, beyond an empty store of {empty_bytes} B / an ignite over an empty table of {empty_ignite_bytes} B)"),
        cell(&from_file.retained, 1.0, "B"),
        cell(&from_table.retained, 1.0, "B"),
        "< 300 B",
    );
    row(
        "peak memory per key during the load (allocator count)",
        cell(&from_file.peak, 1.0, "B"),
        cell(&from_table.peak, 1.0, "B"),
        "",
    );
    let hwm = |loads: &Loads| {
        loads
            .hwm_growth_kib
            .map(|kib| format!("{:.0} B", kib as f64 * 1024.0 / keys as f64))
            .unwrap_or_default()
    };
    // The process's high-water mark is the file's by the time the table loads: it is not
    // measured there.
    row(
        "VmHWM growth per key, first run (RSS high-water mark; the file's only)",
        hwm(&from_file),
        String::new(),
        "",
    );
}
