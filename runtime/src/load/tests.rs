use std::fs::File;
use std::time::SystemTime;

use super::*;
use crate::env::{env_var, is_valid_env_prefix, shadowed_var, DEFAULT_ENV_PREFIX, KEYS_FILE_VAR};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";

fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
}

fn messages(l: &Loader) -> Vec<String> {
    l.errors.iter().map(|e| e.to_string()).collect()
}

/// Rules under which every file is settled, and one with an hour's settle window.
const SETTLED: FileRules = FileRules {
    max_size: 64 << 20,
    settle: Duration::ZERO,
};
const FRESH: FileRules = FileRules {
    max_size: 64 << 20,
    settle: Duration::from_secs(3600),
};

/// A directory of its own for a test's files, removed with it.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rak-load-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Loads a keys file on another thread: a load that blocks fails the test instead of
/// hanging it.
fn load_file_within(path: &Path, rules: FileRules, limit: std::time::Duration) -> Loader {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let mut l = Loader::default();
        l.file(&path, rules);
        let _ = tx.send(l);
    });
    rx.recv_timeout(limit)
        .expect("loading the keys file blocked")
}

#[test]
fn env_names_and_default() {
    let mut l = Loader::default();
    l.env(
        "API_KEY_",
        vars(&[
            ("API_KEY", A),
            ("API_KEY_ORDERS_2", B),
            ("PATH", "/bin"),
            ("API_KEYS_FILE", "x"),
        ]),
    );
    assert!(l.errors.is_empty(), "{:?}", messages(&l));
    let names: Vec<&str> = l.loaded.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["default", "orders_2"]);
}

#[test]
fn retired_names_stay_within_64_bytes_and_lead_back_to_their_name() {
    assert_eq!(retired_name("orders", 17), "orders_r17");
    assert_eq!(retired_from("orders_r17"), Some("orders"));
    assert_eq!(
        retired_from(&retired_name("orders_r3", 40)),
        Some("orders_r3")
    );
    let long = "a".repeat(64);
    let retired = retired_name(&long, 12345);
    assert_eq!(retired.len(), 64);
    assert!(retired.ends_with("_r12345"));
    assert!(key_name(&retired).is_some());
    assert_eq!(retired_from(&retired), Some(&long[..57]));
    for other in [
        "orders",
        "orders_r",
        "_r17",
        "orders_rx",
        "orders_r1x",
        "r17",
        "orders17",
    ] {
        assert_eq!(retired_from(other), None, "{other}");
    }
}

/// What `apikey` prints for a name, under any valid prefix, loads back as that name.
#[test]
fn env_var_is_read_back_as_the_key_name() {
    let longest = "x".repeat(MAX_NAME_LEN);
    for prefix in [DEFAULT_ENV_PREFIX, "BILLING_KEY_", "K_2_"] {
        assert!(is_valid_env_prefix(prefix), "{prefix}");
        for given in ["orders", "Orders_2027", "_", "9", longest.as_str()] {
            let name = key_name(given).unwrap();
            let mut l = Loader::default();
            l.env(prefix, vars(&[(&env_var(prefix, &name), A)]));
            assert!(l.errors.is_empty(), "{:?}", messages(&l));
            assert_eq!(l.loaded[0].name, name);
        }
    }
}

#[test]
fn key_names_and_env_prefixes() {
    assert_eq!(key_name("Orders_2").as_deref(), Some("orders_2"));
    let too_long = "x".repeat(MAX_NAME_LEN + 1);
    for bad in ["", "a-b", "a b", "é", too_long.as_str()] {
        assert_eq!(key_name(bad), None, "{bad}");
    }
    for bad in ["", "_X", "API_KEY", "api_key_", "API-KEY_", "API KEY_"] {
        assert!(!is_valid_env_prefix(bad), "{bad}");
    }
    assert!(is_valid_env_prefix("_"));
}

#[test]
fn env_prefix_never_reads_the_keys_file_variable_or_api_key_as_keys() {
    // Both values are valid plaintext keys: read as entries, they would load.
    let env = || {
        vars(&[
            ("API_KEYS_FILE", "/etc/orders/api-keys"),
            ("API_KEY", A),
            ("API_KEY_ORDERS", B),
            ("API", "cccccccccccccccccccccccc"),
            ("API_KEYS_REPORTS", "dddddddddddddddddddddddd"),
        ])
    };
    let names = |prefix: &str| {
        let mut l = Loader::default();
        l.env(prefix, env());
        assert!(l.errors.is_empty(), "{prefix}: {:?}", messages(&l));
        let mut names: Vec<String> = l.loaded.into_iter().map(|k| k.name).collect();
        names.sort();
        names
    };
    assert_eq!(names("API_KEY_"), ["default", "orders"]);
    assert_eq!(names("API_"), ["default", "key_orders", "keys_reports"]);
    assert_eq!(names("API_KEYS_"), ["reports"]);
    assert_eq!(names("API_KEYS_FILE_"), Vec::<String>::new());

    // Such prefixes are refused by `Config::validate`, through this.
    assert_eq!(shadowed_var("API_"), Some(KEYS_FILE_VAR));
    assert_eq!(shadowed_var("API_KEYS_"), Some(KEYS_FILE_VAR));
    assert_eq!(shadowed_var("API_KEYS_FILE_"), Some(KEYS_FILE_VAR));
    for fine in ["API_KEY_", "BILLING_KEY_", "API_KEYS_FILES_", "APIS_"] {
        assert_eq!(shadowed_var(fine), None, "{fine}");
    }
}

#[test]
fn misspelt_digests_are_errors_naming_where_they_are() {
    let hex = &crate::keygen::digest::KeyDigest::of(A.as_bytes()).to_entry()[7..];
    let dir = TempDir::new("misspelt");
    let path = dir.write(
        "keys",
        format!("good=sha256={hex}\nbad=SHA256-{hex};scopes=admin\nother=sha-256:{hex}\n"),
    );
    let mut l = Loader::default();
    l.env(
        "API_KEY_",
        vars(&[
            ("API_KEY_X", &format!("Sha256_{hex}")),
            ("API_KEY_Y", &format!("SHA2={hex};scopes=admin")),
        ]),
    );
    l.file(&path, SETTLED);
    let m = messages(&l);
    let misspelt = "the key looks like a digest but is not `sha256:` and 64 hex digits";
    let expected = [
        "environment variable `API_KEY_X`".to_owned(),
        "environment variable `API_KEY_Y`".to_owned(),
        format!("{}:2", path.display()),
        format!("{}:3", path.display()),
    ];
    assert_eq!(m.len(), expected.len(), "{m:?}");
    for (message, place) in m.iter().zip(&expected) {
        assert!(
            message.starts_with(&format!("{place}: {misspelt};")),
            "{message}"
        );
        assert!(!message.contains(&hex[..8]), "{message}");
    }
    let names: Vec<&str> = l.loaded.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["good"]);
}

#[test]
fn env_errors_name_the_variable() {
    let mut l = Loader::default();
    l.env(
        "API_KEY_",
        vars(&[
            ("API_KEY_", A),
            ("API_KEY_lower", A),
            ("API_KEY_BAD", "short"),
        ]),
    );
    assert_eq!(
        messages(&l),
        [
            "environment variable `API_KEY_`: the name after the prefix must be upper-case letters, digits and `_`",
            "environment variable `API_KEY_lower`: the name after the prefix must be upper-case letters, digits and `_`",
            "environment variable `API_KEY_BAD`: the key is shorter than 16 characters; generate a random key of at least 32 bytes",
        ]
    );
}

#[cfg(unix)]
#[test]
fn env_not_unicode() {
    use std::os::unix::ffi::OsStringExt;
    let mut l = Loader::default();
    l.env(
        "API_KEY_",
        [("API_KEY_X".into(), OsString::from_vec(vec![0xff; 20]))],
    );
    assert_eq!(
        messages(&l),
        ["environment variable `API_KEY_X`: the value is not UTF-8"]
    );
}

#[test]
fn duplicates() {
    let mut l = Loader::default();
    l.env("API_KEY_", vars(&[("API_KEY_ONE", A), ("API_KEY_TWO", A)]));
    l.named_entry("ONE", KeySource::Code("ONE".into()), B);
    let hashed = crate::keygen::digest::KeyDigest::of(A.as_bytes()).to_entry();
    l.named_entry("three", KeySource::Code("three".into()), &hashed);
    assert_eq!(
        messages(&l),
        [
            "environment variable `API_KEY_TWO`: the same key is already configured by environment variable `API_KEY_ONE`; give each client its own key",
            "key `ONE` given in code: this name is already used by environment variable `API_KEY_ONE`",
            "key `three` given in code: the same key is already configured by environment variable `API_KEY_ONE`; give each client its own key",
        ]
    );
}

#[test]
fn file_lines() {
    let dir = std::env::temp_dir().join(format!("rak-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys");
    std::fs::write(
        &path,
        format!("# comment\n\n  reader = {A};scopes=read\n{B}\nbad name={B}x\nw=short\r\n"),
    )
    .unwrap();
    let mut l = Loader::default();
    l.file(&path, SETTLED);
    let p = path.display();
    assert_eq!(
        messages(&l),
        [
            format!("{p}:4: expected `name=entry`, a blank line or a `#` comment"),
            format!("{p}:5: a key name is letters, digits and `_`"),
            format!("{p}:6: the key is shorter than 16 characters; generate a random key of at least 32 bytes"),
        ]
    );
    assert_eq!(l.loaded.len(), 1);
    assert_eq!(l.loaded[0].entry.scopes, ["read"]);
    for m in messages(&l) {
        assert!(!m.contains(B), "{m}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_lines_across_reads() {
    // Lines longer than the read buffer, lines split between reads, no final newline.
    let dir = std::env::temp_dir().join(format!("rak-load-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys");
    let mut text = format!("# {}\n", "x".repeat(200_000));
    for i in 0..5000 {
        text.push_str(&format!("k{i}=key-number-{i:08}-padding\n"));
    }
    text.push_str(&format!("bad\nlast={B}"));
    std::fs::write(&path, text).unwrap();
    let mut l = Loader::default();
    l.file(&path, SETTLED);
    assert_eq!(
        messages(&l),
        [format!(
            "{}:5002: expected `name=entry`, a blank line or a `#` comment",
            path.display()
        )]
    );
    assert_eq!(l.loaded.len(), 5001);
    assert_eq!(l.loaded[4999].source, KeySource::File(path.clone(), 5001));
    assert_eq!(l.loaded[5000].name, "last");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_file() {
    let mut l = Loader::default();
    l.file(Path::new("/nonexistent/keys"), SETTLED);
    assert!(messages(&l)[0].starts_with("cannot read keys file /nonexistent/keys: "));
}

#[test]
fn a_byte_order_mark_is_skipped_at_the_start_only() {
    let dir = TempDir::new("bom");
    let path = dir.write("keys", format!("\u{feff}a={A}\n\u{feff}b={B}\n"));
    let mut l = Loader::default();
    l.file(&path, SETTLED);
    assert_eq!(
        messages(&l),
        [format!(
            "{}:2: a key name is letters, digits and `_`",
            path.display()
        )]
    );
    assert_eq!(l.loaded.len(), 1);
    assert_eq!(l.loaded[0].name, "a");
    assert_eq!(l.loaded[0].source, KeySource::File(path.clone(), 1));

    // A comment first, and a file that is nothing but the mark.
    let path = dir.write("comment", format!("\u{feff}# keys\na={A}"));
    let mut l = Loader::default();
    l.file(&path, SETTLED);
    assert!(l.errors.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.loaded.len(), 1);
    let path = dir.write("empty", "\u{feff}");
    let mut l = Loader::default();
    l.file(&path, SETTLED);
    assert!(
        l.errors.is_empty() && l.loaded.is_empty(),
        "{:?}",
        messages(&l)
    );
}

#[test]
fn an_unterminated_last_line_is_trusted_only_once_settled() {
    let dir = TempDir::new("unterminated");
    // `ips=10.0.0.0/16` while its writer is still at `/1`.
    let path = dir.write("keys", format!("a={A}\nb={B};ips=10.0.0.0/1"));
    let mut l = Loader::default();
    l.file(&path, FRESH);
    assert!(l.loaded.is_empty());
    assert!(
        matches!(&l.errors[..], [LoadError::FileUnsettled(p, wait)]
            if *p == path && *wait > Duration::from_secs(3500)),
        "{:?}",
        messages(&l)
    );
    assert!(
        messages(&l)[0].contains("may be half-written"),
        "{:?}",
        messages(&l)
    );

    // The same line, ended: trusted at once.
    std::fs::write(&path, format!("a={A}\nb={B};ips=10.0.0.0/16\n")).unwrap();
    let mut l = Loader::default();
    l.file(&path, FRESH);
    assert!(l.errors.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.loaded[1].entry.ips[0].to_string(), "10.0.0.0/16");

    // A file without a final newline that has not changed for the window loads as before;
    // trailing blanks are no unterminated line.
    std::fs::write(&path, format!("a={A}\nb={B};ips=10.0.0.0/1")).unwrap();
    let file = File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    let mut l = Loader::default();
    l.file(&path, FRESH);
    assert!(l.errors.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.loaded.len(), 2);
    std::fs::write(&path, format!("a={A}\n  \t")).unwrap();
    let mut l = Loader::default();
    l.file(&path, FRESH);
    assert!(l.errors.is_empty(), "{:?}", messages(&l));
}

/// The reading position of this process's open handle on `path`, if it has one.
#[cfg(target_os = "linux")]
fn read_position(path: &Path) -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .find_map(|fd| {
            if std::fs::read_link(fd.path()).ok()? != path {
                return None;
            }
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.file_name().to_str()?))
                    .ok()?;
            info.lines()
                .find_map(|l| l.strip_prefix("pos:"))
                .and_then(|p| p.trim().parse().ok())
        })
}

/// Loads `path` while `change` runs once the reading of `opened` (the file `path` leads to)
/// is past its first read and before its last.
#[cfg(target_os = "linux")]
fn load_while_changed(path: &Path, opened: &Path, len: u64, change: impl Fn() + Sync) -> Loader {
    let mut l = Loader::default();
    let changed = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if read_position(opened).is_some_and(|pos| pos > 0 && pos < len) {
                    change();
                    return true;
                }
                std::thread::yield_now();
            }
            false
        });
        l.file(path, SETTLED);
        writer.join().unwrap()
    });
    assert!(changed, "the writer never met the read in progress");
    l
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_changed_between_two_reads_is_read_again() {
    use std::io::Write;

    // Two versions of the same length, several reads long.
    let version = |scope: &str| -> String {
        (0..3000)
            .map(|i| format!("k{i}=key-number-{i:08}-padding;scopes={scope}\n"))
            .collect()
    };
    let (a, b) = (version("a"), version("b"));
    let len = a.len() as u64;
    // Long unchanged, so that only the change during the read tells the versions apart.
    let write_old = |path: &Path| {
        std::fs::write(path, &a).unwrap();
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    };
    let only_b = |how: &str, l: &Loader| {
        assert!(l.errors.is_empty(), "{how}: {:?}", messages(l));
        assert_eq!(l.loaded.len(), 3000);
        let other = l.loaded.iter().filter(|k| k.entry.scopes != ["b"]).count();
        assert_eq!(other, 0, "{how}: lines of the earlier version were loaded");
    };
    let dir = TempDir::new("changed");

    // Written over, in place and at the same length: seen through the open handle.
    let path = dir.0.join("in-place");
    write_old(&path);
    let l = load_while_changed(&path, &path, len, || {
        let mut file = File::options().write(true).open(&path).unwrap();
        file.write_all(b.as_bytes()).unwrap();
    });
    only_b("in place", &l);

    // Replaced by `mv`.
    let path = dir.0.join("moved");
    write_old(&path);
    let l = load_while_changed(&path, &path, len, || {
        std::fs::write(dir.0.join("moved.tmp"), &b).unwrap();
        std::fs::rename(dir.0.join("moved.tmp"), &path).unwrap();
    });
    only_b("by `mv`", &l);

    // A link swapped to a new file, as Kubernetes updates a mounted secret: the file being
    // read is untouched, only the path tells.
    let (old, new, path) = (dir.0.join("old"), dir.0.join("new"), dir.0.join("linked"));
    write_old(&old);
    std::os::unix::fs::symlink(&old, &path).unwrap();
    let l = load_while_changed(&path, &old, len, || {
        std::fs::write(&new, &b).unwrap();
        std::os::unix::fs::symlink(&new, dir.0.join("linked.tmp")).unwrap();
        std::fs::rename(dir.0.join("linked.tmp"), &path).unwrap();
    });
    only_b("by a swapped link", &l);
}

#[test]
fn a_file_written_in_place_while_read_never_loads_torn() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;

    let dir = TempDir::new("torn");
    // Large enough to take several reads, ending with the line a torn read would widen.
    let mut head = String::new();
    for i in 0..4000 {
        let key = crate::keygen::digest::KeyDigest::of(format!("key-{i}").as_bytes()).to_entry();
        head.push_str(&format!("k{i}={key};scopes=read\n"));
    }
    head.push_str(&format!("last={A};ips=10.0.0.0/1"));
    let path = dir.write("keys", format!("{head}6\n"));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop, head) = (path.clone(), stop.clone(), head.clone());
        std::thread::spawn(move || {
            while !stop.load(SeqCst) {
                // In place, in two writes, as an editor or `echo >` may do.
                let mut file = File::options()
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .unwrap();
                file.write_all(head.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(2));
                file.write_all(b"6\n").unwrap();
                drop(file);
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    let started = std::time::Instant::now();
    let (mut whole, mut emptied, mut refused) = (0, 0, 0);
    while started.elapsed() < Duration::from_millis(1500) {
        let mut l = Loader::default();
        l.file(&path, FRESH);
        if l.errors.is_empty() && l.loaded.is_empty() {
            // The file as it is between truncation and the first write: a real version of
            // it, which revokes rather than widens.
            emptied += 1;
        } else if l.errors.is_empty() {
            assert_eq!(l.loaded.len(), 4001, "a torn file loaded");
            let last = &l.loaded[4000].entry;
            assert_eq!(last.ips[0].to_string(), "10.0.0.0/16", "a torn line loaded");
            whole += 1;
        } else {
            assert!(
                l.errors.iter().all(LoadError::is_transient) && l.loaded.is_empty(),
                "{:?}",
                messages(&l)
            );
            refused += 1;
        }
    }
    stop.store(true, SeqCst);
    writer.join().unwrap();
    // Once the writer is done, the file loads.
    let mut l = Loader::default();
    l.file(&path, FRESH);
    assert!(l.errors.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.loaded.len(), 4001);
    eprintln!(
        "while the file was written: {whole} whole loads, {emptied} empty, {refused} refused"
    );
}

#[cfg(unix)]
#[test]
fn fifos_devices_and_directories_are_refused_without_blocking() {
    let dir = TempDir::new("kinds");
    let fifo = dir.0.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let limit = Duration::from_secs(10);
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (dir.0.as_path(), "a directory"),
    ] {
        // A small cap as well, so a regression reading /dev/zero stops at it.
        let rules = FileRules {
            max_size: 1 << 20,
            ..SETTLED
        };
        let l = load_file_within(path, rules, limit);
        assert_eq!(
            messages(&l),
            [format!(
                "cannot read keys file {}: it is {kind}; the keys file must be a regular file",
                path.display()
            )]
        );
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let dir = TempDir::new("size");
    let text = format!("a={A}\nb={B}\n");
    let path = dir.write("keys", &text);
    let exact = FileRules {
        max_size: text.len() as u64,
        ..SETTLED
    };
    let mut l = Loader::default();
    l.file(&path, exact);
    assert!(l.errors.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.loaded.len(), 2);

    let under = FileRules {
        max_size: text.len() as u64 - 1,
        ..SETTLED
    };
    let mut l = Loader::default();
    l.file(&path, under);
    assert!(l.loaded.is_empty());
    assert_eq!(
        messages(&l),
        [format!(
            "keys file {} is larger than `api_keys.keys_file_max_size` ({} bytes); raise the limit if the file is meant to be this large",
            path.display(),
            text.len() - 1
        )]
    );
}

#[cfg(unix)]
#[test]
fn permissions_that_let_others_in_are_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("modes");
    let hashed = crate::keygen::digest::KeyDigest::of(A.as_bytes()).to_entry();
    let plain = dir.write("plain", format!("a={A}\n"));
    let digests = dir.write("digests", format!("a={hashed}\n"));
    let warnings = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut l = Loader::default();
        l.file(path, SETTLED);
        assert!(l.errors.is_empty(), "{:?}", messages(&l));
        l.warnings
    };
    let w = |p: &Path, m| FileWarning::Writable(p.to_owned(), m);
    let r = |p: &Path, m| FileWarning::Readable(p.to_owned(), m);
    assert_eq!(warnings(&plain, 0o600), []);
    assert_eq!(warnings(&plain, 0o400), []);
    assert_eq!(warnings(&plain, 0o640), [r(&plain, 0o640)]);
    assert_eq!(warnings(&plain, 0o604), [r(&plain, 0o604)]);
    assert_eq!(
        warnings(&plain, 0o666),
        [w(&plain, 0o666), r(&plain, 0o666)]
    );
    assert_eq!(warnings(&digests, 0o644), []);
    assert_eq!(warnings(&digests, 0o620), [w(&digests, 0o620)]);
    assert_eq!(warnings(&digests, 0o602), [w(&digests, 0o602)]);
}
