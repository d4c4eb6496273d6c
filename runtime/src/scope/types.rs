//! Scope requirements spelled as types, for `#[require_api_key]`: not a public API.
//!
//! The attribute cannot give two handlers the same hand-named type (a proc macro sees one
//! handler at a time, and two declarations of one name in a module collide), yet every distinct
//! `Authorized<S>` costs compile time: its guard, its boxed future and Rocket's sentinel checks
//! are instantiated once per `S`. So the type is built from the scopes themselves:
//! `AllOf<(Scope<…>, Scope<…>)>`, each scope's bytes packed into `u128`s. Two handlers requiring
//! the same scopes name the same type wherever they are, and share every instantiation, as
//! hand-written `RequiredScopes` types shared between handlers would.

use std::marker::PhantomData;

use super::{RequiredScopes, ScopeRequirement, MAX_SCOPE_LEN};

/// Bytes of a scope in one `u128`.
const CHUNK: usize = 16;

/// One scope: its UTF-8 bytes, big-endian, 16 to a parameter, zero-padded (a scope never
/// contains a NUL byte). `B`, `C` and `D` are needed only past 16, 32 and 48 bytes.
pub struct Scope<const A: u128, const B: u128 = 0, const C: u128 = 0, const D: u128 = 0>;

/// The scope a [`Scope`] type stands for.
pub trait ScopeName: 'static {
    /// The scope.
    const NAME: &'static str;
}

impl<const A: u128, const B: u128, const C: u128, const D: u128> Scope<A, B, C, D> {
    // The tail of a constant's initializer: the array lives for `'static`.
    const BYTES: &'static [u8; MAX_SCOPE_LEN] = &unpack([A, B, C, D]);
}

impl<const A: u128, const B: u128, const C: u128, const D: u128> ScopeName for Scope<A, B, C, D> {
    const NAME: &'static str = trimmed(Self::BYTES);
}

const fn unpack(chunks: [u128; 4]) -> [u8; MAX_SCOPE_LEN] {
    let mut bytes = [0; MAX_SCOPE_LEN];
    let mut i = 0;
    while i < MAX_SCOPE_LEN {
        bytes[i] = chunks[i / CHUNK].to_be_bytes()[i % CHUNK];
        i += 1;
    }
    bytes
}

/// The bytes up to the first NUL, as a string.
const fn trimmed(bytes: &'static [u8; MAX_SCOPE_LEN]) -> &'static str {
    let mut len = 0;
    while len < MAX_SCOPE_LEN && bytes[len] != 0 {
        len += 1;
    }
    match std::str::from_utf8(bytes.split_at(len).0) {
        Ok(name) => name,
        Err(_) => panic!("a packed scope is not UTF-8"),
    }
}

/// The scopes of a tuple of [`Scope`] types, in order.
pub trait ScopeList: 'static {
    /// The scopes.
    const NAMES: &'static [&'static str];
}

macro_rules! scope_lists {
    ($($($name:ident)+;)+) => {$(
        impl<$($name: ScopeName),+> ScopeList for ($($name,)+) {
            const NAMES: &'static [&'static str] = &[$($name::NAME),+];
        }
    )+};
}

// Up to 8 scopes (the attribute's `MAX_TYPED_SCOPES`); a longer list gets a hidden type of its own.
scope_lists! {
    S0;
    S0 S1;
    S0 S1 S2;
    S0 S1 S2 S3;
    S0 S1 S2 S3 S4;
    S0 S1 S2 S3 S4 S5;
    S0 S1 S2 S3 S4 S5 S6;
    S0 S1 S2 S3 S4 S5 S6 S7;
}

/// Requires every scope of `L`: [`ScopeRequirement::AllOf`].
pub struct AllOf<L>(PhantomData<fn() -> L>);

/// Requires one of the scopes of `L`: [`ScopeRequirement::AnyOf`].
pub struct AnyOf<L>(PhantomData<fn() -> L>);

impl<L: ScopeList> RequiredScopes for AllOf<L> {
    const REQUIREMENT: ScopeRequirement = ScopeRequirement::AllOf(L::NAMES);
}

impl<L: ScopeList> RequiredScopes for AnyOf<L> {
    const REQUIREMENT: ScopeRequirement = ScopeRequirement::AnyOf(L::NAMES);
}

#[cfg(test)]
mod tests {
    use super::*;

    // What the attribute writes for "read:orders": the bytes, big-endian, zero-padded.
    const READ_ORDERS: u128 = u128::from_be_bytes(*b"read:orders\0\0\0\0\0");

    #[test]
    fn scopes_unpack() {
        assert_eq!(<Scope<READ_ORDERS>>::NAME, "read:orders");
        assert_eq!(
            <Scope<{ u128::from_be_bytes(*b"0123456789abcdef") }>>::NAME,
            "0123456789abcdef"
        );
        let long = "x".repeat(MAX_SCOPE_LEN);
        const X: u128 = u128::from_be_bytes([b'x'; 16]);
        assert_eq!(<Scope<X, X, X, X>>::NAME, long);
        const TAIL: u128 = u128::from_be_bytes(*b"yz\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(<Scope<X, TAIL>>::NAME, "xxxxxxxxxxxxxxxxyz");
    }

    #[test]
    fn lists_keep_their_order() {
        const ADMIN: u128 = u128::from_be_bytes(*b"admin\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(
            <AllOf<(Scope<READ_ORDERS>,)>>::REQUIREMENT,
            ScopeRequirement::AllOf(&["read:orders"])
        );
        assert_eq!(
            <AnyOf<(Scope<ADMIN>, Scope<READ_ORDERS>)>>::REQUIREMENT,
            ScopeRequirement::AnyOf(&["admin", "read:orders"])
        );
        assert_eq!(
            <AllOf<(Scope<READ_ORDERS>, Scope<ADMIN>)>>::REQUIREMENT,
            ScopeRequirement::AllOf(&["read:orders", "admin"])
        );
    }
}
