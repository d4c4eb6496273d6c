//! The cost of a check against a large store relative to a one-key store, measured side by side.
//!
//! ```text
//! cargo bench --bench validation_ratio                 # 15 rounds, about a minute
//! cargo bench --bench validation_ratio -- --rounds 31
//! ```
//!
//! `cargo bench --bench validation` (criterion) gives each store size's median, but measures the
//! sizes one after another, minutes apart, and this machine's speed drifts by more than the
//! difference being measured. Here the stores of 1, 10,000 and 1,000,000 keys are built once and
//! measured in turn, in rounds, order reversed every other round (A B C, C B A, …): every round
//! gives the ratio of each size to the one-key store, and the median over rounds is reported with
//! the median time per check. The check is the same as `verify/accepted` in the criterion bench:
//! validation of a key cycling through 4,096 configured keys, then the route's scope check.

use std::hint::black_box;
use std::time::Instant;

mod support;
use support::{check, presented, store, SIZES};

/// Checks per timed batch: enough for a few milliseconds, so the clock's resolution vanishes.
const BATCH: usize = 65_536;

fn main() {
    let rounds = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .map_or(15, |n| n.parse().expect("--rounds takes a number"));
    eprintln!("building stores of {SIZES:?} keys");
    let cases: Vec<_> = SIZES.iter().map(|&n| (n, store(n), presented(n))).collect();

    let mut times = vec![Vec::new(); cases.len()];
    for round in 0..=rounds {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (_, keys, presented) = &cases[i];
            let start = Instant::now();
            for p in presented.iter().cycle().take(BATCH) {
                check(keys, black_box(p));
            }
            let ns = start.elapsed().as_nanos() as f64 / BATCH as f64;
            // Round 0 warms the caches and the allocator; it is not counted.
            if round > 0 {
                times[i].push(ns);
            }
        }
    }

    println!("\n{rounds} rounds of {BATCH} checks per store, alternating\n");
    println!(
        "| keys in store | median ns per check | ratio to 1 key (median of per-round ratios) |"
    );
    println!("|---|---|---|");
    for (i, (n, _, _)) in cases.iter().enumerate() {
        let ratios: Vec<f64> = times[i]
            .iter()
            .zip(&times[0])
            .map(|(t, one)| t / one)
            .collect();
        println!(
            "| {n} | {:.0} | {:.2} |",
            median(times[i].clone()),
            median(ratios)
        );
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
