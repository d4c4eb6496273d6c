//! What the validation benchmarks share: the keys, the stores and the order keys are presented in.

use rocket_api_key::{keygen::KeyDigest, scope::ScopeRequirement, ApiKeyStore};

/// The store sizes compared.
pub const SIZES: [usize; 3] = [1, 10_000, 1_000_000];
/// Keys presented in turn: a busy service's active keys, spread over the whole store.
pub const SAMPLE: usize = 4096;
/// The requirement checked after each validation, as a route's `scope = "read:orders"`.
pub const REQUIRED: ScopeRequirement = ScopeRequirement::AllOf(&["read:orders"]);

/// The plaintext of configured key `i`: 36 visible ASCII characters, like a real random key.
pub fn key(i: usize) -> String {
    format!("bench-key-{i:010}-0123456789abcdef")
}

/// A store of `n` keys, configured the recommended way (as `sha256:` digests, with a scope).
pub fn store(n: usize) -> ApiKeyStore {
    let mut builder = ApiKeyStore::builder().from_env(false);
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

/// `count` key indices spread over `0..n` (a fixed LCG: the same keys on every run).
pub fn sample_of(n: usize, count: usize) -> Vec<usize> {
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

/// The keys presented to a store of `n` keys.
pub fn presented(n: usize) -> Vec<String> {
    sample_of(n, SAMPLE).into_iter().map(key).collect()
}

/// What a protected request does once its header is read: validate, then check the scopes.
#[inline]
pub fn check(keys: &ApiKeyStore, presented: &str) {
    let key = keys
        .verify(presented, None)
        .expect("every presented key is configured");
    assert!(REQUIRED.is_met_by(&key.scopes()));
}
