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

/// The mounted routes the attribute protects, in Rocket's order, and the routes that match
/// several declared handlers with different requirements (rare: two handlers of the same name,
/// method and path in different modules).
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
        let unmounted = route.uri.unmounted_origin.to_string();
        let matching: Vec<&&DeclaredRoute> = declared
            .iter()
            .filter(|d| d.handler == name && d.declares(method, &unmounted))
            .collect();
        let Some(first) = matching.first() else {
            continue;
        };
        let mounted = format!("{} {}", method, route.uri);
        if matching.iter().any(|d| d.requirement != first.requirement) {
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

impl DeclaredRoute {
    /// Whether the attribute declared this method and path: a mounted route's, as Rocket keeps it
    /// without its base (`Route::uri.unmounted_origin`). The whole path and query, segment by
    /// segment: a handler of the same name elsewhere (`public::export` beside `admin::export`)
    /// is another route unless it was written with the same method and path too. A path the
    /// attribute could not read matches nothing, so that no route is called protected on its
    /// name alone.
    pub(crate) fn declares(&self, method: &str, unmounted: &str) -> bool {
        self.has_method(method) && !self.path.is_empty() && same_uri(self.path, unmounted)
    }

    /// Whether the route attribute declared `method` (any, when the attribute did not spell one
    /// out that could be read).
    pub(crate) fn has_method(&self, method: &str) -> bool {
        self.method.is_empty() || self.method.eq_ignore_ascii_case(method)
    }
}

/// Whether two route URIs are the same, as Rocket compares them once normalised: empty segments
/// (`//`, a trailing `/`) dropped, in the path and in the query. Dynamic segments compare by
/// name too (`<id>` is not `<key>`): Rocket keeps the text written in the attribute.
pub(crate) fn same_uri(a: &str, b: &str) -> bool {
    let (a_path, a_query) = a.split_once('?').unwrap_or((a, ""));
    let (b_path, b_query) = b.split_once('?').unwrap_or((b, ""));
    path_segments(a_path).eq(path_segments(b_path))
        && segments(a_query, '&').eq(segments(b_query, '&'))
}

/// The segments of a path, without the empty ones Rocket's normalisation drops.
pub(crate) fn path_segments(path: &str) -> impl Iterator<Item = &str> + Clone {
    segments(path, '/')
}

fn segments(text: &str, separator: char) -> impl Iterator<Item = &str> + Clone {
    text.split(separator).filter(|segment| !segment.is_empty())
}

#[cfg(test)]
mod tests {
    use super::same_uri;

    #[test]
    fn uris_compare_whole_and_segment_by_segment() {
        for (a, b) in [
            ("/orders/<id>", "/orders/<id>"),
            ("/orders/", "/orders"),
            ("//a//b/", "/a/b"),
            ("/", "/"),
            ("/search?<q>&&a=1", "/search?<q>&a=1"),
        ] {
            assert!(same_uri(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("/download", "/public/download"),
            ("/export", "/reports/export"),
            ("/reports/export", "/export"),
            ("/a", "/ab"),
            ("/orders/<id>", "/orders/<key>"),
            ("/files/<path..>", "/files/<path>"),
            ("/search?<q>", "/search"),
            ("/search?a=1", "/search?a=2"),
        ] {
            assert!(!same_uri(a, b), "{a} {b}");
        }
    }
}
