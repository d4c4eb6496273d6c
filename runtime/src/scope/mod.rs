//! Scopes: what a key may do, and what a route requires of it; the same requirements spelled as
//! types for `#[require_api_key]` are in `types.rs`.

use std::fmt;

pub(crate) mod types;

/// The longest scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 64;

/// Checks the scope grammar: 1 to 64 characters of `A-Z a-z 0-9 _ . : / -`.
///
/// The `#[require_api_key]` attribute applies the same rule at compile time, so a route can never
/// require a scope that no key could be configured with.
///
/// ```
/// use rocket_api_key::scope::is_valid_scope;
///
/// assert!(is_valid_scope("read:orders"));
/// assert!(!is_valid_scope("read orders"));
/// assert!(!is_valid_scope(""));
/// ```
pub fn is_valid_scope(scope: &str) -> bool {
    (1..=MAX_SCOPE_LEN).contains(&scope.len())
        && scope
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-'))
}

/// What a route requires of a key's scopes.
///
/// Built by `#[require_api_key]` from its `scope = …` argument; rarely written by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeRequirement {
    /// Any valid key will do.
    AnyKey,
    /// The key must have every one of these scopes (`scope = "a"`, `scope = all("a", "b")`).
    AllOf(&'static [&'static str]),
    /// The key must have at least one of these scopes (`scope = any("a", "b")`).
    AnyOf(&'static [&'static str]),
}

impl ScopeRequirement {
    /// Whether a key holding `granted` meets this requirement.
    ///
    /// ```
    /// use rocket_api_key::scope::ScopeRequirement;
    ///
    /// let granted = ["read:orders".to_owned()];
    /// assert!(ScopeRequirement::AllOf(&["read:orders"]).is_met_by(&granted));
    /// assert!(!ScopeRequirement::AnyOf(&["write:orders", "admin"]).is_met_by(&granted));
    /// ```
    pub fn is_met_by<S: AsRef<str>>(&self, granted: &[S]) -> bool {
        let has = |scope: &&str| granted.iter().any(|g| g.as_ref() == *scope);
        match self {
            ScopeRequirement::AnyKey => true,
            ScopeRequirement::AllOf(required) => required.iter().all(has),
            ScopeRequirement::AnyOf(required) => required.iter().any(has),
        }
    }

    /// The scopes named by the requirement (empty for [`ScopeRequirement::AnyKey`]).
    pub fn scopes(&self) -> &'static [&'static str] {
        match self {
            ScopeRequirement::AnyKey => &[],
            ScopeRequirement::AllOf(s) | ScopeRequirement::AnyOf(s) => s,
        }
    }

    /// `"all"` or `"any"`: how [`scopes`](Self::scopes) combine (`"any"` for `AnyKey`).
    pub fn combinator(&self) -> &'static str {
        match self {
            ScopeRequirement::AllOf(_) => "all",
            ScopeRequirement::AnyOf(_) | ScopeRequirement::AnyKey => "any",
        }
    }
}

impl fmt::Display for ScopeRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeRequirement::AnyKey => f.write_str("any valid key"),
            ScopeRequirement::AllOf(s) => write!(f, "all({})", s.join(", ")),
            ScopeRequirement::AnyOf(s) => write!(f, "any({})", s.join(", ")),
        }
    }
}

/// A type that carries a route's [`ScopeRequirement`], for the [`Authorized`](crate::Authorized)
/// guard.
///
/// `#[require_api_key(scope = …)]` names a hidden type implementing this trait, one per distinct
/// scope requirement (handlers requiring the same scopes share it). Implement it by hand only to
/// use [`Authorized`](crate::Authorized) without the attribute:
///
/// ```
/// use rocket_api_key::{scope::RequiredScopes, scope::ScopeRequirement};
///
/// struct ReadOrders;
///
/// impl RequiredScopes for ReadOrders {
///     const REQUIREMENT: ScopeRequirement = ScopeRequirement::AllOf(&["read:orders"]);
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not describe a scope requirement",
    label = "not a scope requirement",
    note = "use `#[require_api_key(scope = \"…\")]` on the handler, or implement `RequiredScopes` for `{Self}`"
)]
pub trait RequiredScopes: Send + Sync + 'static {
    /// The scopes a key needs to pass.
    const REQUIREMENT: ScopeRequirement;
}

/// The requirement of `#[require_api_key]` without arguments: any valid key.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyKey;

impl RequiredScopes for AnyKey {
    const REQUIREMENT: ScopeRequirement = ScopeRequirement::AnyKey;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_grammar() {
        assert!(is_valid_scope("a"));
        assert!(is_valid_scope("read:orders/v1.2-beta_x"));
        assert!(is_valid_scope(&"x".repeat(64)));
        assert!(!is_valid_scope(&"x".repeat(65)));
        for bad in ["", "a b", "a,b", "a;b", "é", "a\n", "a*"] {
            assert!(!is_valid_scope(bad), "{bad:?}");
        }
    }

    #[test]
    fn requirements() {
        let granted = ["a", "b"];
        assert!(ScopeRequirement::AnyKey.is_met_by::<&str>(&[]));
        assert!(ScopeRequirement::AllOf(&["a", "b"]).is_met_by(&granted));
        assert!(!ScopeRequirement::AllOf(&["a", "c"]).is_met_by(&granted));
        assert!(ScopeRequirement::AnyOf(&["c", "b"]).is_met_by(&granted));
        assert!(!ScopeRequirement::AnyOf(&["c", "d"]).is_met_by(&granted));
        assert!(!ScopeRequirement::AllOf(&["a"]).is_met_by::<&str>(&[]));
    }
}
