//! Credentials in a Redis or PostgreSQL URL (or a PostgreSQL `key=value` string): what may be
//! shown of it, and the secrets to hide wherever a client's error quotes them.

/// A Redis or PostgreSQL URL as it may be shown, and the credentials it holds, to hide wherever
/// it could be quoted (an error message of the client, say).
///
/// Hidden: the password of the user-info, or the whole user-info when it has no `:` (some
/// clients read a lone user-info as the password), and the value of every query parameter but
/// `db` and `protocol` (`redis+unix://` URLs carry `user=` and `pass=` there, PostgreSQL URLs
/// `password=`). The user-info ends
/// at the *last* `@`: a password holding `/`, `?` or `@` that a URL parser would misread is
/// still hidden whole, at worst with some of the address.
pub(crate) struct CredentialUrl {
    /// `redis://user:***@host:port/db`.
    pub shown: String,
    /// What `shown` hides, raw and percent-decoded; never empty strings. (Only the Redis
    /// backend and the PostgreSQL source have errors to scrub.)
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    secrets: Vec<String>,
}

const HIDDEN: &str = "***";

impl CredentialUrl {
    pub(crate) fn new(url: &str) -> Self {
        // The format is decided by how the text begins: a scheme makes a URL, a parameter name
        // and `=` a conninfo string, so that text inside a value (a conninfo password
        // `ab://S3cret`) decides nothing. Anything else is read as a URL without its scheme,
        // which hides whatever stands before an `@`.
        let url = url.trim_start();
        let (scheme, rest) = match scheme_end(url) {
            Some(end) => url.split_at(end),
            None if starts_with_parameter(url) => return Self::conninfo(url),
            None => ("", url),
        };
        let mut shown = String::from(scheme);
        let mut secrets = Vec::new();
        let address = match rest.rfind('@') {
            Some(at) => {
                let user_info = &rest[..at];
                match user_info.split_once(':') {
                    Some((user, password)) => {
                        shown.push_str(user);
                        shown.push(':');
                        secrets.push(password);
                    }
                    None => secrets.push(user_info),
                }
                shown.push_str(HIDDEN);
                shown.push('@');
                &rest[at + 1..]
            }
            None => rest,
        };
        match address.split_once('?') {
            None => shown.push_str(address),
            Some((path, query)) => {
                shown.push_str(path);
                for (i, parameter) in query.split('&').enumerate() {
                    shown.push(if i == 0 { '?' } else { '&' });
                    match parameter.split_once('=') {
                        Some((name, value)) if matches!(name, "db" | "protocol") => {
                            shown.push_str(name);
                            shown.push('=');
                            shown.push_str(value);
                        }
                        Some((name, value)) => {
                            shown.push_str(name);
                            shown.push('=');
                            shown.push_str(HIDDEN);
                            secrets.push(value);
                        }
                        None => shown.push_str(parameter),
                    }
                }
            }
        }
        let mut all: Vec<String> = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            all.extend(percent_decoded(secret));
            all.push(secret.to_owned());
        }
        // Longest first, so that no secret is left half shown by hiding a shorter one inside it.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        CredentialUrl {
            shown,
            secrets: all,
        }
    }

    /// A PostgreSQL `key=value` connection string (`host=db user=k password='s3 cret'`): the
    /// value of `password` hidden, quoted or not, escapes included.
    fn conninfo(text: &str) -> Self {
        let mut shown = String::new();
        let mut secrets = Vec::new();
        let mut rest = text;
        while let Some(eq) = rest.find('=') {
            let key = &rest[..eq];
            let after = &rest[eq + 1..].trim_start();
            let skipped = rest[eq + 1..].len() - after.len();
            // A value runs to the next unescaped quote when quoted, else to whitespace.
            let (value, len) = match after.strip_prefix('\'') {
                Some(quoted) => {
                    let end = unescaped_end(quoted, |c| c == '\'');
                    (&quoted[..end], (end + 2).min(after.len()))
                }
                None => {
                    // Unquoted, a value runs to whitespace that no backslash escapes (`ab\ cd`
                    // is one value to the client).
                    let end = unescaped_end(after, char::is_whitespace);
                    (&after[..end], end)
                }
            };
            shown.push_str(key);
            shown.push('=');
            if key.trim().eq_ignore_ascii_case("password") {
                shown.push_str(HIDDEN);
                secrets.push(value.to_owned());
                // As the client reads it: each backslash takes the next character as it is.
                let mut unescaped = String::with_capacity(value.len());
                let mut chars = value.chars();
                while let Some(c) = chars.next() {
                    unescaped.extend(if c == '\\' { chars.next() } else { Some(c) });
                }
                secrets.push(unescaped);
            } else {
                shown.push_str(&after[..len]);
            }
            rest = &rest[eq + 1 + skipped + len..];
        }
        shown.push_str(rest);
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        CredentialUrl { shown, secrets }
    }

    /// `text` with every credential of the URL replaced by `***`.
    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), HIDDEN);
            }
        }
        text
    }
}

/// Where the first character of `text` that `stop` picks, and no backslash escapes, is; the
/// end of `text` when there is none.
fn unescaped_end(text: &str, stop: impl Fn(char) -> bool) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if stop(c) => return i,
            _ => {}
        }
    }
    text.len()
}

/// Where the `scheme://` that begins `url` ends, if it begins with one: a letter, then letters,
/// digits, `+`, `-` or `.` (RFC 3986), then `://`.
fn scheme_end(url: &str) -> Option<usize> {
    let (scheme, _) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme.len() + 3)
}

/// Whether `text` begins as a conninfo string does: a parameter name (letters, digits, `_`),
/// then `=`, spaces allowed around it.
fn starts_with_parameter(text: &str) -> bool {
    text.split_once('=').is_some_and(|(name, _)| {
        let name = name.trim();
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `text` percent-decoded, when that changes it (a client sends the password decoded).
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .ok()
        .filter(|decoded| decoded != text)
}
