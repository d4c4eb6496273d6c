//! Keys change while the server runs and requests flow: added, changed, revoked, and a broken
//! file in between that must not disturb the running keys.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::{get, routes};
use rocket_api_key::{require_api_key, ApiKey, ApiKeyStore};
use support::{agent, get, Server};

const ALPHA: &str = "alpha-key-0123456789abcdef";
const BETA: &str = "beta-key-0123456789abcdef";
const GAMMA: &str = "gamma-key-0123456789abcdef";

#[require_api_key]
#[get("/any")]
fn any(key: ApiKey) -> String {
    key.name().to_owned()
}

#[require_api_key(scope = "read")]
#[get("/read")]
fn read() -> &'static str {
    "ok"
}

/// Replaces the file atomically, as the README tells operators to.
fn write_keys(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A keys file in a directory of its own, removed with it (also when an assertion fails).
struct KeysFile {
    dir: PathBuf,
    path: PathBuf,
}

impl KeysFile {
    fn new(tag: &str, contents: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rak-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        write_keys(&path, contents);
        KeysFile { dir, path }
    }

    /// A server that loads this file, polling it every `reload_interval` (zero: never).
    fn serve(&self, reload_interval: Duration, reload_on_sighup: bool) -> Server {
        let keys = ApiKeyStore::builder()
            .from_env(false)
            .keys_file(&self.path)
            .reload_interval(reload_interval)
            .reload_on_sighup(reload_on_sighup);
        Server::start(
            rocket::build()
                .attach(keys.fairing())
                .mount("/", routes![any, read]),
        )
    }
}

impl Drop for KeysFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls until `f` holds, for at most 10 s (a liveness bound, not a timing claim).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn keys_file_changes_apply_while_requests_flow() {
    let keys_file = KeysFile::new("reload", &format!("alpha={ALPHA};scopes=read\n"));
    let file = &keys_file.path;
    let server = keys_file.serve(Duration::from_secs(1), false);
    let url = |path: &str| format!("{}{path}", server.base);

    // A client hammers the server with ALPHA for as long as ALPHA is meant to be valid.
    let alpha_valid = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicUsize::new(0)));
    let flow = {
        let (alpha_valid, stop, sent, failed, url) = (
            alpha_valid.clone(),
            stop.clone(),
            sent.clone(),
            failed.clone(),
            url("/read"),
        );
        std::thread::spawn(move || {
            let agent = agent();
            while !stop.load(SeqCst) {
                let valid_before = alpha_valid.load(SeqCst);
                let (status, _) = get(&agent, &url, Some(ALPHA));
                sent.fetch_add(1, SeqCst);
                // Only a request that was meant to pass from start to finish may count as lost.
                if valid_before && alpha_valid.load(SeqCst) && status != 200 {
                    failed.fetch_add(1, SeqCst);
                }
            }
        })
    };
    let client = agent();
    let status = |path: &str, key: &str| get(&client, &url(path), Some(key)).0;

    // Add a key.
    assert_eq!(status("/any", BETA), 401);
    write_keys(file, &format!("alpha={ALPHA};scopes=read\nbeta={BETA}\n"));
    eventually("beta to be accepted", || status("/any", BETA) == 200);
    assert_eq!(server.keys.names(), ["alpha", "beta"]);

    // A broken file (one bad line among good ones) changes nothing, however long it stays.
    write_keys(
        file,
        &format!("alpha={ALPHA};scopes=read\nbeta={BETA}\ngamma={GAMMA};scopes=read all\n"),
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status("/any", BETA), 200);
    assert_eq!(status("/any", GAMMA), 401);
    assert_eq!(server.keys.names(), ["alpha", "beta"]);

    // So does a file that vanishes for a while.
    std::fs::remove_file(file).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status("/any", BETA), 200);

    // Change a key's scopes and revoke another in one edit.
    let before = server.keys.usage().key("beta").unwrap().accepted;
    alpha_valid.store(false, SeqCst);
    write_keys(file, &format!("beta={BETA};scopes=read\ngamma={GAMMA}\n"));
    eventually("alpha to be revoked", || status("/any", ALPHA) == 401);
    assert_eq!(status("/read", BETA), 200);
    assert_eq!(status("/any", GAMMA), 200);
    assert_eq!(server.keys.names(), ["beta", "gamma"]);
    // Usage figures stay with the name across reloads.
    assert!(server.keys.usage().key("beta").unwrap().accepted > before);

    stop.store(true, SeqCst);
    flow.join().unwrap();
    let sent = sent.load(SeqCst);
    assert!(sent > 20, "the request flow barely ran ({sent} requests)");
    assert_eq!(
        failed.load(SeqCst),
        0,
        "requests with a valid key failed during reloads (of {sent})"
    );
}

#[cfg(unix)]
#[test]
fn sighup_reloads() {
    let keys_file = KeysFile::new("hup", &format!("alpha={ALPHA}\n"));
    let file = &keys_file.path;
    // Polling off: only the signal can load the change.
    let server = keys_file.serve(Duration::ZERO, true);
    let client = agent();
    let status = |key: &str| get(&client, &format!("{}/any", server.base), Some(key)).0;

    write_keys(file, &format!("alpha={ALPHA}\nbeta={BETA}\n"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(BETA), 401, "nothing reloads without the signal");
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually("beta to be accepted after SIGHUP", || status(BETA) == 200);
    assert_eq!(status(ALPHA), 200);
}

#[test]
fn a_half_written_keys_file_waits_for_the_next_poll() {
    let keys_file = KeysFile::new("reload-half", &format!("alpha={ALPHA}\n"));
    let file = &keys_file.path;
    let server = keys_file.serve(Duration::from_secs(1), false);
    let client = agent();
    let status = |key: &str| get(&client, &format!("{}/any", server.base), Some(key)).0;

    // Written in place, and the writer stops before the final newline.
    std::fs::write(file, format!("alpha={ALPHA}\nbeta={BETA}")).unwrap();
    let error = server.keys.reload().unwrap_err().to_string();
    assert!(error.contains("may be half-written"), "{error}");
    assert_eq!(status(BETA), 401, "the line was trusted at once");
    assert_eq!(status(ALPHA), 200, "the running keys stay");
    // The file does not change again; the poller reads it once it has settled.
    eventually("beta to be accepted once the file settled", || {
        status(BETA) == 200
    });
}
