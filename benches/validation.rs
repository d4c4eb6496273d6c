//! What validating one presented key costs, against stores of 1, 10,000 and 1,000,000 keys.
//!
//! ```text
//! cargo bench --bench validation              # the full run, about 3 minutes
//! cargo bench --bench validation -- --quick   # about a minute, rougher figures
//! ```
//!
//! - `verify/accepted/N`: the whole check a protected request goes through once its header is
//!   read: shape and checksum, SHA-256, the O(1) lookup, the constant-time comparison, expiry,
//!   the address allowlist, the usage counters (`ApiKeys::verify`), then the route's scope
//!   requirement (`ScopeRequirement::is_met_by`).
//! - `verify/unknown/N`: the same for a well-formed key that is not configured (a 401).
//! - `naive_scan/N`: the Flask recipe's `key in valid_api_keys`: a linear scan of plaintext keys
//!   with `==`, no hashing, no scopes. It is also a timing leak; it is here as the baseline.
//!
//! The presented key changes at every iteration, cycling through 4,096 configured keys picked
//! across the whole store, so a large store is not measured with one key hot in cache: 4,096
//! active keys, as a busy service has, whose lines a compact store keeps in the CPU's caches and
//! a pointer-chasing one does not.
//!
//! - `verify_cold/accepted/1000000`: the same check cycling through 262,144 keys of the million,
//!   more than any cache holds: every check then waits for main memory once. The floor of a
//!   store that does not fit in cache, shown so the figures above are not mistaken for it.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rocket_api_key::{ApiKeys, KeyDigest, ScopeRequirement};

const SIZES: [usize; 3] = [1, 10_000, 1_000_000];
const SAMPLE: usize = 4096;
const COLD_SAMPLE: usize = 262_144;
const REQUIRED: ScopeRequirement = ScopeRequirement::AllOf(&["read:orders"]);

/// The plaintext of configured key `i`: 36 visible ASCII characters, like a real random key.
fn key(i: usize) -> String {
    format!("bench-key-{i:010}-0123456789abcdef")
}

/// A store of `n` keys, configured the recommended way (as `sha256:` digests, with a scope).
fn store(n: usize) -> ApiKeys {
    let mut builder = ApiKeys::builder().from_env(false);
    for i in 0..n {
        let entry = format!(
            "{};scopes=read:orders",
            KeyDigest::of(key(i).as_bytes()).to_entry()
        );
        builder = builder.key(format!("k{i}"), entry);
    }
    let keys = builder.build().expect("the generated entries are valid");
    assert_eq!(keys.len(), n);
    keys
}

/// `SAMPLE` key indices spread over `0..n` (a fixed LCG: the same keys on every run).
fn sample(n: usize) -> Vec<usize> {
    sample_of(n, SAMPLE)
}

/// `count` key indices spread over `0..n`.
fn sample_of(n: usize, count: usize) -> Vec<usize> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..count)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as usize % n
        })
        .collect()
}

/// Cycles through `items`, one per call.
fn cycle<'a, T>(items: &'a [T]) -> impl FnMut() -> &'a T {
    let mut i = 0;
    move || {
        i = (i + 1) % items.len();
        &items[i]
    }
}

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group.measurement_time(Duration::from_secs(4));
    for n in SIZES {
        let keys = store(n);
        let presented: Vec<String> = sample(n).into_iter().map(key).collect();
        let mut next = cycle(&presented);
        group.bench_function(BenchmarkId::new("accepted", n), |b| {
            b.iter(|| {
                let key = keys.verify(black_box(next()), None).unwrap();
                assert!(REQUIRED.is_met_by(&key.scopes()));
                key
            })
        });
        let unknown: Vec<String> = (0..SAMPLE).map(|i| key(n + i)).collect();
        let mut next = cycle(&unknown);
        group.bench_function(BenchmarkId::new("unknown", n), |b| {
            b.iter(|| keys.verify(black_box(next()), None).unwrap_err())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("verify_cold");
    group.measurement_time(Duration::from_secs(4));
    let n = SIZES[SIZES.len() - 1];
    let keys = store(n);
    let presented: Vec<String> = sample_of(n, COLD_SAMPLE).into_iter().map(key).collect();
    let mut next = cycle(&presented);
    group.bench_function(BenchmarkId::new("accepted", n), |b| {
        b.iter(|| {
            let key = keys.verify(black_box(next()), None).unwrap();
            assert!(REQUIRED.is_met_by(&key.scopes()));
            key
        })
    });
    drop(keys);
    group.finish();

    let mut group = c.benchmark_group("naive_scan");
    group.measurement_time(Duration::from_secs(4));
    for n in SIZES {
        let valid_api_keys: Vec<String> = (0..n).map(key).collect();
        let presented: Vec<String> = sample(n).into_iter().map(key).collect();
        let mut next = cycle(&presented);
        if n >= 1_000_000 {
            // About a millisecond per iteration: fewer samples keep the run short.
            group.sample_size(10);
        }
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let presented = black_box(next());
                assert!(valid_api_keys.iter().any(|k| k == presented));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
