//! The `tracing` target of every event of this crate.

/// The target of every event of this crate: filter with `RUST_LOG=rocket_api_key=debug`.
pub const TARGET: &str = "rocket_api_key";
