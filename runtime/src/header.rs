//! The key's headers: the default header's name, the token of an `Authorization: Bearer` value,
//! and the `WWW-Authenticate` challenge of a 401 that names the header to send the key in.

/// The header a key is read from unless `header` names another.
pub(crate) const DEFAULT_HEADER: &str = "x-api-key";

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive, RFC 7235);
/// `None` for other schemes, which belong to someone else. An empty token is returned as empty
/// and rejected as malformed.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let rest = &value[6..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some(rest.trim_matches(' '))
}

/// The `WWW-Authenticate` challenge of a 401: which header to send the key in.
pub(crate) fn challenge(header: &str) -> String {
    format!("ApiKey header=\"{header}\"")
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER   abc  "), Some("abc"));
        assert_eq!(bearer_token("Bearer"), Some(""));
        assert_eq!(bearer_token("Bearer "), Some(""));
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bear"), None);
        assert_eq!(bearer_token("Bearé abc"), None);
    }
}
