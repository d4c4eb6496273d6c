//! The keys file as it may really be: a FIFO, a device, a directory, too large, half-written,
//! saved with a byte-order mark, readable by others. Logs are captured by a global subscriber,
//! so this binary is the only one to see these events.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rocket_api_key_runtime::{keygen::KeyDigest, ApiKeyStore, ApiKeyStoreBuilder};

use common::{app, ignition_error, Captured};
use rocket::local::blocking::Client;

const KEY: &str = "file-key-0123456789abcdef";
const OTHER: &str = "other-key-0123456789abcdef";

static CAPTURED: OnceLock<Captured> = OnceLock::new();

fn logs() -> String {
    CAPTURED.get_or_init(Captured::install).text()
}

/// A directory of its own for a test's files, removed with it.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        CAPTURED.get_or_init(Captured::install);
        let dir = std::env::temp_dir().join(format!("rak-file-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn builder(path: &Path) -> ApiKeyStoreBuilder {
    ApiKeyStore::builder().from_env(false).keys_file(path)
}

/// `build()` on another thread: a load that blocks fails the test instead of hanging it.
fn build_within(builder: ApiKeyStoreBuilder, limit: Duration) -> Result<ApiKeyStore, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(builder.build().map_err(|e| e.to_string())));
    rx.recv_timeout(limit)
        .expect("loading the keys file blocked")
}

#[cfg(unix)]
#[test]
fn keys_files_that_are_no_regular_files_stop_the_start() {
    let dir = Dir::new("kinds");
    let fifo = dir.path("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (dir.0.as_path(), "a directory"),
    ] {
        // A small cap too, so that a regression reading /dev/zero stops rather than exhausts
        // the machine's memory.
        let keys = builder(path).keys_file_max_size(1 << 20);
        let error = build_within(keys.clone(), Duration::from_secs(10)).unwrap_err();
        assert_eq!(
            error,
            format!(
                "cannot read keys file {}: it is {kind}; the keys file must be a regular file",
                path.display()
            )
        );
        assert!(ignition_error(app(keys)).is_some(), "{kind}");
    }
}

#[test]
fn a_keys_file_over_its_size_limit_stops_the_start() {
    let dir = Dir::new("size");
    let file = dir.path("keys");
    std::fs::write(&file, format!("a={KEY}\n# {}\n", "x".repeat(4096))).unwrap();
    let error = builder(&file)
        .keys_file_max_size(4096)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        error.ends_with("is larger than `api_keys.keys_file_max_size` (4096 bytes); raise the limit if the file is meant to be this large"),
        "{error}"
    );
    assert!(ignition_error(app(builder(&file).keys_file_max_size(4096))).is_some());
    // The limit is configuration like any other.
    let figment = rocket::Config::figment().merge(("api_keys.keys_file_max_size", 1 << 20));
    assert_eq!(
        builder(&file)
            .keys_file_max_size(4096)
            .load(&figment)
            .unwrap()
            .names(),
        ["a"]
    );
}

#[test]
fn a_keys_file_saved_with_a_byte_order_mark_loads() {
    let dir = Dir::new("bom");
    let file = dir.path("keys");
    std::fs::write(&file, format!("\u{feff}a={KEY};scopes=read\n")).unwrap();
    let keys = builder(&file).build().unwrap();
    assert_eq!(keys.verify(KEY, None).unwrap().scopes(), ["read"]);
}

/// A digest under a misspelt tag (`sha-256:` for `sha256:`) is refused, at start and at a
/// reload, naming the line: read as a plaintext key, the entry's own text would authenticate.
#[test]
fn a_misspelt_digest_is_a_load_error_and_never_a_key() {
    let dir = Dir::new("misspelt");
    let file = dir.path("keys");
    let hex = &KeyDigest::of(OTHER.as_bytes()).to_entry()["sha256:".len()..];
    let misspelt = format!("sha-256:{hex}");
    let with_it = format!("good={KEY}\nbad={misspelt};scopes=admin\n");
    let refusal = format!(
        "{}:2: the key looks like a digest but is not `sha256:` and 64 hex digits",
        file.display()
    );

    std::fs::write(&file, &with_it).unwrap();
    let error = builder(&file).build().unwrap_err().to_string();
    assert!(error.starts_with(&refusal), "{error}");
    assert!(!error.contains(&hex[..8]), "{error}");
    assert!(ignition_error(app(builder(&file))).is_some());

    // Added to a running store's file: the reload fails, and the text is no key.
    std::fs::write(&file, format!("good={KEY}\n")).unwrap();
    let keys = builder(&file).build().unwrap();
    std::fs::write(&file, &with_it).unwrap();
    let error = keys.reload().unwrap_err().to_string();
    assert!(error.starts_with(&refusal), "{error}");
    assert_eq!(keys.names(), ["good"]);
    assert!(keys.verify(&misspelt, None).is_err());
    assert!(keys.verify(KEY, None).is_ok());
}

#[test]
fn a_half_written_keys_file_at_start_is_read_again_once_settled() {
    let dir = Dir::new("settle");
    let file = dir.path("keys");
    // The writer has reached `/1` of `/16`, and finishes a moment later.
    std::fs::write(&file, format!("a={KEY};ips=10.0.0.0/1")).unwrap();
    let finisher = {
        let file = file.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let text = format!("a={KEY};ips=10.0.0.0/16\n");
            std::fs::write(file, text).unwrap();
        })
    };
    let started = Instant::now();
    let keys = builder(&file)
        .reload_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    finisher.join().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let refused = keys.verify(KEY, Some([10, 128, 0, 1].into()));
    assert!(refused.is_err(), "the half-written `/1` was loaded");
    assert!(keys.verify(KEY, Some([10, 0, 0, 1].into())).is_ok());
    assert!(
        logs().contains("keys file may be half-written; reading it again once it has settled"),
        "{}",
        logs()
    );
}

#[cfg(unix)]
#[test]
fn keys_files_open_to_others_are_named_in_warnings() {
    use std::os::unix::fs::PermissionsExt;

    let dir = Dir::new("modes");
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let warnings_about = |path: &Path| -> Vec<String> {
        let needle = format!("path={path:?}");
        logs()
            .lines()
            .filter(|line| line.contains(&needle))
            .map(|line| line.to_owned())
            .collect()
    };

    // Plaintext keys, readable by all. Loading only to look (as an application may, before it
    // attaches the fairing) logs nothing; the fairing warns once, at start.
    let plain = dir.path("plain");
    std::fs::write(&plain, format!("a={KEY}\n")).unwrap();
    set_mode(&plain, 0o644);
    let looked = builder(&plain).load(&rocket::Config::figment()).unwrap();
    assert!(warnings_about(&plain).is_empty(), "{}", logs());
    drop(looked);
    let polled = builder(&plain).reload_interval(Duration::from_secs(1));
    let server = Client::tracked(app(polled)).unwrap();
    let lines = warnings_about(&plain);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(" WARN rocket_api_key: keys file holds plaintext keys and can be read by group or others"),
        "{lines:?}"
    );
    assert!(lines[0].ends_with("mode=644"), "{lines:?}");
    assert!(!logs().contains(KEY));

    // At each reload while it stays so: a `chmod` is a change the poller reloads for. Once
    // writable by others, that too.
    set_mode(&plain, 0o666);
    let lines = wait_for(|| Some(warnings_about(&plain)).filter(|l| l.len() >= 3));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].contains("keys file can be written by group or others, who could add a key"),
        "{lines:?}"
    );
    assert!(lines[1].ends_with("mode=666"), "{lines:?}");
    assert!(lines[2].contains("holds plaintext keys"), "{lines:?}");

    // Fixed: reloaded, and no more warnings.
    set_mode(&plain, 0o600);
    let reloads =
        || logs().matches("API keys reloaded").count() + logs().matches("mode=600").count();
    let before = reloads();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        reloads(),
        before,
        "a reload with nothing to say logs nothing"
    );
    assert_eq!(warnings_about(&plain).len(), 3);
    drop(server);

    // Digests only: readable is fine, writable is not.
    let hashed = dir.path("hashed");
    let entry = KeyDigest::of(OTHER.as_bytes()).to_entry();
    std::fs::write(&hashed, format!("b={entry}\n")).unwrap();
    set_mode(&hashed, 0o644);
    drop(Client::tracked(app(builder(&hashed))).unwrap());
    assert_eq!(warnings_about(&hashed).len(), 0);
    set_mode(&hashed, 0o664);
    drop(Client::tracked(app(builder(&hashed))).unwrap());
    let lines = warnings_about(&hashed);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("can be written by group or others"),
        "{lines:?}"
    );
}

/// Polls `found` every 100 ms for up to 20 s (the watcher polls every second; a loaded machine
/// may take longer), returning what it found.
fn wait_for<T>(found: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = found() {
            return t;
        }
        assert!(Instant::now() < deadline, "not logged in time:\n{}", logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}
