//! OpenAPI documents that state each route's key and scopes (feature `utoipa`).
//!
//! Placed above a `#[utoipa::path(…)]`, `#[require_api_key]` writes the operation's security
//! requirement into it, so the document says what the route requires without a second copy
//! to keep in step:
//!
//! | attribute | `security` of the operation |
//! |---|---|
//! | `#[require_api_key]` | `[{"api_key": []}]` |
//! | `scope = "a"`, `scope = all("a", "b")` | `[{"api_key": ["a", "b"]}]` (one requirement: both) |
//! | `scope = any("a", "b")` | `[{"api_key": ["a"]}, {"api_key": ["b"]}]` (OpenAPI's "either") |
//!
//! A `security(…)` written in the `#[utoipa::path]` as well is a compile error: utoipa would
//! keep one of the two without a word. `ApiKeySecurity` completes the document: add it to
//! `#[openapi(modifiers(&API_KEY_SECURITY))]` to declare the `api_key` scheme (an API key in the
//! configured header). It also fills in the requirement of a protected operation that has none,
//! which happens when `#[utoipa::path]` is written *above* `#[require_api_key]` (utoipa then
//! expands first, and the attribute cannot reach it).
//!
//! The modifier knows a protected handler by its method and its path as written in the route
//! attribute, which is where utoipa puts the operation (`<id>` written `{id}`). Where the
//! document's path has more in front (a `context_path`, a nested document's prefix: the mount
//! base is not known to the modifier), it is taken for the handler's only when its last
//! segments are the handler's path, its operation id is the handler's name (utoipa's default),
//! and no other operation of the document could be the handler's: an unrelated
//! `/reports/export` is never given the requirement of a handler at `/export`. An operation
//! matched neither way keeps no requirement; put `#[require_api_key]` above `#[utoipa::path]`
//! and the attribute writes it into the operation itself.

use std::borrow::Cow;

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::OpenApi;

use crate::registry::{path_segments, DeclaredRoute};
use crate::scope::ScopeRequirement;
use crate::store::ApiKeyStore;

/// The name of the security scheme that operations' requirements refer to.
pub const SECURITY_SCHEME: &str = "api_key";

/// A [`utoipa::Modify`] that declares the [`SECURITY_SCHEME`] (an API key sent in a header) and
/// gives every operation of a `#[require_api_key]` handler that lacks one its requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySecurity {
    header: Cow<'static, str>,
}

/// The scheme for the default header, `x-api-key`, as utoipa's `modifiers(&…)` takes it (a
/// name, not a path): `#[openapi(modifiers(&API_KEY_SECURITY))]`. For another header, make a
/// constant of your own with [`ApiKeySecurity::header`].
pub const API_KEY_SECURITY: ApiKeySecurity = ApiKeySecurity::header("x-api-key");

impl ApiKeySecurity {
    /// The scheme for a key sent in `name`, as configured with
    /// [`ApiKeyStoreBuilder::header`](crate::ApiKeyStoreBuilder::header).
    pub const fn header(name: &'static str) -> ApiKeySecurity {
        ApiKeySecurity {
            header: Cow::Borrowed(name),
        }
    }

    /// The scheme for the header a running store reads, whatever Rocket's configuration set:
    /// apply it to a document made at run time with [`utoipa::Modify::modify`].
    pub fn of(store: &ApiKeyStore) -> ApiKeySecurity {
        ApiKeySecurity {
            header: Cow::Owned(store.config().header.clone()),
        }
    }
}

impl Default for ApiKeySecurity {
    fn default() -> Self {
        API_KEY_SECURITY
    }
}

impl utoipa::Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                SECURITY_SCHEME,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(self.header.as_ref()))),
            );
        let declared: Vec<&DeclaredRoute> = inventory::iter::<DeclaredRoute>.into_iter().collect();
        // Every operation first, to tell whether a handler's path under a prefix is one only.
        let mut documented = Vec::new();
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                if let Some(operation) = operation {
                    documented.push(Documented::of(method, path, operation));
                }
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                if let Some(operation) = operation.as_mut().filter(|op| op.security.is_none()) {
                    let this = Documented::of(method, path, operation);
                    if let Some(requirement) = declared_requirement(&declared, &this, &documented) {
                        operation.security = Some(requirements(requirement));
                    }
                }
            }
        }
    }
}

/// A path's operations, by the methods Rocket routes.
fn operations(item: &mut PathItem) -> [(&'static str, &mut Option<Operation>); 7] {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("OPTIONS", &mut item.options),
        ("HEAD", &mut item.head),
        ("PATCH", &mut item.patch),
    ]
}

/// The OpenAPI security requirements equivalent to `requirement` (the attribute writes the
/// same).
pub(crate) fn requirements(requirement: ScopeRequirement) -> Vec<SecurityRequirement> {
    match requirement {
        ScopeRequirement::AnyKey => {
            vec![SecurityRequirement::new(
                SECURITY_SCHEME,
                Vec::<String>::new(),
            )]
        }
        ScopeRequirement::AllOf(scopes) => {
            vec![SecurityRequirement::new(
                SECURITY_SCHEME,
                scopes.iter().copied(),
            )]
        }
        ScopeRequirement::AnyOf(scopes) => scopes
            .iter()
            .map(|scope| SecurityRequirement::new(SECURITY_SCHEME, [*scope]))
            .collect(),
    }
}

/// An operation of the document, as far as matching it to a handler needs.
struct Documented {
    /// `GET`, `POST`, …
    method: &'static str,
    /// The document's path, in segments.
    path: Vec<Segment>,
    /// The operation id, utoipa's default being the handler's name.
    operation_id: Option<String>,
}

impl Documented {
    /// The operation `method` of `path`.
    fn of(method: &'static str, path: &str, operation: &Operation) -> Documented {
        Documented {
            method,
            path: openapi_segments(path),
            operation_id: operation.operation_id.clone(),
        }
    }
}

/// A path segment as OpenAPI tells them apart: a parameter, whatever its name (utoipa writes
/// `<_>` as `{arg0}`, and `path = …` may rename), or fixed text.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    /// `{id}` in OpenAPI, `<id>` or `<path..>` in Rocket.
    Parameter,
    /// Anything else, compared as written.
    Fixed(String),
}

/// The requirement of the `#[require_api_key]` handler behind an operation (see the module
/// docs for the rule). `None` when no handler, or handlers with different requirements,
/// match.
fn declared_requirement(
    declared: &[&DeclaredRoute],
    operation: &Documented,
    documented: &[Documented],
) -> Option<ScopeRequirement> {
    let mut matching = declared.iter().filter(|d| {
        if d.path.is_empty() {
            return false;
        }
        let own = rocket_segments(d.path);
        let could_be = |op: &Documented| {
            d.has_method(op.method)
                && (op.path == own
                    || (op.path.ends_with(&own) && op.operation_id.as_deref() == Some(d.handler)))
        };
        could_be(operation)
            && (operation.path == own || documented.iter().filter(|op| could_be(op)).count() == 1)
    });
    let first = matching.next()?.requirement;
    matching.all(|d| d.requirement == first).then_some(first)
}

/// A path as written in a Rocket route attribute, as the segments OpenAPI writes for it: the
/// query left out, `<id>` and `<path..>` a parameter each.
fn rocket_segments(rocket: &str) -> Vec<Segment> {
    let path = rocket.split('?').next().unwrap_or_default();
    segments(path, |segment| {
        segment.starts_with('<') && segment.ends_with('>')
    })
}

/// A path of an OpenAPI document, in segments: `{id}` a parameter.
fn openapi_segments(path: &str) -> Vec<Segment> {
    segments(path, |segment| {
        segment.starts_with('{') && segment.ends_with('}')
    })
}

/// The segments of `path`, each a parameter or fixed text.
fn segments(path: &str, is_parameter: impl Fn(&str) -> bool) -> Vec<Segment> {
    path_segments(path)
        .map(|segment| {
            if is_parameter(segment) {
                Segment::Parameter
            } else {
                Segment::Fixed(segment.to_owned())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{openapi_segments, rocket_segments, Segment};

    #[test]
    fn rocket_paths_as_openapi_writes_them() {
        let fixed = |s: &str| Segment::Fixed(s.to_owned());
        assert_eq!(rocket_segments("/orders"), [fixed("orders")]);
        assert_eq!(
            rocket_segments("/orders/<id>"),
            [fixed("orders"), Segment::Parameter]
        );
        assert_eq!(
            rocket_segments("/files/<path..>?<q>"),
            [fixed("files"), Segment::Parameter]
        );
        assert_eq!(rocket_segments("/"), []);
        for (rocket, openapi) in [
            ("/orders/<id>", "/orders/{id}"),
            ("/orders/<_>", "/orders/{arg0}"),
            ("/files/<path..>", "/files/{path}"),
            ("/orders/", "/orders"),
        ] {
            assert_eq!(
                rocket_segments(rocket),
                openapi_segments(openapi),
                "{rocket}"
            );
        }
        assert_ne!(
            rocket_segments("/export"),
            openapi_segments("/reports/export")
        );
        assert_ne!(rocket_segments("/port"), openapi_segments("/export"));
    }
}
