//! The keys file as it may really be: half-written while it is read. Logs are captured by a
//! global subscriber, so this binary is the only one to see these events.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rocket_api_key_runtime::{ApiKeys, ApiKeysBuilder};

use common::Captured;

const KEY: &str = "file-key-0123456789abcdef";

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

fn builder(path: &Path) -> ApiKeysBuilder {
    ApiKeys::builder().from_env(false).keys_file(path)
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
