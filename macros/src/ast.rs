//! A typed view of the item under `#[require_api_key]`: is it a handler, and what does it hold.

use syn::{Attribute, FnArg, Ident, Item, ItemFn, Pat, Receiver};

/// Rocket's route attributes, matched by the last path segment so `#[rocket::get]` counts too.
pub(crate) const ROUTE_ATTRIBUTES: &[&str] = &[
    "get", "post", "put", "delete", "patch", "head", "options", "route",
];

/// The function under the attribute, as far as `#[require_api_key]` is concerned.
pub(crate) struct Handler<'a> {
    /// The first Rocket route attribute below ours, if any.
    pub(crate) route: Option<&'a Attribute>,
    /// A `#[catch]` below ours, if any.
    pub(crate) catcher: Option<&'a Attribute>,
    /// Further `#[require_api_key]`s below ours.
    pub(crate) repeated: Vec<&'a Attribute>,
    pub(crate) receiver: Option<&'a Receiver>,
    /// The parameters written `name: Type` (Rocket accepts no other form).
    pub(crate) params: Vec<&'a Ident>,
}

impl<'a> Handler<'a> {
    pub(crate) fn from_fn(item: &'a ItemFn) -> Self {
        Handler {
            route: item.attrs.iter().find(|attr| {
                ROUTE_ATTRIBUTES
                    .iter()
                    .any(|name| last_segment_is(attr, name))
            }),
            catcher: item
                .attrs
                .iter()
                .find(|attr| last_segment_is(attr, "catch")),
            repeated: item
                .attrs
                .iter()
                .filter(|attr| last_segment_is(attr, "require_api_key"))
                .collect(),
            receiver: item.sig.receiver(),
            params: item
                .sig
                .inputs
                .iter()
                .filter_map(|arg| match arg {
                    FnArg::Typed(typed) => match &*typed.pat {
                        Pat::Ident(pat) => Some(&pat.ident),
                        _ => None,
                    },
                    FnArg::Receiver(_) => None,
                })
                .collect(),
        }
    }
}

fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == name)
}

/// How to name an item that is not a function, for "cannot be used on a struct".
pub(crate) fn describe(item: &Item) -> &'static str {
    match item {
        Item::Const(_) => "a constant",
        Item::Enum(_) => "an enum",
        Item::ExternCrate(_) => "an `extern crate`",
        Item::Fn(_) => "a function",
        Item::ForeignMod(_) => "an `extern` block",
        Item::Impl(_) => "an `impl` block",
        Item::Macro(_) => "a macro",
        Item::Mod(_) => "a module",
        Item::Static(_) => "a static",
        Item::Struct(_) => "a struct",
        Item::Trait(_) => "a trait",
        Item::TraitAlias(_) => "a trait alias",
        Item::Type(_) => "a type alias",
        Item::Union(_) => "a union",
        Item::Use(_) => "a `use` declaration",
        _ => "this item",
    }
}
