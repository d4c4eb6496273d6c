//! The `#[require_api_key]` attribute of [`rocket-api-key`](https://docs.rs/rocket-api-key).
//!
//! Use it through the `rocket-api-key` crate, which re-exports it as
//! `rocket_api_key::require_api_key` and provides the runtime it expands to.

mod ast;
mod attr;
mod errors;
mod expand;
mod fallback;
mod suggest;
mod valid;

use proc_macro::TokenStream;

/// Requires a valid API key, optionally with scopes, before a Rocket handler runs.
///
/// ```
/// # fn main() {}
/// use rocket::get;
/// use rocket_api_key::require_api_key;
///
/// #[require_api_key(scope = "read:orders")]
/// #[get("/orders")]
/// async fn list_orders() -> &'static str {
///     "[]"
/// }
/// ```
///
/// A request without a valid key (in the `x-api-key` header, unless configured otherwise) gets
/// `401 Unauthorized`; a valid key that lacks the required scopes, or is used from outside its
/// `ips`, gets `403 Forbidden`; a key over its `rate=`, or a client over the configured
/// `failure_limit`, gets `429 Too Many Requests`. The handler itself, and every other guard of
/// the route, runs only for requests that pass.
///
/// # Arguments
///
/// | Written                                       | Accepts a request whose key…  |
/// |-----------------------------------------------|-------------------------------|
/// | `#[require_api_key]`                          | is valid                      |
/// | `#[require_api_key(scope = "a")]`             | has scope `a`                 |
/// | `#[require_api_key(scope = all("a", "b"))]`   | has every listed scope        |
/// | `#[require_api_key(scope = any("a", "b"))]`   | has at least one listed scope |
///
/// `all(…)` and `any(…)` take one or more string literals and do not nest.
///
/// A scope is 1 to 64 characters of `A-Z a-z 0-9 _ . : / -`, such as `read:orders` or
/// `billing/v2.write`. Configured keys follow the same rule (`rocket_api_key::scope::is_valid_scope`),
/// so a route can never require a scope no key could have.
///
/// `crate = "path"` names the `rocket-api-key` crate when it was renamed in `Cargo.toml`
/// (default: `::rocket_api_key`), as serde's `#[serde(crate = "…")]` does:
///
/// ```
/// # fn main() {}
/// # extern crate rocket_api_key as keys;
/// use keys::require_api_key;
/// use rocket::get;
///
/// #[require_api_key(scope = "admin", crate = "keys")]
/// #[get("/admin")]
/// fn admin() {}
/// ```
///
/// # Placement: above the route attribute
///
/// Attribute macros expand from the outermost (top) one inward, each seeing the item the
/// previous one produced. `#[require_api_key]` must therefore come *before* `#[get]`, `#[post]`,
/// `#[put]`, `#[delete]`, `#[patch]`, `#[head]`, `#[options]` or `#[route]` (bare or as
/// `#[rocket::get]`…): the route attribute has to see the guard parameter this attribute adds.
/// Written below, it would run after Rocket had already generated the route without the guard,
/// so it refuses to compile instead of silently leaving the route unprotected.
///
/// # What it generates
///
/// The handler is kept as written (name, visibility, attributes, body) with one request guard
/// inserted as its *first* parameter:
///
/// ```text
/// #[doc(hidden)]
/// #[allow(non_camel_case_types)]
/// type __require_api_key_scopes_list_orders = ::rocket_api_key::__private::AllOf<(
///     ::rocket_api_key::__private::Scope<0x726561643a6f72646572730000000000>,
/// )>;
///
/// #[get("/orders")]
/// async fn list_orders(
///     __require_api_key:
///         ::rocket_api_key::__private::Authorized<__require_api_key_scopes_list_orders>,
/// ) -> &'static str { "[]" }
/// ```
///
/// The hidden alias names a type built from the scopes themselves (`AllOf` or `AnyOf` of one
/// `Scope` per scope, its bytes packed into hexadecimal `u128`s): the type implements
/// `RequiredScopes` with `ScopeRequirement::AllOf(&["read:orders"])`, and every handler requiring
/// the same scopes names the same type, so `Authorized<…>`'s guard and Rocket's checks are
/// compiled once for all of them, not once per handler. (A list of more than 8 scopes gets a
/// hidden struct of its own, implementing `RequiredScopes` directly.)
///
/// Rocket runs request guards in parameter order and before path, query and data guards, so a
/// request without a valid key is rejected before anything else is parsed, and before the body
/// is read. The hidden alias has the handler's visibility, and is omitted for the bare attribute.
/// `uri!` takes the handler's original arguments, since Rocket leaves request guards out of it.
///
/// The handler may still declare its own guards, including `rocket_api_key::ApiKey` to learn
/// which key was used:
///
/// ```
/// # fn main() {}
/// use rocket::get;
/// use rocket_api_key::{require_api_key, ApiKey};
///
/// #[require_api_key(scope = any("read:orders", "admin"))]
/// #[get("/orders/<id>?<verbose>")]
/// fn order(key: ApiKey, id: u64, verbose: Option<bool>) -> String {
///     format!("order {id} for {} (verbose: {verbose:?})", key.name())
/// }
/// ```
///
/// # Errors
///
/// Misuse is a compile error pointing at the offending token, and every error is reported in
/// the same build. Among them:
///
/// ```compile_fail
/// # fn main() {}
/// # use rocket::get;
/// # use rocket_api_key::require_api_key;
/// #[get("/orders")]
/// #[require_api_key] // error: `#[require_api_key]` must be placed above the route attribute
/// fn list_orders() {}
/// ```
///
/// ```compile_fail
/// # fn main() {}
/// # use rocket::get;
/// # use rocket_api_key::require_api_key;
/// #[require_api_key(scopes = "read")] // error: unknown argument `scopes`; did you mean `scope`?
/// #[get("/orders")]
/// fn list_orders() {}
/// ```
///
/// ```compile_fail
/// # fn main() {}
/// # use rocket::get;
/// # use rocket_api_key::require_api_key;
/// #[require_api_key(scope = "read orders")] // error: scope `read orders` contains a space
/// #[get("/orders")]
/// fn list_orders() {}
/// ```
///
/// The others: use on something other than a function, on a `#[catch]` catcher or on a method
/// taking `self`; the attribute applied twice; `scope` given twice or not as a string literal;
/// an empty scope, a duplicate scope in a list, an empty `all()`/`any()`; and a handler
/// parameter named `__require_api_key`, which is reserved.
#[proc_macro_attribute]
pub fn require_api_key(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::require_api_key(args.into(), item.into()).into()
}
