//! What validating one presented key costs, against stores of 1, 10,000 and 1,000,000 keys.
//!
//! ```text
//! cargo bench --bench validation              # the full run, about 3 minutes
//! cargo bench --bench validation -- --quick   # about a minute, rougher figures
//! ```
//!
//! - `verify/accepted/N`: the whole check a protected request goes through once its header is
//!   read: shape and checksum, SHA-256, the O(1) lookup, the constant-time comparison, expiry,
//!   the address allowlist, the usage counters (`ApiKeyStore::verify`), then the route's scope
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

mod support;
use support::{check, key, presented, sample_of, store, SAMPLE, SIZES};

/// Presented in turn by `verify_cold`: more keys than any cache holds lines for.
const COLD_SAMPLE: usize = 262_144;

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
        let presented = presented(n);
        let mut next = cycle(&presented);
        group.bench_function(BenchmarkId::new("accepted", n), |b| {
            b.iter(|| check(&keys, black_box(next())))
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
    let cold: Vec<String> = sample_of(n, COLD_SAMPLE).into_iter().map(key).collect();
    let mut next = cycle(&cold);
    group.bench_function(BenchmarkId::new("accepted", n), |b| {
        b.iter(|| check(&keys, black_box(next())))
    });
    drop(keys);
    group.finish();

    let mut group = c.benchmark_group("naive_scan");
    group.measurement_time(Duration::from_secs(4));
    for n in SIZES {
        let valid_api_keys: Vec<String> = (0..n).map(key).collect();
        let presented = presented(n);
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
