//! Checks how the pieces fit: placement, duplicates, reserved names and the scope grammar.

use proc_macro2::Span;
use syn::LitStr;

use crate::ast::{self, Handler};
use crate::attr::{Args, Scope};
use crate::errors::Errors;

/// The parameter `#[require_api_key]` adds; a handler may not declare it itself.
pub(crate) const GUARD_PARAM: &str = "__require_api_key";

/// The longest scope, in bytes (the runtime's `MAX_SCOPE_LEN`).
const MAX_SCOPE_LEN: usize = 64;

pub(crate) fn check_args(args: &Args, errors: &mut Errors) {
    match &args.scope {
        None => {}
        Some(Scope::One(lit)) => check_scope(lit, errors),
        Some(Scope::List(list)) => {
            if list.scopes.is_empty() {
                errors.push(syn::Error::new_spanned(
                    &list.tokens,
                    format!(
                        "`{}()` names no scopes; list at least one, e.g. `{}(\"read:orders\")`, \
                         or remove `scope` to accept any valid key",
                        list.name, list.name
                    ),
                ));
            }
            for (i, lit) in list.scopes.iter().enumerate() {
                check_scope(lit, errors);
                let value = lit.value();
                if list.scopes[..i]
                    .iter()
                    .any(|earlier| earlier.value() == value)
                {
                    errors.push(syn::Error::new(
                        lit.span(),
                        format!("scope `{value}` is listed twice; remove the repeat"),
                    ));
                }
            }
        }
    }
}

pub(crate) fn check_handler(handler: &Handler, errors: &mut Errors) {
    if let Some(receiver) = handler.receiver {
        // A method can never be a route, so the placement advice below would mislead.
        errors.push(syn::Error::new_spanned(
            receiver,
            "`#[require_api_key]` cannot be used on a method; Rocket route handlers are free \
             functions, so remove `self`",
        ));
    } else if let Some(catcher) = handler.catcher {
        errors.push(syn::Error::new_spanned(
            catcher,
            "`#[require_api_key]` cannot be used on a catcher; catchers run after routing \
             has failed, so put it on the routes to protect instead",
        ));
    } else if handler.route.is_none() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "`#[require_api_key]` must be placed above the route attribute; \
             no `#[get]`, `#[post]`, … was found below it",
        ));
    }
    if let Some(security) = handler.openapi.and_then(ast::openapi_security) {
        errors.push(syn::Error::new(
            security.span(),
            "`#[require_api_key]` writes this operation's `security` from its scopes; remove \
             `security(…)` here (utoipa would keep only one of the two, silently)",
        ));
    }
    for repeated in &handler.repeated {
        errors.push(syn::Error::new_spanned(
            repeated,
            "`#[require_api_key]` is applied more than once; keep one and list every scope in it, \
             e.g. `scope = all(\"read:orders\", \"write:orders\")`",
        ));
    }
    for param in &handler.params {
        if *param == GUARD_PARAM {
            errors.push(syn::Error::new(
                param.span(),
                format!(
                    "the parameter name `{GUARD_PARAM}` is reserved for the key guard \
                     `#[require_api_key]` adds; rename it"
                ),
            ));
        }
    }
}

fn check_scope(lit: &LitStr, errors: &mut Errors) {
    if let Some(problem) = scope_problem(&lit.value()) {
        errors.push(syn::Error::new(lit.span(), problem));
    }
}

/// What is wrong with `scope`, if anything: the runtime's `is_valid_scope` rule, with the reason.
pub(crate) fn scope_problem(scope: &str) -> Option<String> {
    const ALLOWED: &str = "`A-Z a-z 0-9 _ . : / -`";
    if scope.is_empty() {
        return Some(format!(
            "scope is empty; a scope is 1 to {MAX_SCOPE_LEN} characters of {ALLOWED}"
        ));
    }
    if let Some(bad) = scope.chars().find(|c| !is_scope_char(*c)) {
        let shown = match bad {
            ' ' => "a space".to_owned(),
            c if c.is_whitespace() || c.is_control() => format!("`{}`", c.escape_default()),
            c => format!("`{c}`"),
        };
        return Some(format!(
            "scope `{}` contains {shown}; scopes use only {ALLOWED}",
            scope.escape_default()
        ));
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Some(format!(
            "scope is {} characters long; the limit is {MAX_SCOPE_LEN}",
            scope.len()
        ));
    }
    None
}

fn is_scope_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

#[cfg(test)]
mod tests {
    use super::{scope_problem, MAX_SCOPE_LEN};

    /// The grammar is written twice, here and in the runtime (`is_valid_scope`), because a
    /// proc-macro crate cannot share code with the crate it expands to. Both must accept exactly
    /// the same scopes: every ASCII string up to three characters, and a corpus of the rest.
    #[test]
    fn the_runtime_and_the_attribute_agree_on_every_scope() {
        let agree = |scope: &str| {
            assert_eq!(
                scope_problem(scope).is_none(),
                rocket_api_key::scope::is_valid_scope(scope),
                "{scope:?}"
            );
        };
        let ascii: Vec<char> = (0u8..128).map(char::from).collect();
        agree("");
        for &a in &ascii {
            agree(&a.to_string());
            for &b in &ascii {
                let two: String = [a, b].iter().collect();
                agree(&two);
                for &c in &ascii {
                    agree(&format!("{two}{c}"));
                }
            }
        }
        let long = "x".repeat(MAX_SCOPE_LEN);
        for scope in [
            long.as_str(),
            &format!("{long}x"),
            &format!("{}é", "x".repeat(MAX_SCOPE_LEN - 2)),
            "read:orders",
            "orders/v1.read",
            "lecture:café",
            "read\u{0}orders",
            "ｒｅａｄ",
            "read:orders ",
            "\u{200b}read",
        ] {
            agree(scope);
        }
        assert_eq!(MAX_SCOPE_LEN, rocket_api_key::scope::MAX_SCOPE_LEN);
    }

    #[test]
    fn the_security_scheme_is_the_one_the_runtime_declares() {
        assert_eq!(
            crate::expand::SECURITY_SCHEME,
            rocket_api_key::openapi::SECURITY_SCHEME
        );
    }

    #[test]
    fn valid_scopes() {
        for scope in [
            "a",
            "read:orders",
            "orders/v1.read",
            "A-Z_0-9",
            &"x".repeat(64),
        ] {
            assert_eq!(scope_problem(scope), None, "{scope}");
        }
    }

    #[test]
    fn invalid_scopes() {
        let problem = |scope: &str| scope_problem(scope).unwrap_or_default();
        assert!(problem("").starts_with("scope is empty"));
        assert_eq!(
            problem("read orders"),
            "scope `read orders` contains a space; scopes use only `A-Z a-z 0-9 _ . : / -`"
        );
        assert!(problem("read\torders").contains("contains `\\t`"));
        assert!(problem("read*").contains("contains `*`"));
        assert!(problem("lecture:café").contains("contains `é`"));
        assert_eq!(
            problem(&"x".repeat(65)),
            "scope is 65 characters long; the limit is 64"
        );
    }
}
