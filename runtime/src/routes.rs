//! Which mounted routes require a key, and what each requires: what the launch audit compares
//! with the configured keys.
//!
//! How the requirements are found, and why this way, is explained in the public
//! [`audit`](crate::audit) module.

use rocket::Route;

use crate::scope::ScopeRequirement;

/// A handler `#[require_api_key]` protects, as the attribute saw it: not a public API.
#[derive(Debug)]
pub struct DeclaredRoute {
    /// The handler function's name, which Rocket gives the route.
    pub handler: &'static str,
    /// The method in upper case, as in the route attribute (`GET`), or empty if it was not
    /// spelled out there.
    pub method: &'static str,
    /// The path as written in the route attribute, or empty if it could not be read.
    pub path: &'static str,
    /// What the attribute requires.
    pub requirement: ScopeRequirement,
}

inventory::collect!(DeclaredRoute);

/// A mounted route that requires a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProtectedRoute {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path as mounted, e.g. `/api/orders/<id>`.
    pub path: String,
    /// The handler's name.
    pub handler: String,
    pub requirement: ScopeRequirement,
}

/// The mounted routes the attribute protects, in Rocket's order, and the routes whose handler
/// name and method match several declared handlers with different requirements (rare: two
/// handlers of the same name and path in different modules).
pub(crate) fn protected<'a>(
    routes: impl Iterator<Item = &'a Route>,
) -> (Vec<ProtectedRoute>, Vec<String>) {
    let declared: Vec<&DeclaredRoute> = inventory::iter::<DeclaredRoute>.into_iter().collect();
    let mut protected = Vec::new();
    let mut ambiguous = Vec::new();
    for route in routes {
        let Some(name) = route.name.as_deref() else {
            continue;
        };
        let method = route.method.as_str();
        let candidates: Vec<&&DeclaredRoute> = declared
            .iter()
            .filter(|d| d.handler == name && (d.method.is_empty() || d.method == method))
            .collect();
        let unmounted = route.uri.unmounted_origin.to_string();
        let narrowed: Vec<&&DeclaredRoute> = match candidates.len() {
            0 | 1 => candidates,
            _ => candidates
                .into_iter()
                .filter(|d| same_path(d.path, &unmounted))
                .collect(),
        };
        let Some(first) = narrowed.first() else {
            continue;
        };
        let mounted = format!("{} {}", method, route.uri);
        if narrowed.iter().any(|d| d.requirement != first.requirement) {
            ambiguous.push(mounted);
            continue;
        }
        protected.push(ProtectedRoute {
            method: method.to_owned(),
            path: route.uri.to_string(),
            handler: name.to_owned(),
            requirement: first.requirement,
        });
    }
    (protected, ambiguous)
}

/// Whether a path as written in a route attribute is the route's unmounted URI, up to a
/// trailing slash.
fn same_path(written: &str, unmounted: &str) -> bool {
    written.trim_end_matches('/') == unmounted.trim_end_matches('/')
}
