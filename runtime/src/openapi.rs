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
//! Without the feature the module is empty.

#[cfg(feature = "utoipa")]
pub use with_utoipa::*;

#[cfg(feature = "utoipa")]
mod with_utoipa {
    use std::borrow::Cow;

    use utoipa::openapi::path::Operation;
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::OpenApi;

    use crate::routes::DeclaredRoute;
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
            let declared: Vec<&DeclaredRoute> =
                inventory::iter::<DeclaredRoute>.into_iter().collect();
            for (path, item) in openapi.paths.paths.iter_mut() {
                let operations = [
                    ("GET", &mut item.get),
                    ("PUT", &mut item.put),
                    ("POST", &mut item.post),
                    ("DELETE", &mut item.delete),
                    ("OPTIONS", &mut item.options),
                    ("HEAD", &mut item.head),
                    ("PATCH", &mut item.patch),
                ];
                for (method, operation) in operations {
                    if let Some(operation) = operation.as_mut().filter(|op| op.security.is_none()) {
                        if let Some(requirement) =
                            declared_requirement(&declared, method, path, operation)
                        {
                            operation.security = Some(requirements(requirement));
                        }
                    }
                }
            }
        }
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

    /// The requirement of the `#[require_api_key]` handler behind an operation: same method, and
    /// the handler's name as operation id (utoipa's default) or its path as the document's path
    /// (`<id>` written `{id}`, possibly under a prefix). `None` when no handler, or handlers with
    /// different requirements, match.
    fn declared_requirement(
        declared: &[&DeclaredRoute],
        method: &str,
        path: &str,
        operation: &Operation,
    ) -> Option<ScopeRequirement> {
        let mut matching = declared.iter().filter(|d| {
            d.method.eq_ignore_ascii_case(method)
                && (operation.operation_id.as_deref() == Some(d.handler)
                    || (!d.path.is_empty() && path.ends_with(&openapi_path(d.path))))
        });
        let first = matching.next()?.requirement;
        matching.all(|d| d.requirement == first).then_some(first)
    }

    /// A Rocket path as OpenAPI writes it: `/orders/<id>?<q>` is `/orders/{id}`, `<path..>` is
    /// `{path}`.
    pub(super) fn openapi_path(rocket: &str) -> String {
        let path = rocket.split('?').next().unwrap_or_default();
        let converted = path
            .split('/')
            .map(
                |segment| match segment.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
                    Some(name) => format!("{{{}}}", name.trim_end_matches("..")),
                    None => segment.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        if converted.len() > 1 {
            converted.trim_end_matches('/').to_owned()
        } else {
            converted
        }
    }
}

#[cfg(all(test, feature = "utoipa"))]
mod tests {
    use super::with_utoipa::openapi_path;

    #[test]
    fn rocket_paths_as_openapi_writes_them() {
        assert_eq!(openapi_path("/orders"), "/orders");
        assert_eq!(openapi_path("/orders/<id>"), "/orders/{id}");
        assert_eq!(openapi_path("/files/<path..>?<q>"), "/files/{path}");
        assert_eq!(openapi_path("/"), "/");
    }
}
