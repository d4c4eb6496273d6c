//! Keys sent in the query string by mistake (`?api_key=…`): redacted before anything logs them.
//!
//! Rocket prints a request's whole URI in its own log lines (`GET /orders?api_key=…:` at `info`,
//! `No matching routes for …` at `error`), after the request fairings have run. The fairing
//! rewrites the query first: the value of every parameter with a key-like name, and every value
//! shaped like a generated key, becomes [`REDACTED`]. A key in the query never authenticates
//! anyway: the guards read headers only.
//!
//! Values are never looked up in the key store: a handler that echoes its query would otherwise
//! tell a caller which guesses are keys, without the failure limit counting them.

use rocket::http::uri::Origin;
use rocket::http::RawStr;
use rocket::Request;

use crate::keygen::{checksum, Checksum};

/// What a redacted query value reads as, in logs and in handlers.
pub const REDACTED: &str = "REDACTED";

/// The query parameter names redacted by default (compared case-insensitively, after
/// percent-decoding), besides the configured header's name.
pub(crate) const DEFAULT_REDACTED_PARAMS: [&str; 6] = [
    "api_key",
    "apikey",
    "api-key",
    "key",
    "token",
    "access_token",
];

/// Marks a request whose query held a key-like value, for the rejection event to say so.
pub(crate) struct QueryRedacted;

/// Rewrites the request's query if any value must be hidden; notes it in the request-local
/// cache.
pub(crate) fn redact_request(req: &mut Request<'_>, header: &str, names: &[String]) {
    let Some(query) = req.uri().query() else {
        return;
    };
    let Some(redacted) = redact(query.as_str(), header, names) else {
        return;
    };
    let path = req.uri().path().as_str().to_owned();
    req.set_uri(Origin::new(path, Some(redacted)));
    req.local_cache(|| Some(QueryRedacted));
}

/// Whether the request's query was redacted.
pub(crate) fn was_redacted(req: &Request<'_>) -> bool {
    req.local_cache(|| None::<QueryRedacted>).is_some()
}

/// The query with every sensitive value replaced, or `None` when nothing is sensitive (the
/// common case, which allocates nothing). Separators, names and other values are kept byte for
/// byte, so the application sees the same parameters.
pub fn redact(query: &str, header: &str, names: &[String]) -> Option<String> {
    if !query
        .split('&')
        .any(|part| is_sensitive(part, header, names))
    {
        return None;
    }
    let parts: Vec<String> = query
        .split('&')
        .map(|part| {
            if !is_sensitive(part, header, names) {
                return part.to_owned();
            }
            match part.split_once('=') {
                Some((name, _)) => format!("{name}={REDACTED}"),
                // A bare value shaped like a key: the whole part is the secret.
                None => REDACTED.to_owned(),
            }
        })
        .collect();
    Some(parts.join("&"))
}

fn is_sensitive(part: &str, header: &str, names: &[String]) -> bool {
    let (name, value) = part.split_once('=').unwrap_or(("", part));
    let name = RawStr::new(name).url_decode_lossy();
    let name = name.trim();
    let named = !name.is_empty()
        && (name.eq_ignore_ascii_case(header)
            || names.iter().any(|n| name.eq_ignore_ascii_case(n)));
    if named {
        // An empty value hides nothing, and keeps `?key=` visible for debugging.
        return !value.is_empty();
    }
    let value = RawStr::new(value).url_decode_lossy();
    // A generated key, even with a bad checksum: a mistyped key is most of a real one.
    checksum(value.trim()) != Checksum::NotGenerated
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygen::GeneratedKey;

    fn names() -> Vec<String> {
        DEFAULT_REDACTED_PARAMS.map(String::from).to_vec()
    }

    fn run(query: &str) -> Option<String> {
        redact(query, "x-api-key", &names())
    }

    #[test]
    fn key_like_names_lose_their_values() {
        for name in DEFAULT_REDACTED_PARAMS
            .iter()
            .chain(&["x-api-key", "X-API-KEY", "Api_Key"])
        {
            assert_eq!(
                run(&format!("page=2&{name}=s3cret-value&sort=asc")),
                Some(format!("page=2&{name}=REDACTED&sort=asc")),
                "{name}"
            );
        }
        // Percent-encoded names are the same names.
        assert_eq!(run("api%5Fkey=s3cret"), Some("api%5Fkey=REDACTED".into()));
        assert_eq!(
            run("TOKEN=a&token=b"),
            Some("TOKEN=REDACTED&token=REDACTED".into())
        );
        // Nothing sensitive: nothing rewritten.
        assert_eq!(run("page=2&sort=asc&keys=1&monkey=2"), None);
        assert_eq!(run("key="), None);
        assert_eq!(run(""), None);
    }

    #[test]
    fn generated_keys_are_hidden_under_any_name() {
        let key = GeneratedKey::with_prefix("live").unwrap();
        let secret = key.expose_secret();
        assert_eq!(
            run(&format!("q={secret}&page=1")),
            Some("q=REDACTED&page=1".into())
        );
        assert_eq!(
            run(&format!("{secret}&page=1")),
            Some("REDACTED&page=1".into())
        );
        // One character off is still most of a key.
        let mut typo = secret.to_owned();
        typo.pop();
        typo.push(if secret.ends_with('0') { '1' } else { '0' });
        assert_eq!(run(&format!("q={typo}")), Some("q=REDACTED".into()));
        // Configured names only: other names may be the application's.
        assert_eq!(redact("token=abc", "x-api-key", &[]), None);
        assert_eq!(
            redact("x-api-key=abc", "x-api-key", &[]),
            Some("x-api-key=REDACTED".into())
        );
    }
}
