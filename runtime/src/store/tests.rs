use std::path::PathBuf;

use super::*;

/// A keys file in a directory of its own, removed with it.
struct KeysFile {
    dir: PathBuf,
    path: PathBuf,
}

impl KeysFile {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rak-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        KeysFile {
            path: dir.join("keys"),
            dir,
        }
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }
}

impl Drop for KeysFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn reload_reports_changes_and_keeps_keys_on_error() {
    let file = KeysFile::new("reload-unit");
    let write = |s: &str| file.write(s);
    write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;scopes=x\nc=cccccccccccccccccccc\n");
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .keys_file(&file.path)
        .key("code", "codecodecodecodecode")
        .build()
        .unwrap();
    assert_eq!(keys.names(), ["a", "b", "c", "code"]);
    keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();

    write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;scopes=y\nd=dddddddddddddddddddd\n");
    let summary = keys.reload().unwrap();
    assert_eq!(
        summary,
        ReloadSummary {
            added: vec!["d".into()],
            removed: vec!["c".into()],
            changed: vec!["b".into()]
        }
    );
    assert_eq!(summary.to_string(), "added [d], removed [c], changed [b]");
    assert_eq!(
        keys.usage().key("a").unwrap().accepted,
        1,
        "figures follow the name"
    );
    assert!(keys.reload().unwrap().is_empty());

    // Same name, new key: changed; the old key stops working.
    write("a=AAAAAAAAAAAAAAAAAAAA\nb=bbbbbbbbbbbbbbbbbbbb;scopes=y\nd=dddddddddddddddddddd\n");
    assert_eq!(keys.reload().unwrap().changed, ["a"]);
    assert!(keys.verify("aaaaaaaaaaaaaaaaaaaa", None).is_err());

    // Errors change nothing: a bad line, a duplicate of a code key, a missing file.
    for bad in ["a=short\n", "x=codecodecodecodecode\n"] {
        write(bad);
        assert!(keys.reload().is_err());
        assert_eq!(keys.names(), ["a", "b", "code", "d"]);
    }
    std::fs::remove_file(&file.path).unwrap();
    assert!(keys.reload().is_err());
    assert_eq!(keys.names(), ["a", "b", "code", "d"]);
}

#[test]
fn counts_survive_reloads_even_from_a_key_still_in_use() {
    let file = KeysFile::new("reload-counts");
    let write = |s: &str| file.write(s);
    write("a=aaaaaaaaaaaaaaaaaaaa;scopes=x\n");
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .keys_file(&file.path)
        .build()
        .unwrap();
    for _ in 0..3 {
        keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
    }
    // A request holding the key checked against the first store…
    let held = keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
    assert_eq!(keys.usage().key("a").unwrap().accepted, 4);

    // …while the key's scopes change, twice.
    write("a=aaaaaaaaaaaaaaaaaaaa;scopes=y\n");
    assert_eq!(keys.reload().unwrap().changed, ["a"]);
    keys.verify("aaaaaaaaaaaaaaaaaaaa", None).unwrap();
    write("a=aaaaaaaaaaaaaaaaaaaa;scopes=z\n");
    assert_eq!(keys.reload().unwrap().changed, ["a"]);
    assert_eq!(held.scopes(), ["x"], "a key shows what was checked");
    // A request admitted after the reload counts in the store it was checked against.
    held.record_accepted(keys.key_label());
    assert_eq!(keys.usage().key("a").unwrap().accepted, 6);
    assert_eq!(keys.shared.retired.lock().unwrap().len(), 1);

    // The held key's store is folded into the identity once the key is dropped.
    drop(held);
    let usage = keys.usage();
    assert_eq!(usage.key("a").unwrap().accepted, 6);
    assert!(usage.key("a").unwrap().last_used.is_some());
    assert!(keys.shared.retired.lock().unwrap().is_empty());

    // Rejections of the key follow it too.
    write("a=aaaaaaaaaaaaaaaaaaaa;scopes=z;ips=192.0.2.0/24\n");
    keys.reload().unwrap();
    let refused = keys.verify("aaaaaaaaaaaaaaaaaaaa", Some([10, 0, 0, 1].into()));
    assert_eq!(refused.unwrap_err(), crate::Reason::Ip);
    write("a=aaaaaaaaaaaaaaaaaaaa;scopes=y\n");
    keys.reload().unwrap();
    let counts = keys.usage().key("a").unwrap().clone();
    assert_eq!((counts.accepted, counts.rejected["ip"]), (6, 1));
}

#[cfg(unix)]
#[test]
fn a_keys_file_that_is_no_regular_file_fails_the_reload_and_keeps_the_keys() {
    let file = KeysFile::new("reload-kinds");
    file.write("a=aaaaaaaaaaaaaaaaaaaa\n");
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .keys_file(&file.path)
        .keys_file_max_size(1024)
        .build()
        .unwrap();
    let replace = |make: &dyn Fn(&std::path::Path)| {
        let _ = std::fs::remove_file(&file.path);
        let _ = std::fs::remove_dir(&file.path);
        make(&file.path);
    };
    let fifo = |p: &std::path::Path| {
        let made = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(made.success());
    };
    let directory = |p: &std::path::Path| std::fs::create_dir(p).unwrap();
    let oversized = |p: &std::path::Path| {
        std::fs::write(
            p,
            format!("b=bbbbbbbbbbbbbbbbbbbb\n#{}\n", "x".repeat(1024)),
        )
        .unwrap()
    };
    for (make, expected) in [
        (&fifo as &dyn Fn(&std::path::Path), "it is a FIFO"),
        (&directory, "it is a directory"),
        (
            &oversized,
            "is larger than `api_keys.keys_file_max_size` (1024 bytes)",
        ),
    ] {
        replace(make);
        // On another thread, so a reload that blocks fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let reloading = keys.clone();
        std::thread::spawn(move || tx.send(reloading.reload().map_err(|e| e.to_string())));
        let outcome = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the reload blocked");
        let message = outcome.unwrap_err();
        assert!(message.contains(expected), "{message}");
        assert_eq!(keys.names(), ["a"]);
    }
    // No reload was left holding the lock: the next one works.
    replace(&|p: &std::path::Path| std::fs::write(p, "c=cccccccccccccccccccc\n").unwrap());
    assert_eq!(keys.reload().unwrap().added, ["c"]);
}

#[test]
fn a_half_written_keys_file_is_deferred_and_read_again_at_the_next_poll() {
    let file = KeysFile::new("reload-unsettled");
    file.write("a=aaaaaaaaaaaaaaaaaaaa\n");
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .keys_file(&file.path)
        .reload_interval(std::time::Duration::from_secs(1))
        .build()
        .unwrap();
    let poller_would_reload = || {
        let loaded = *keys.shared.reload_lock.lock().unwrap();
        loaded != Some(FileStamp::at(&file.path))
    };
    assert!(!poller_would_reload());

    // Written in place, the writer not yet past `/1` of `/16`.
    file.write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;ips=10.0.0.0/1");
    let errors = keys.reload().unwrap_err();
    assert!(
        matches!(&errors.0[..], [crate::load::LoadError::FileUnsettled(..)]),
        "{errors}"
    );
    assert_eq!(keys.names(), ["a"]);
    assert!(poller_would_reload(), "a deferred reload must be retried");
    assert!(poller_would_reload(), "even if the file does not change");

    // The writer finishes; the next poll loads the whole line.
    file.write("a=aaaaaaaaaaaaaaaaaaaa\nb=bbbbbbbbbbbbbbbbbbbb;ips=10.0.0.0/16\n");
    assert_eq!(keys.reload().unwrap().added, ["b"]);
    let outside = keys.verify("bbbbbbbbbbbbbbbbbbbb", Some([10, 128, 0, 1].into()));
    assert_eq!(outside.unwrap_err(), crate::Reason::Ip);
    assert!(!poller_would_reload());

    // Left unterminated, but unchanged for the poll interval: trusted.
    file.write("a=aaaaaaaaaaaaaaaaaaaa");
    assert!(keys.reload().is_err());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(keys.reload().unwrap().removed, ["b"]);
}
