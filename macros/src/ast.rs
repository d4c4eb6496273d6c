//! A typed view of the item under `#[require_api_key]`: is it a handler, and what does it hold.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, FnArg, Ident, Item, Pat, Receiver, Signature, Visibility};

/// Rocket's route attributes, matched by the last path segment so `#[rocket::get]` counts too.
pub(crate) const ROUTE_ATTRIBUTES: &[&str] = &[
    "get", "post", "put", "delete", "patch", "head", "options", "route",
];

/// A function item, read only as far as the attribute needs: the body is kept as tokens.
///
/// The body is most of a handler's tokens and the attribute never looks inside it, so it is split
/// off before syn sees the rest and passed through as it came: parsing it and printing it back,
/// as `syn::ItemFn` would, costs every build that expands the attribute (proc macros of a
/// dependency run unoptimised in debug builds) for nothing.
pub(crate) struct HandlerFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// `{ … }`, untouched.
    pub(crate) body: TokenStream,
}

impl HandlerFn {
    /// Reads `input`; an error saying why when it is not a function.
    pub(crate) fn parse(input: TokenStream) -> syn::Result<Self> {
        let mut head: Vec<TokenTree> = input.clone().into_iter().collect();
        if let Some(TokenTree::Group(body)) = head.last() {
            if body.delimiter() == Delimiter::Brace {
                let body = head.pop().map(TokenStream::from).unwrap_or_default();
                let parse_head = |input: ParseStream| {
                    Ok((
                        input.call(Attribute::parse_outer)?,
                        input.parse::<Visibility>()?,
                        input.parse::<Signature>()?,
                    ))
                };
                if let Ok((attrs, vis, sig)) = parse_head.parse2(head.into_iter().collect()) {
                    return Ok(HandlerFn {
                        attrs,
                        vis,
                        sig,
                        body,
                    });
                }
            }
        }
        // Not `attributes visibility signature { … }`: parse the whole item, for the error.
        match syn::parse2::<Item>(input)? {
            Item::Fn(item) => Ok(HandlerFn {
                attrs: item.attrs,
                vis: item.vis,
                sig: item.sig,
                body: item.block.into_token_stream(),
            }),
            other => Err(syn::Error::new(
                Span::call_site(),
                format!(
                    "`#[require_api_key]` cannot be used on {}; put it on a route handler \
                     function, above its `#[get]`, `#[post]`, … attribute",
                    describe(&other)
                ),
            )),
        }
    }
}

/// The function under the attribute, as far as `#[require_api_key]` is concerned.
pub(crate) struct Handler<'a> {
    /// The first Rocket route attribute below ours, if any.
    pub(crate) route: Option<&'a Attribute>,
    /// A `#[utoipa::path]` below ours, if any.
    pub(crate) openapi: Option<&'a Attribute>,
    /// A `#[catch]` below ours, if any.
    pub(crate) catcher: Option<&'a Attribute>,
    /// Further `#[require_api_key]`s below ours.
    pub(crate) repeated: Vec<&'a Attribute>,
    pub(crate) receiver: Option<&'a Receiver>,
    /// The parameters written `name: Type` (Rocket accepts no other form).
    pub(crate) params: Vec<&'a Ident>,
}

impl<'a> Handler<'a> {
    pub(crate) fn new(attrs: &'a [Attribute], sig: &'a Signature) -> Self {
        Handler {
            route: attrs.iter().find(|attr| {
                ROUTE_ATTRIBUTES
                    .iter()
                    .any(|name| last_segment_is(attr, name))
            }),
            openapi: attrs.iter().find(|attr| is_utoipa_path(attr)),
            catcher: attrs.iter().find(|attr| last_segment_is(attr, "catch")),
            repeated: attrs
                .iter()
                .filter(|attr| last_segment_is(attr, "require_api_key"))
                .collect(),
            receiver: sig.receiver(),
            params: sig
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

/// The methods Rocket's `#[route]` takes, as it spells them (it reads them in any case).
const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH"];

/// The method and path a route attribute declares, as written: `#[get("/orders")]` and
/// `#[route(GET, uri = "/orders")]` both give `("GET", "/orders")`. The path is the positional
/// string or the one given as `uri = …`, never another argument's (`data = "<order>"`). Empty for
/// what it does not spell out; the launch audit then lists no mounted route for the handler
/// rather than guess which one it is.
pub(crate) fn route_target(attr: &Attribute) -> (String, String) {
    let name = attr
        .path()
        .segments
        .last()
        .map(|segment| segment.ident.to_string())
        .unwrap_or_default();
    let tokens = match &attr.meta {
        syn::Meta::List(list) => list.tokens.clone(),
        _ => TokenStream::new(),
    };
    let mut method = if name == "route" {
        String::new()
    } else {
        name.to_uppercase()
    };
    let mut path = String::new();
    // One argument at a time: `GET`, `"/orders"`, `uri = "/orders"`, `data = "<order>"`, …
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let arguments =
        tokens.split(|token| matches!(token, TokenTree::Punct(p) if p.as_char() == ','));
    for argument in arguments {
        match argument {
            [TokenTree::Ident(ident)] if method.is_empty() => {
                let upper = ident.to_string().to_uppercase();
                if METHODS.contains(&upper.as_str()) {
                    method = upper;
                }
            }
            [TokenTree::Literal(literal)] if path.is_empty() => path = string(literal),
            [TokenTree::Ident(key), TokenTree::Punct(eq), TokenTree::Literal(literal)]
                if key == "uri" && eq.as_char() == '=' && path.is_empty() =>
            {
                path = string(literal)
            }
            _ => {}
        }
    }
    (method, path)
}

/// The value of a string literal; empty for another literal.
fn string(literal: &proc_macro2::Literal) -> String {
    syn::parse2::<syn::LitStr>(literal.to_token_stream())
        .map(|lit| lit.value())
        .unwrap_or_default()
}

/// `#[utoipa::path(…)]`, written with that path (a bare `#[path]` is Rust's own, for modules).
pub(crate) fn is_utoipa_path(attr: &Attribute) -> bool {
    let segments = &attr.path().segments;
    segments.len() == 2 && segments[0].ident == "utoipa" && segments[1].ident == "path"
}

/// The `security` argument of a `#[utoipa::path(…)]`, if the user wrote one.
pub(crate) fn openapi_security(attr: &Attribute) -> Option<Ident> {
    let syn::Meta::List(list) = &attr.meta else {
        return None;
    };
    let mut tokens = list.tokens.clone().into_iter().peekable();
    while let Some(token) = tokens.next() {
        if let TokenTree::Ident(ident) = &token {
            let followed_by_group = matches!(
                tokens.peek(),
                Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Parenthesis
            );
            if ident == "security" && followed_by_group {
                return Some(ident.clone());
            }
        }
    }
    None
}

fn last_segment_is(attr: &Attribute, name: &str) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == name)
}

/// How to name an item that is not a function, for "cannot be used on a struct".
fn describe(item: &Item) -> &'static str {
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

#[cfg(test)]
mod tests {
    use quote::{quote, ToTokens};

    use super::HandlerFn;

    #[test]
    fn route_targets_as_written() {
        let cases: [(syn::Attribute, (&str, &str)); 11] = [
            (syn::parse_quote!(#[get("/orders")]), ("GET", "/orders")),
            (
                syn::parse_quote!(#[rocket::post("/orders", data = "<order>")]),
                ("POST", "/orders"),
            ),
            (
                syn::parse_quote!(#[route(PATCH, uri = "/orders/<id>")]),
                ("PATCH", "/orders/<id>"),
            ),
            (
                syn::parse_quote!(#[route(GET, "/positional")]),
                ("GET", "/positional"),
            ),
            (syn::parse_quote!(#[get(uri = "/named")]), ("GET", "/named")),
            (syn::parse_quote!(#[get]), ("GET", "")),
            (
                syn::parse_quote!(#[route(uri = "/late", GET)]),
                ("GET", "/late"),
            ),
            // Rocket reads the method in any case.
            (
                syn::parse_quote!(#[route(patch, uri = "/lower")]),
                ("PATCH", "/lower"),
            ),
            // Another argument's string is not the path.
            (
                syn::parse_quote!(#[post(data = "<order>", uri = "/orders")]),
                ("POST", "/orders"),
            ),
            (
                syn::parse_quote!(#[get("/q?<page>", format = "json", rank = 2)]),
                ("GET", "/q?<page>"),
            ),
            (
                syn::parse_quote!(#[route(uri = "/no-method")]),
                ("", "/no-method"),
            ),
        ];
        for (attr, (method, path)) in cases {
            let target = super::route_target(&attr);
            assert_eq!((target.0.as_str(), target.1.as_str()), (method, path));
        }
    }

    #[test]
    fn handlers_split_into_head_and_untouched_body() {
        let handler = HandlerFn::parse(quote! {
            /// Docs.
            #[get("/orders/<id>")]
            pub(crate) async fn order<'r, F: Fn(u8) -> u8>(id: &'r str) -> String
            where
                F: Send,
            {
                #![allow(unused)]
                format!("{id}")
            }
        })
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(handler.attrs.len(), 2);
        assert_eq!(handler.vis.to_token_stream().to_string(), "pub (crate)");
        assert_eq!(handler.sig.ident, "order");
        assert_eq!(handler.sig.inputs.len(), 1);
        assert_eq!(
            handler.body.to_string(),
            quote!(
                {
                    #![allow(unused)]
                    format!("{id}")
                }
            )
            .to_string()
        );
    }

    #[test]
    fn other_items_are_named_in_the_error() {
        for (item, named) in [
            (
                quote!(
                    struct Orders {}
                ),
                "a struct",
            ),
            (
                quote!(
                    mod orders {}
                ),
                "a module",
            ),
            (quote!(impl Orders { fn list(&self) {} }), "an `impl` block"),
            (
                quote!(
                    const N: u8 = 1;
                ),
                "a constant",
            ),
        ] {
            let error = HandlerFn::parse(item).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains(&format!("cannot be used on {named};"))),
                "{named}: {error:?}"
            );
        }
    }
}
