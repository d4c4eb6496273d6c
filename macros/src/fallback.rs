//! What to emit when the attribute is misused.

use proc_macro2::TokenStream;

/// The errors, and the item exactly as written: the route attribute and `routes![]` still see
/// the handler they expect, so the user gets our errors and no cascade of unrelated ones.
pub(crate) fn expand(errors: syn::Error, input: TokenStream) -> TokenStream {
    let errors = errors.to_compile_error();
    quote::quote! {
        #errors
        #input
    }
}
