//! Which configured keys reach which mounted routes: the launch audit.
//!
//! A one-character typo in a scope (`read:order` on a key, `read:orders` on a route) locks a
//! client out, or a route away from every client, and nothing says so until someone calls. At
//! liftoff, and after every reload that changes the keys, the fairing compares the requirements of
//! the mounted routes with the configured keys and logs, under [`LOG_TARGET`](crate::LOG_TARGET):
//!
//! - one `INFO` event, `API key audit`, listing each protected route with its requirement and
//!   the number of keys that pass it;
//! - a `WARN`, `no configured key can pass this route`, for each route no unexpired key passes;
//! - a `WARN`, `configured scope that no mounted route requires`, for each scope given to a key
//!   that no mounted guard asks for, with the closest required scope when one is within two
//!   edits.
//!
//! [`Audit::of`] returns the same findings as data, for tests and admin pages.
//!
//! # How the requirements reach the runtime
//!
//! A requirement is known at compile time, but Rocket's public API does not show a route's
//! request guards once it is mounted (`Route::sentinels` is private). Two mechanisms together
//! recover it:
//!
//! - **A registry filled by the attribute.** Each `#[require_api_key]` expansion submits a
//!   `DeclaredRoute` (handler name, method, path as written, requirement) with `inventory`,
//!   a static list linked into the binary, built before `main` and never changed after. At
//!   liftoff each mounted route is matched to its entry by handler name, method and whole path
//!   without the mount base, segment by segment: an unprotected `public::export` at
//!   `#[get("/download")]` is not taken for a protected `admin::export` at `#[get("/export")]`.
//!   A route mounted twice is listed twice. Rocket keeps nothing else of a handler, so two
//!   handlers with the same name, method and path as written (in two modules, mounted at two
//!   bases) cannot be told apart: if one of them only is protected, both are listed.
//! - **Sentinels, for the scopes.** Rocket asks every request guard type of every mounted
//!   route whether to abort at ignite. [`Authorized<S>`](crate::Authorized) answers no (when a
//!   store is attached), noting `S`'s requirement on the way. This sees hand-written
//!   `Authorized<MyScopes>` guards too, so a scope they require is never reported as unused.
//!
//! Why not only one of them: the registry cannot tell which declared handlers are mounted
//! (it knows every handler in the binary), and a sentinel is asked once per guard *type*,
//! which the attribute shares between handlers requiring the same scopes, so it cannot name
//! routes. Scopes checked in handler code (`key.has_scope(…)`) are seen by neither.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

use crate::entry::edit_distance;
use crate::scope::ScopeRequirement;
use crate::store::ApiKeyStore;
use crate::target::TARGET;

/// The largest edit distance at which a required scope is suggested for an unused one.
const SUGGESTION_DISTANCE: usize = 2;

/// What the audit found: every protected route, and every configured scope no route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Audit {
    /// The mounted routes declared with `#[require_api_key]`, in Rocket's order.
    pub routes: Vec<RouteAudit>,
    /// Scopes given to keys that no mounted guard requires, sorted.
    pub unused_scopes: Vec<UnusedScope>,
}

/// One protected route and the keys that pass it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteAudit {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path as mounted, e.g. `/api/orders/<id>`.
    pub path: String,
    /// The handler's name.
    pub handler: String,
    /// What the route requires.
    pub requirement: ScopeRequirement,
    /// The names of the unexpired keys whose scopes meet the requirement, sorted. A key with an
    /// address allowlist counts: the audit cannot know where clients will call from.
    pub keys: Vec<String>,
}

/// A scope some keys have that no mounted route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnusedScope {
    /// The scope.
    pub scope: String,
    /// The keys that have it, sorted.
    pub keys: Vec<String>,
    /// The closest scope a route does require, when one is within two edits: likely what was
    /// meant.
    pub suggestion: Option<String>,
}

impl Audit {
    /// Compares the routes the store's fairing found at liftoff with the keys the store holds
    /// now. Before liftoff (or without the fairing) there are no routes, and no scope is reported
    /// unused: nothing is known to require any.
    pub fn of(store: &ApiKeyStore) -> Audit {
        let now = OffsetDateTime::now_utc();
        let keys = store.keys();
        let routes = store
            .routes()
            .into_iter()
            .map(|route| {
                let mut passing: Vec<String> = keys
                    .iter()
                    .filter(|key| key.expires().is_none_or(|at| at > now))
                    .filter(|key| route.requirement.is_met_by(key.granted()))
                    .map(|key| key.name().to_owned())
                    .collect();
                passing.sort();
                RouteAudit {
                    method: route.method,
                    path: route.path,
                    handler: route.handler,
                    requirement: route.requirement,
                    keys: passing,
                }
            })
            .collect::<Vec<_>>();

        let mut required: Vec<&str> = store
            .requirements()
            .iter()
            .chain(routes.iter().map(|route| &route.requirement))
            .flat_map(|requirement| requirement.scopes().iter().copied())
            .collect();
        required.sort_unstable();
        required.dedup();

        let mut granted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for key in &keys {
            for scope in key.granted() {
                granted
                    .entry(&**scope)
                    .or_default()
                    .push(key.name().to_owned());
            }
        }
        let anything_required = !routes.is_empty() || !store.requirements().is_empty();
        let unused_scopes = granted
            .into_iter()
            .filter(|(scope, _)| anything_required && !required.contains(scope))
            .map(|(scope, mut keys)| {
                keys.sort();
                UnusedScope {
                    scope: scope.to_owned(),
                    keys,
                    suggestion: closest(scope, &required).map(str::to_owned),
                }
            })
            .collect();
        Audit {
            routes,
            unused_scopes,
        }
    }

    /// The routes no configured, unexpired key can pass.
    pub fn unreachable(&self) -> impl Iterator<Item = &RouteAudit> {
        self.routes.iter().filter(|route| route.keys.is_empty())
    }

    /// Logs the findings: one `INFO` event listing the routes, a `WARN` per unreachable route
    /// and per unused scope.
    pub fn log(&self) {
        if !self.routes.is_empty() {
            let listed = self
                .routes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            tracing::info!(
                target: TARGET,
                routes = self.routes.len(),
                listed = %listed,
                "API key audit"
            );
        }
        for route in self.unreachable() {
            tracing::warn!(
                target: TARGET,
                route = %format_args!("{} {}", route.method, route.path),
                requirement = %route.requirement,
                "no configured key can pass this route"
            );
        }
        for unused in &self.unused_scopes {
            tracing::warn!(
                target: TARGET,
                scope = %unused.scope,
                keys = %unused.keys.join(", "),
                did_you_mean = unused.suggestion.as_deref(),
                "configured scope that no mounted route requires"
            );
        }
    }
}

impl fmt::Display for RouteAudit {
    /// `GET /orders (all(read:orders)): 2 keys`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.keys.len();
        let plural = if count == 1 { "" } else { "s" };
        write!(
            f,
            "{} {} ({}): {count} key{plural}",
            self.method, self.path, self.requirement
        )
    }
}

/// The required scope closest to `scope`, if within [`SUGGESTION_DISTANCE`] edits.
fn closest<'a>(scope: &str, required: &[&'a str]) -> Option<&'a str> {
    required
        .iter()
        .map(|candidate| (edit_distance(scope, candidate), *candidate))
        .filter(|(distance, _)| *distance <= SUGGESTION_DISTANCE)
        .min()
        .map(|(_, candidate)| candidate)
}
