//! Collects every error of one expansion, so the user sees all of them in one build.

/// Accumulates errors with [`syn::Error::combine`] (the role of serde's `Ctxt`).
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Ends with `error`, after everything collected so far.
    pub(crate) fn finish_with(self, error: syn::Error) -> syn::Error {
        match self.combined {
            Some(mut combined) => {
                combined.combine(error);
                combined
            }
            None => error,
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
