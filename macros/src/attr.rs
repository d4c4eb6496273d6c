//! Reads the arguments of `#[require_api_key(…)]`, keeping the tokens they came from.
//!
//! Only the *shape* is read here (which argument, literal or list); whether the scopes are
//! well-formed is `valid.rs`'s business. Problems are recorded and reading goes on with the next
//! argument, so one build reports every mistake.

use proc_macro2::{Delimiter, Literal, TokenStream, TokenTree};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, Lit, LitStr, Path, Token};

use crate::errors::Errors;
use crate::suggest;

const ARGUMENTS: &[&str] = &["scope", "crate"];
const COMBINATORS: &[&str] = &["all", "any"];

/// The arguments as written.
#[derive(Default)]
pub(crate) struct Args {
    /// `scope = …`.
    pub(crate) scope: Option<Scope>,
    /// `crate = "path"`, already parsed to a path spanned at the literal.
    pub(crate) krate: Option<Path>,
}

/// The value of `scope = …`.
pub(crate) enum Scope {
    /// `scope = "read"`.
    One(LitStr),
    /// `scope = all(…)` or `scope = any(…)`.
    List(ScopeList),
}

/// `all("a", "b")` or `any("a", "b")`.
pub(crate) struct ScopeList {
    pub(crate) combinator: Combinator,
    /// `all` or `any`, as written.
    pub(crate) name: Ident,
    /// The whole `all(…)`, for errors about the list as a whole.
    pub(crate) tokens: TokenStream,
    pub(crate) scopes: Vec<LitStr>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combinator {
    All,
    Any,
}

/// Reads `tokens`, the arguments between the attribute's parentheses.
pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();

    // `#[require_api_key("read")]`: syn would say "expected ident"; say what to write instead.
    if let Some(TokenTree::Literal(literal)) = tokens.clone().into_iter().next() {
        if let Some(lit) = lit_str(literal) {
            errors.push(syn::Error::new(
                lit.span(),
                format!(
                    "missing `scope =` before the scope; write `scope = {}`",
                    lit.to_token_stream()
                ),
            ));
            return args;
        }
    }

    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("scope") {
            args.read_scope(&meta, errors)
        } else if meta.path.is_ident("crate") {
            args.read_crate(&meta, errors)
        } else {
            errors.push(unknown_argument(&meta.path));
            skip_value(meta.input)
        }
    });
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    args
}

impl Args {
    fn read_scope(&mut self, meta: &ParseNestedMeta, errors: &mut Errors) -> syn::Result<()> {
        if !meta.input.peek(Token![=]) {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                "`scope` needs a value; write `scope = \"read:orders\"`",
            ));
            return skip_value(meta.input);
        }
        let value = read_value(meta.value()?)?;
        let scope = match value {
            Value::Str(lit) => Some(Scope::One(lit)),
            Value::Call { name, args, tokens } => read_list(name, args, tokens, errors),
            Value::Other(tokens) => {
                errors.push(not_a_string("scope = ", &tokens));
                None
            }
        };
        if self.scope.is_some() {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                "`scope` is given more than once; combine the scopes in one list, e.g. \
                 `scope = all(\"read:orders\", \"write:orders\")`",
            ));
        } else {
            self.scope = scope;
        }
        Ok(())
    }

    fn read_crate(&mut self, meta: &ParseNestedMeta, errors: &mut Errors) -> syn::Result<()> {
        if !meta.input.peek(Token![=]) {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                "`crate` needs a value; write `crate = \"::rocket_api_key\"`",
            ));
            return skip_value(meta.input);
        }
        let path = match read_value(meta.value()?)? {
            // The path's tokens take the literal's span, so "unresolved path" lands on it.
            Value::Str(lit) => match lit.parse::<Path>() {
                Ok(path) => Some(path),
                Err(_) => {
                    errors.push(syn::Error::new(
                        lit.span(),
                        format!(
                            "`crate = {}` is not a path; name the `rocket-api-key` crate, \
                             e.g. `crate = \"::rocket_api_key\"`",
                            lit.to_token_stream()
                        ),
                    ));
                    None
                }
            },
            Value::Call { tokens, .. } | Value::Other(tokens) => {
                errors.push(not_a_path_string(&tokens));
                None
            }
        };
        if self.krate.is_some() {
            errors.push(syn::Error::new_spanned(
                &meta.path,
                "`crate` is given more than once; keep one",
            ));
        } else {
            self.krate = path;
        }
        Ok(())
    }
}

/// One argument value or list element, classified by shape.
enum Value {
    /// `"read"`.
    Str(LitStr),
    /// `name(…)`: the arguments are the tokens inside the parentheses.
    Call {
        name: Ident,
        args: TokenStream,
        tokens: TokenStream,
    },
    /// Anything else, e.g. `42`, `read`, `read:orders`.
    Other(TokenStream),
}

/// Reads the tokens up to the next top-level `,`.
fn read_value(input: ParseStream) -> syn::Result<Value> {
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        tokens.extend([input.parse::<TokenTree>()?]);
    }
    Ok(classify(tokens))
}

fn classify(tokens: TokenStream) -> Value {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    match trees.as_slice() {
        [TokenTree::Literal(literal)] => match lit_str(literal.clone()) {
            Some(lit) => Value::Str(lit),
            None => Value::Other(tokens),
        },
        [TokenTree::Ident(name), TokenTree::Group(group)]
            if group.delimiter() == Delimiter::Parenthesis =>
        {
            Value::Call {
                name: name.clone(),
                args: group.stream(),
                tokens,
            }
        }
        _ => Value::Other(tokens),
    }
}

/// The string literal `literal` is, if it is one (what `syn::parse2::<LitStr>` would say of it,
/// without a parse buffer).
fn lit_str(literal: Literal) -> Option<LitStr> {
    match Lit::new(literal) {
        Lit::Str(lit) => Some(lit),
        _ => None,
    }
}

/// Reads `all(…)`/`any(…)`; `None` (with the errors recorded) if it is not one.
fn read_list(
    name: Ident,
    args: TokenStream,
    tokens: TokenStream,
    errors: &mut Errors,
) -> Option<Scope> {
    let combinator = if name == "all" {
        Combinator::All
    } else if name == "any" {
        Combinator::Any
    } else {
        let fix = match suggest::closest(&name.to_string(), COMBINATORS) {
            Some(closest) => format!("did you mean `{closest}(…)`?"),
            None => "use `all(…)` or `any(…)`".to_owned(),
        };
        errors.push(syn::Error::new(
            name.span(),
            format!("unknown scope list `{name}(…)`; {fix}"),
        ));
        return None;
    };

    let elements = match split_elements.parse2(args) {
        Ok(elements) => elements,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    let mut scopes = Vec::with_capacity(elements.len());
    for element in elements {
        match classify(element) {
            Value::Str(lit) => scopes.push(lit),
            Value::Call {
                name: inner,
                tokens,
                ..
            } if inner == "all" || inner == "any" => errors.push(syn::Error::new_spanned(
                tokens,
                format!(
                    "`{inner}(…)` cannot be nested inside `{name}(…)`; \
                     list the scopes directly, e.g. `{name}(\"a\", \"b\")`"
                ),
            )),
            Value::Call { tokens, .. } | Value::Other(tokens) => {
                errors.push(not_a_string("", &tokens))
            }
        }
    }
    Some(Scope::List(ScopeList {
        combinator,
        name,
        tokens,
        scopes,
    }))
}

/// Splits the inside of `all(…)` at its top-level commas; a trailing comma is fine.
fn split_elements(input: ParseStream) -> syn::Result<Vec<TokenStream>> {
    let mut elements = Vec::new();
    while !input.is_empty() {
        if input.peek(Token![,]) {
            return Err(input.error("expected a scope string before `,`"));
        }
        let mut element = TokenStream::new();
        while !input.is_empty() && !input.peek(Token![,]) {
            element.extend([input.parse::<TokenTree>()?]);
        }
        elements.push(element);
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
    }
    Ok(elements)
}

/// Skips an unusable argument's value, so reading can go on with the next argument.
fn skip_value(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

fn unknown_argument(path: &Path) -> syn::Error {
    let name = path.to_token_stream().to_string().replace(' ', "");
    let fix = match suggest::closest(&name, ARGUMENTS) {
        Some(closest) => format!("did you mean `{closest}`?"),
        None => "the arguments are `scope` and `crate`".to_owned(),
    };
    syn::Error::new_spanned(path, format!("unknown argument `{name}`; {fix}"))
}

/// `scope = read` and friends: suggest the quoted form when the tokens look like a scope.
fn not_a_string(prefix: &str, tokens: &TokenStream) -> syn::Error {
    let looks_like_a_scope = !tokens.is_empty()
        && tokens.clone().into_iter().all(|tree| match tree {
            TokenTree::Ident(_) | TokenTree::Punct(_) => true,
            TokenTree::Literal(literal) => !literal.to_string().contains('"'),
            TokenTree::Group(_) => false,
        });
    let message = if looks_like_a_scope {
        let unquoted = tokens.to_string().replace(' ', "");
        format!("expected a string literal; write `{prefix}\"{unquoted}\"`")
    } else {
        format!("expected a string literal, e.g. `{prefix}\"read:orders\"`")
    };
    if tokens.is_empty() {
        // `scope =` with nothing after it: point at where the value belongs.
        return syn::Error::new(proc_macro2::Span::call_site(), message);
    }
    syn::Error::new_spanned(tokens, message)
}

/// `crate = rocket_api_key` and friends: suggest the quoted form when the tokens form a path.
fn not_a_path_string(tokens: &TokenStream) -> syn::Error {
    let message = match syn::parse2::<Path>(tokens.clone()) {
        Ok(path) => format!(
            "expected a string literal; write `crate = \"{}\"`",
            path.to_token_stream().to_string().replace(' ', "")
        ),
        Err(_) => "expected a string literal holding a path, e.g. `crate = \"::rocket_api_key\"`"
            .to_owned(),
    };
    if tokens.is_empty() {
        return syn::Error::new(proc_macro2::Span::call_site(), message);
    }
    syn::Error::new_spanned(tokens, message)
}
