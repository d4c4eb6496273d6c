//! Parse → validate → expand: adds the key guard to the handler and the type naming its scopes.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::{FnArg, Ident, Pat, PatIdent, PatType, Token, Type, Visibility};

use crate::ast::{self, Handler, HandlerFn};
use crate::attr::{self, Args, Combinator, Scope};
use crate::errors::Errors;
use crate::fallback;
use crate::valid::{self, GUARD_PARAM};

pub(crate) fn require_api_key(args: TokenStream, input: TokenStream) -> TokenStream {
    match try_expand(args, input.clone()) {
        Ok(expanded) => expanded,
        Err(errors) => fallback::expand(errors, input),
    }
}

fn try_expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = attr::parse(args, &mut errors);
    valid::check_args(&args, &mut errors);

    let handler = match HandlerFn::parse(input) {
        Ok(handler) => handler,
        Err(error) => return Err(errors.finish_with(error)),
    };
    valid::check_handler(&Handler::new(&handler.attrs, &handler.sig), &mut errors);
    errors.finish()?;

    Ok(expand(args, handler))
}

fn expand(args: Args, handler: HandlerFn) -> TokenStream {
    let HandlerFn {
        attrs,
        vis,
        mut sig,
        body,
    } = handler;
    // Errors in what we generate (a wrong `crate = …`, a runtime without the guard) belong to
    // the attribute, or to the `crate` literal when the path came from there.
    let span = Span::call_site();
    let krate = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote_spanned!(span=> ::rocket_api_key),
    };

    let (scopes_ty, scopes_decl) = match &args.scope {
        None => (quote_spanned!(span=> #krate::__private::AnyKey), None),
        Some(scope) => {
            let ident = format_ident!("__require_api_key_scopes_{}", sig.ident, span = span);
            let decl = scopes_decl(&krate, &ident, scope, &vis);
            (quote!(#ident), Some(decl))
        }
    };

    // For the launch audit: which handler requires what (see the runtime's `routes` module).
    let (method, path) = Handler::new(&attrs, &sig)
        .route
        .map(ast::route_target)
        .unwrap_or_default();
    let handler_name = sig.ident.unraw().to_string();
    // Spelled out from the attribute's own scopes rather than read from the scope type: the
    // value is the same, and 50 handlers then cost the compiler no further constant evaluation.
    let requirement = match &args.scope {
        None => quote_spanned!(span=> AnyKey),
        Some(Scope::One(lit)) => quote_spanned!(span=> AllOf(&[#lit])),
        Some(Scope::List(list)) => {
            let scopes = &list.scopes;
            match list.combinator {
                Combinator::All => quote_spanned!(span=> AllOf(&[#(#scopes),*])),
                Combinator::Any => quote_spanned!(span=> AnyOf(&[#(#scopes),*])),
            }
        }
    };
    let declared = quote_spanned! {span=>
        #krate::__private::inventory::submit! {
            #krate::__private::DeclaredRoute {
                handler: #handler_name,
                method: #method,
                path: #path,
                requirement: #krate::__private::ScopeRequirement::#requirement,
            }
        }
    };

    // The operation's security requirement, written into `#[utoipa::path]` below, if any.
    let mut attrs = attrs;
    if let Some(openapi) = attrs.iter_mut().find(|attr| ast::is_utoipa_path(attr)) {
        add_openapi_security(openapi, args.scope.as_ref());
    }

    // First, so Rocket runs it before every other guard and before reading the body.
    let guard = FnArg::Typed(PatType {
        attrs: Vec::new(),
        pat: Box::new(Pat::Ident(PatIdent {
            attrs: Vec::new(),
            by_ref: None,
            mutability: None,
            ident: Ident::new(GUARD_PARAM, span),
            subpat: None,
        })),
        colon_token: Token![:](span),
        ty: Box::new(Type::Verbatim(quote_spanned! {span=>
            #krate::__private::Authorized<#scopes_ty>
        })),
    });
    sig.inputs.insert(0, guard);

    quote! {
        #scopes_decl
        #declared
        #(#attrs)*
        #vis #sig #body
    }
}

/// The name of the OpenAPI security scheme the requirements refer to; the runtime's
/// `openapi::ApiKeySecurity` defines it (a test checks that both agree).
pub(crate) const SECURITY_SCHEME: &str = "api_key";

/// Appends `security(…)` to a `#[utoipa::path(…)]`: one requirement listing every scope for
/// `scope = "a"` and `all(…)`, one requirement per scope for `any(…)` (OpenAPI's "either"), and
/// the scheme with no scopes for a bare attribute. (`valid` has refused a `security` already
/// there.)
fn add_openapi_security(openapi: &mut syn::Attribute, scope: Option<&Scope>) {
    let scheme = SECURITY_SCHEME;
    let requirements = match scope {
        None => quote!((#scheme = [])),
        Some(Scope::One(lit)) => quote!((#scheme = [#lit])),
        Some(Scope::List(list)) => {
            let scopes = &list.scopes;
            match list.combinator {
                Combinator::All => quote!((#scheme = [#(#scopes),*])),
                Combinator::Any => quote!(#((#scheme = [#scopes])),*),
            }
        }
    };
    if let syn::Meta::List(list) = &mut openapi.meta {
        let mut tokens = list.tokens.clone();
        let ends_with_comma =
            tokens.clone().into_iter().last().is_some_and(
                |t| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == ','),
            );
        if !tokens.is_empty() && !ends_with_comma {
            tokens.extend(quote!(,));
        }
        tokens.extend(quote!(security(#requirements)));
        list.tokens = tokens;
    }
}

/// The longest list spelled as a type, `AllOf<(Scope<…>, …)>` (the runtime implements
/// `ScopeList` for tuples up to this length).
const MAX_TYPED_SCOPES: usize = 8;

/// The hidden name of the type that carries the required scopes to the guard, as
/// `Authorized<T>`'s `T`.
///
/// Normally an alias of a type built from the scopes themselves, so that handlers requiring the
/// same scopes share one `Authorized<T>` and everything instantiated for it; the alias keeps a
/// readable name in Rocket's logs. A list too long for that gets a type of its own.
fn scopes_decl(krate: &TokenStream, ident: &Ident, scope: &Scope, vis: &Visibility) -> TokenStream {
    let span = Span::call_site();
    let (combinator, scopes) = match scope {
        Scope::One(lit) => (Combinator::All, std::slice::from_ref(lit)),
        Scope::List(list) => (list.combinator, &list.scopes[..]),
    };
    // Either way with the handler's visibility: the type appears in its signature.
    if scopes.len() <= MAX_TYPED_SCOPES {
        let combinator = match combinator {
            Combinator::All => quote_spanned!(span=> AllOf),
            Combinator::Any => quote_spanned!(span=> AnyOf),
        };
        let scopes = scopes.iter().map(|lit| {
            let chunks = packed(&lit.value()).into_iter().map(|chunk| {
                // Hexadecimal, so the scope can be read off an expansion. (Not `LitInt::new`,
                // which parses the digits back into a big integer, slowly when unoptimised.)
                let mut chunk: Literal = format!("{chunk:#x}")
                    .parse()
                    .expect("a hexadecimal integer is a literal");
                chunk.set_span(span);
                chunk
            });
            quote_spanned!(span=> #krate::__private::Scope<#(#chunks),*>,)
        });
        return quote_spanned! {span=>
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #vis type #ident = #krate::__private::#combinator<(#(#scopes)*)>;
        };
    }
    let variant = match combinator {
        Combinator::All => quote!(AllOf),
        Combinator::Any => quote!(AnyOf),
    };
    quote_spanned! {span=>
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #ident;

        impl #krate::__private::RequiredScopes for #ident {
            const REQUIREMENT: #krate::__private::ScopeRequirement =
                #krate::__private::ScopeRequirement::#variant(&[#(#scopes),*]);
        }
    }
}

/// A scope's bytes as the runtime's `Scope<A, B, C, D>` takes them: big-endian `u128`s of 16
/// bytes, zero-padded, without the trailing zero ones (they are the parameters' defaults).
/// Valid scopes are 1 to 64 bytes, so there are 1 to 4.
fn packed(scope: &str) -> Vec<u128> {
    scope
        .as_bytes()
        .chunks(16)
        .map(|chunk| {
            let mut bytes = [0; 16];
            bytes[..chunk.len()].copy_from_slice(chunk);
            u128::from_be_bytes(bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::packed;

    #[test]
    fn scopes_pack_into_u128s() {
        let chunks = packed;
        assert_eq!(
            chunks("read:orders"),
            [u128::from_be_bytes(*b"read:orders\0\0\0\0\0")]
        );
        assert_eq!(chunks(&"x".repeat(16)).len(), 1);
        assert_eq!(chunks(&"x".repeat(17)).len(), 2);
        assert_eq!(chunks(&"x".repeat(64)).len(), 4);
    }
}
