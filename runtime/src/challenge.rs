//! The `WWW-Authenticate` challenge of a 401.

/// The `WWW-Authenticate` challenge of a 401: which header to send the key in.
pub(crate) fn challenge(header: &str) -> String {
    format!("ApiKey header=\"{header}\"")
}
