//! The environment variables the runtime reads: the keys file variable, the key prefix and the
//! rule for which variables a prefix's scan reads as keys.

/// The environment variable naming the keys file, unless `keys_file` is configured.
pub const KEYS_FILE_VAR: &str = "API_KEYS_FILE";

/// The environment variable holding the PostgreSQL URL of the key table, unless
/// `keys_database_url` is configured.
pub const DATABASE_URL_VAR: &str = "API_KEYS_DATABASE_URL";

/// The prefix of the variables that hold keys, unless `env_prefix` is configured.
pub const DEFAULT_ENV_PREFIX: &str = "API_KEY_";

/// The single-key variable of the default prefix `API_KEY_`.
const DEFAULT_SINGLE_VAR: &str = "API_KEY";

/// Variables with a meaning of their own, which the scan of a prefix that covers them must not
/// read as keys of another name.
const RESERVED_VARS: [&str; 3] = [KEYS_FILE_VAR, DATABASE_URL_VAR, DEFAULT_SINGLE_VAR];

/// Whether `prefix` is spelt as an environment prefix: upper-case letters, digits and `_`, ending
/// in `_`. (`Config::validate` also refuses a prefix that covers a variable of its own meaning.)
pub fn is_valid_env_prefix(prefix: &str) -> bool {
    prefix.ends_with('_') && prefix.bytes().all(is_env_name_byte)
}

/// The variable that holds the key `name` under `prefix`, as the environment scan reads it back:
/// `API_KEY_ORDERS` for `orders`.
pub fn env_var(prefix: &str, name: &str) -> String {
    format!("{prefix}{}", name.to_ascii_uppercase())
}

/// A byte of a variable name the scan reads: an upper-case letter, a digit or `_`.
pub(crate) fn is_env_name_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// How the environment scan reads a variable under a prefix.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvRole<'a> {
    /// `<prefix without its final _>`: the key `default`.
    Single,
    /// `<prefix><NAME>`: the key `<name>`.
    Named(&'a str),
    /// Not read.
    Other,
}

/// How the scan reads `var` under `prefix`, never taking a variable of its own meaning for a key.
pub(crate) fn env_role<'a>(prefix: &str, var: &'a str) -> EnvRole<'a> {
    let role = prefix_role(prefix, var);
    if shadows(var, &role) {
        EnvRole::Other
    } else {
        role
    }
}

fn prefix_role<'a>(prefix: &str, var: &'a str) -> EnvRole<'a> {
    if var == prefix.trim_end_matches('_') {
        EnvRole::Single
    } else if let Some(name) = var.strip_prefix(prefix) {
        EnvRole::Named(name)
    } else {
        EnvRole::Other
    }
}

/// Whether reading `var` as `role` would take a variable of its own meaning for a key:
/// `API_KEYS_FILE` holds a path and `API_KEYS_DATABASE_URL` a URL, never a key, and `API_KEY` is
/// the key `default` of the default prefix, never a key of another name. Read as a key, the path
/// would be a key without scopes, accepted by every route that requires none.
fn shadows(var: &str, role: &EnvRole<'_>) -> bool {
    match role {
        EnvRole::Other => false,
        EnvRole::Single => var != DEFAULT_SINGLE_VAR && RESERVED_VARS.contains(&var),
        EnvRole::Named(_) => RESERVED_VARS.contains(&var),
    }
}

/// The variable of its own meaning that the scan of `prefix` would read as a key, were it not
/// skipped: such a prefix is a configuration error, since it cannot work as written.
pub(crate) fn shadowed_var(prefix: &str) -> Option<&'static str> {
    RESERVED_VARS
        .into_iter()
        .find(|var| shadows(var, &prefix_role(prefix, var)))
}
