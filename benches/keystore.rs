//! Loading a large keys file: how long it takes and how much memory the keys hold.
//!
//! ```text
//! cargo bench --bench keystore                           # 100,000 keys, 7 runs
//! cargo bench --bench keystore -- --keys 1000000 --runs 3
//! ```
//!
//! Memory is counted by a global allocator that wraps the system one: `retained` is what the
//! loaded [`ApiKeyStore`] holds (bytes requested from the allocator, less an empty store's), `peak`
//! the high-water mark during the load, file contents and parse included. The process's
//! `VmHWM` growth (from `/proc/self/status`, first run only) is printed beside them as a
//! cross-check that includes the allocator's own overhead.
//!
//! A `bench` target without the criterion harness: one load of 100,000 keys is a measurement
//! of its own, and memory is not something criterion measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use rocket_api_key::{keygen::KeyDigest, ApiKeyStore};

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

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let (mut keys, mut runs) = (100_000usize, 7usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--keys" => keys = value().expect("--keys N"),
            "--runs" => runs = value().expect("--runs N"),
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

    let (mut secs, mut retained, mut peak) = (Vec::new(), Vec::new(), Vec::new());
    let mut hwm_growth_kib = None;
    for run in 0..runs {
        let hwm_before = vm_hwm_kib();
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let start = Instant::now();
        let loaded = load(&path);
        secs.push(start.elapsed().as_secs_f64());
        assert_eq!(loaded.len(), keys);
        retained.push((LIVE.load(Relaxed) - before - empty_bytes) as f64 / keys as f64);
        peak.push((PEAK.load(Relaxed) - before) as f64 / keys as f64);
        if run == 0 {
            hwm_growth_kib = vm_hwm_kib().zip(hwm_before).map(|(a, b)| a - b);
        }
        drop(loaded);
    }

    println!(
        "keys file: {keys} entries (`client_<i>=sha256:<hex>;scopes=read:orders`), {file_bytes} bytes, {runs} runs\n"
    );
    println!("| measure | median | target |");
    println!("|---|---|---|");
    println!(
        "| load time (`ApiKeyStore::builder().keys_file(..).build()`) | {:.1} ms | < 1000 ms |",
        median(secs) * 1e3
    );
    println!(
        "| retained memory per key (allocator count, beyond an empty store of {empty_bytes} B) | {:.0} B | < 300 B |",
        median(retained)
    );
    println!(
        "| peak memory per key during the load (allocator count) | {:.0} B | |",
        median(peak)
    );
    if let Some(kib) = hwm_growth_kib {
        println!(
            "| VmHWM growth per key, first run (RSS high-water mark) | {:.0} B | |",
            kib as f64 * 1024.0 / keys as f64
        );
    }
}
