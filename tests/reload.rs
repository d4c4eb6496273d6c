//! Keys change while the server runs and requests flow: added, changed, revoked, and a broken
//! file in between that must not disturb the running keys. Also through a volume that Kubernetes
//! mounts and updates by swapping a link. Logs are captured by a global subscriber, so this
//! binary is the only one to see these events.

#[path = "../runtime/tests/common/captured.rs"]
mod captured;
mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use captured::Captured;
use rocket::{get, routes};
use rocket_api_key::{require_api_key, ApiKey, ApiKeyStore};
use support::{agent, get, Server};

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(Captured::install)
}

/// The captured lines that contain every one of `needles`.
#[cfg(unix)]
fn log_lines(needles: &[&str]) -> Vec<String> {
    captured()
        .text()
        .lines()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .map(|line| line.to_owned())
        .collect()
}

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
        captured();
        let dir = std::env::temp_dir().join(format!("rak-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        write_keys(&path, contents);
        KeysFile { dir, path }
    }

    /// A server that loads this file, polling it every `reload_interval` (zero: never).
    fn serve(&self, reload_interval: Duration, reload_on_sighup: bool) -> Server {
        serve(&self.path, reload_interval, reload_on_sighup)
    }
}

/// A server that loads the keys file at `path`, polling it every `reload_interval` (zero: never).
fn serve(path: &Path, reload_interval: Duration, reload_on_sighup: bool) -> Server {
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .keys_file(path)
        .reload_interval(reload_interval)
        .reload_on_sighup(reload_on_sighup);
    Server::start(
        rocket::build()
            .attach(keys.fairing())
            .mount("/", routes![any, read]),
    )
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

/// A volume as Kubernetes mounts a Secret or a ConfigMap: each version of its files in a
/// directory named for when it was written, `..data` a link to the current one, and each file a
/// link through it (`keys -> ..data/keys`). The kubelet updates it atomically: it writes the new
/// version's directory, links `..data_tmp` to it, renames that over `..data` and removes the old
/// directory. The file a path names changes with no write to it, and each version is a new file.
#[cfg(unix)]
struct Mount {
    dir: PathBuf,
    /// The current version's directory, relative to `dir` (empty before the first).
    current: String,
    versions: u32,
}

#[cfg(unix)]
impl Mount {
    fn new(tag: &str, files: &[(&str, &str)]) -> Mount {
        captured();
        let dir = std::env::temp_dir().join(format!("rak-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut mount = Mount {
            dir,
            current: String::new(),
            versions: 0,
        };
        mount.update(files, false);
        mount
    }

    /// The path the application is given: `<dir>/keys`, a link to `..data/keys`.
    fn keys(&self) -> PathBuf {
        self.dir.join("keys")
    }

    /// The versions' directories present.
    fn versions(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("..2"))
            .collect()
    }

    /// Writes `files` as the next version and swaps `..data` to it, as the kubelet does. With
    /// `same_modified`, the new keys file gets the old one's modification time, as two versions
    /// written within one second look on a filesystem that keeps whole seconds.
    fn update(&mut self, files: &[(&str, &str)], same_modified: bool) {
        use std::os::unix::fs::symlink;

        self.versions += 1;
        let version = format!("..2026_12_03_10_00_00.{:09}", self.versions);
        let new = self.dir.join(&version);
        std::fs::create_dir(&new).unwrap();
        for (name, contents) in files {
            std::fs::write(new.join(name), contents).unwrap();
        }
        if same_modified {
            let old = std::fs::metadata(self.keys()).unwrap().modified().unwrap();
            let file = std::fs::File::options()
                .write(true)
                .open(new.join("keys"))
                .unwrap();
            file.set_modified(old).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        for (name, _) in files {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(Path::new("..data").join(name), &link).unwrap();
            }
        }
        if !self.current.is_empty() {
            std::fs::remove_dir_all(self.dir.join(&self.current)).unwrap();
        }
        self.current = version;
    }
}

#[cfg(unix)]
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(unix)]
#[test]
fn a_kubernetes_secret_reloads_at_each_swap_of_its_data_link() {
    let mut mount = Mount::new(
        "k8s-secret",
        &[("keys", &format!("alpha={ALPHA};scopes=read\n"))],
    );
    let keys = mount.keys();
    let server = serve(&keys, Duration::from_secs(1), false);
    let client = agent();
    let status =
        |path: &str, key: &str| get(&client, &format!("{}{path}", server.base), Some(key)).0;
    assert_eq!(status("/read", ALPHA), 200);
    assert_eq!(status("/any", BETA), 401);

    // A key added.
    mount.update(
        &[("keys", &format!("alpha={ALPHA};scopes=read\nbeta={BETA}\n"))],
        false,
    );
    eventually("beta to be accepted", || status("/any", BETA) == 200);
    assert_eq!(server.keys.names(), ["alpha", "beta"]);

    // A scope moved from one key to the other: the same size and modification time, so only the
    // file's identity (another inode) tells the versions apart.
    let before = std::fs::metadata(&keys).unwrap();
    mount.update(
        &[("keys", &format!("alpha={ALPHA}\nbeta={BETA};scopes=read\n"))],
        true,
    );
    let after = std::fs::metadata(&keys).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    eventually("beta to gain `read`", || status("/read", BETA) == 200);
    assert_eq!(status("/read", ALPHA), 403);
    assert_eq!(status("/any", ALPHA), 200);

    // A version with a bad line: logged once, however long it stays, and the running keys stay.
    mount.update(
        &[(
            "keys",
            &format!("beta={BETA};scopes=read\ngamma={GAMMA};scopes=read all\n"),
        )],
        false,
    );
    let bad_line = format!("{}:2:", keys.display());
    let reported = || log_lines(&["API key configuration error", &bad_line]).len();
    eventually("the bad line to be logged", || reported() > 0);
    eventually("the failed reload to be logged", || {
        !log_lines(&["API key reload failed; the running keys are unchanged"]).is_empty()
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(reported(), 1, "a broken version is reported once");
    assert_eq!(status("/any", ALPHA), 200);
    assert_eq!(status("/any", GAMMA), 401);
    assert_eq!(server.keys.names(), ["alpha", "beta"]);

    // A good version after it: one key removed, one added, one's scopes changed.
    mount.update(
        &[("keys", &format!("beta={BETA}\ngamma={GAMMA};scopes=read\n"))],
        false,
    );
    eventually("alpha to be refused", || status("/any", ALPHA) == 401);
    assert_eq!(status("/read", GAMMA), 200);
    assert_eq!(status("/read", BETA), 403);
    assert_eq!(server.keys.names(), ["beta", "gamma"]);
    // The kubelet's side of it: each old version was removed.
    assert_eq!(mount.versions().len(), 1, "{:?}", mount.versions());
}

#[cfg(unix)]
#[test]
fn a_kubernetes_config_map_swap_that_leaves_the_keys_alone_changes_no_key() {
    use std::os::unix::fs::MetadataExt;

    let keys = format!("cm_alpha={ALPHA}\n");
    let mut mount = Mount::new(
        "k8s-config-map",
        &[("keys", &keys), ("other.conf", "level = 1\n")],
    );
    let server = serve(&mount.keys(), Duration::from_secs(1), false);
    let client = agent();
    let status = |key: &str| get(&client, &format!("{}/any", server.base), Some(key)).0;
    // Names of this test's own, for its lines among those of the tests running beside it.
    let reloads = || log_lines(&["API keys reloaded", "cm_"]);
    assert_eq!(status(ALPHA), 200);

    // Only `other.conf` changes, yet `keys` is another file too: every file is written anew.
    let before = std::fs::metadata(mount.keys()).unwrap().ino();
    mount.update(&[("keys", &keys), ("other.conf", "level = 2\n")], false);
    assert_ne!(std::fs::metadata(mount.keys()).unwrap().ino(), before);
    assert_eq!(
        std::fs::read_to_string(mount.dir.join("other.conf")).unwrap(),
        "level = 2\n"
    );
    // Two polls and more: the poller may read the new file, but it has nothing to report.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(reloads(), Vec::<String>::new());
    assert!(server.keys.reload().unwrap().is_empty());
    assert_eq!(server.keys.names(), ["cm_alpha"]);
    assert_eq!(status(ALPHA), 200);

    // Both change: the keys apply, in one reload that names only what changed.
    mount.update(
        &[
            ("keys", &format!("cm_alpha={ALPHA}\ncm_beta={BETA}\n")),
            ("other.conf", "level = 3\n"),
        ],
        false,
    );
    eventually("beta to be accepted", || status(BETA) == 200);
    assert_eq!(status(ALPHA), 200);
    eventually("the reload to be logged", || !reloads().is_empty());
    let lines = reloads();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(r#"added=["cm_beta"] removed=[] changed=[]"#),
        "{lines:?}"
    );
}
