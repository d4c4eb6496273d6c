//! Reading key entries from their sources: the environment, the keys file and code.
//!
//! Every problem is collected (an operator fixes them all in one go) and reported with where it
//! is: the variable, the file and line, or the name given in code. No message repeats a key.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rocket::figment;
use zeroize::Zeroizing;

use crate::config::ConfigError;
pub use crate::entry::EntryError;
use crate::entry::{is_digest_entry, parse_entry, KeyEntry};
pub use crate::env::KEYS_FILE_VAR;
use crate::env::{env_role, is_env_name_byte, EnvRole};

mod file;
mod summary;

pub(crate) use file::{FileRules, FileStamp, FileState, FileWarning};
use file::{READ_ATTEMPTS, RETRY_PAUSE};
pub(crate) use summary::NameList;
pub use summary::ReloadSummary;

/// The longest key name, in bytes.
const MAX_NAME_LEN: usize = 64;

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable, by name.
    Env(String),
    /// A line (1-based) of the keys file.
    File(PathBuf, usize),
    /// [`ApiKeyStoreBuilder::key`](crate::ApiKeyStoreBuilder::key), by the name given.
    Code(String),
    /// A row of the PostgreSQL table (feature `postgres`), by its name.
    Database(String),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(var) => write!(f, "environment variable `{var}`"),
            KeySource::File(path, line) => write!(f, "{}:{line}", path.display()),
            KeySource::Code(name) => write!(f, "key `{name}` given in code"),
            KeySource::Database(name) => write!(f, "key `{name}` in the database"),
        }
    }
}

/// A problem with the key configuration, found at ignite (or reload).
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// An entry that does not parse.
    Entry(KeySource, EntryError),
    /// A key name outside `[A-Z0-9_]+` (environment) or `[A-Za-z0-9_]+` (file, code).
    Name(KeySource),
    /// A value that is not UTF-8.
    NotUnicode(KeySource),
    /// The same secret configured twice: one key, one identity.
    DuplicateKey(KeySource, KeySource),
    /// The same name configured twice.
    DuplicateName(KeySource, KeySource),
    /// A keys-file line that is not `name=value`.
    FileSyntax(KeySource),
    /// The keys file cannot be read.
    File(PathBuf, std::io::Error),
    /// The keys file is not a regular file (the path, and what it is instead): a FIFO would
    /// block the load, and a device could be read without end.
    NotRegularFile(PathBuf, &'static str),
    /// The keys file is larger than `keys_file_max_size` (the path and that limit, in bytes).
    FileTooLarge(PathBuf, u64),
    /// The keys file changed during every reading of it, so each could have been torn.
    FileChanging(PathBuf),
    /// The keys file's last line has no final newline and the file changed moments ago, so the
    /// line may be half-written (`/16` cut to `/1`). The path, and how long until a file left
    /// unchanged is trusted as it is; a reload is attempted again at the next poll.
    FileUnsettled(PathBuf, Duration),
    /// A setting of the runtime configuration (`api_keys` table) is refused; each is its own
    /// error.
    Config(ConfigError),
    /// The PostgreSQL key table cannot be read (why, without credentials), or is configured
    /// where it cannot be.
    Database(String),
    /// The runtime configuration (`api_keys` table) cannot be read into
    /// [`Config`](crate::config::Config): an unknown field, a value of the wrong type.
    Settings(Box<figment::Error>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Entry(source, e) => write!(f, "{source}: {e}"),
            LoadError::Name(source @ KeySource::Env(_)) => write!(
                f,
                "{source}: the name after the prefix must be upper-case letters, digits and `_`"
            ),
            LoadError::Name(source) => {
                write!(f, "{source}: a key name is letters, digits and `_`")
            }
            LoadError::NotUnicode(source) => write!(f, "{source}: the value is not UTF-8"),
            LoadError::DuplicateKey(source, first) => write!(
                f,
                "{source}: the same key is already configured by {first}; give each client its own key"
            ),
            LoadError::DuplicateName(source, first) => {
                write!(f, "{source}: this name is already used by {first}")
            }
            LoadError::FileSyntax(source) => write!(
                f,
                "{source}: expected `name=entry`, a blank line or a `#` comment"
            ),
            LoadError::File(path, e) => write!(f, "cannot read keys file {}: {e}", path.display()),
            LoadError::NotRegularFile(path, kind) => write!(
                f,
                "cannot read keys file {}: it is {kind}; the keys file must be a regular file",
                path.display()
            ),
            LoadError::FileTooLarge(path, max) => write!(
                f,
                "keys file {} is larger than `api_keys.keys_file_max_size` ({max} bytes); raise the limit if the file is meant to be this large",
                path.display()
            ),
            LoadError::FileChanging(path) => write!(
                f,
                "keys file {} changed while it was read, {READ_ATTEMPTS} times in a row; write it atomically (write a copy, then `mv` it over the original)",
                path.display()
            ),
            LoadError::FileUnsettled(path, _) => write!(
                f,
                "keys file {} may be half-written: its last line has no final newline and the file changed moments ago (left unchanged for a poll interval, it is read as it is); end the file with a newline, or write it atomically (write a copy, then `mv` it over the original)",
                path.display()
            ),
            LoadError::Config(e) => write!(f, "{e}"),
            LoadError::Settings(e) => write!(f, "invalid `api_keys` configuration: {e}"),
            LoadError::Database(why) => write!(f, "key database: {why}"),
        }
    }
}

impl LoadError {
    /// Whether the error is about this moment, not about what the file says: a later reading of
    /// the same file may succeed, so the poller must try again even if the file does not change.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            LoadError::FileChanging(_) | LoadError::FileUnsettled(..)
        )
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Entry(_, e) => Some(e),
            LoadError::File(_, e) => Some(e),
            _ => None,
        }
    }
}

/// All the problems of one load. Displayed one per line.
#[derive(Debug)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// One loaded entry with its name and origin.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub name: String,
    pub source: KeySource,
    pub entry: KeyEntry,
}

/// Collects entries and errors from all sources.
#[derive(Debug, Default)]
pub(crate) struct Loader {
    pub loaded: Vec<Loaded>,
    pub errors: Vec<LoadError>,
    /// About the keys file, logged by whoever runs the load.
    pub warnings: Vec<FileWarning>,
    // Indexes for the duplicate checks, so a large keys file loads in linear time.
    by_name: HashMap<String, usize>,
    /// Digest prefix → the first entry with it.
    by_prefix: HashMap<u64, usize>,
    /// Further entries whose prefix an earlier one has (distinct keys sharing 64 bits of digest:
    /// in practice never), kept apart so the common case costs no allocation per key.
    same_prefix: Vec<usize>,
}

impl Loader {
    /// Entries from environment variables `<prefix><NAME>` and `<prefix without _>` (`default`).
    pub fn env(&mut self, prefix: &str, vars: impl IntoIterator<Item = (OsString, OsString)>) {
        for (var, value) in vars {
            let var_lossy = var.to_string_lossy();
            let name = match env_role(prefix, &var_lossy) {
                EnvRole::Other => continue,
                EnvRole::Single => "default".to_owned(),
                EnvRole::Named(name) => {
                    if var.to_str().is_none()
                        || name.is_empty()
                        || !name.bytes().all(is_env_name_byte)
                    {
                        let source = KeySource::Env(var_lossy.to_string());
                        self.errors.push(LoadError::Name(source));
                        continue;
                    }
                    name.to_ascii_lowercase()
                }
            };
            let source = KeySource::Env(var_lossy.into_owned());
            match value.into_string() {
                Ok(value) => self.entry(name, source, &Zeroizing::new(value)),
                Err(_) => self.errors.push(LoadError::NotUnicode(source)),
            }
        }
    }

    /// Entries from a keys file: `name=entry` lines, blank lines and `#` comments.
    ///
    /// Read in chunks into one buffer that is wiped when dropped or outgrown, so a large file is
    /// never held whole beside the keys parsed from it (and no copy of a key is left behind, as
    /// `BufReader` would).
    ///
    /// What loads is one version of the file. A file replaced meanwhile (`mv`) is not the one
    /// being read; one written in place while it is read shows it in its size or modification
    /// time, through the open handle or the path, and is read again (a few times, then the load
    /// fails). A last line without a final newline in a file that changed less than
    /// `rules.settle` ago may be half-written (`/16` cut to `/1`) and is not trusted yet.
    pub fn file(&mut self, path: &Path, rules: FileRules) {
        // What a reading adds is taken back if the reading does not count.
        let mark = (self.loaded.len(), self.errors.len());
        for attempt in 1..=READ_ATTEMPTS {
            match file::read(path, rules, |line_no, line| {
                self.file_line(path, line_no, line)
            }) {
                Ok(Some(warnings)) => return self.warnings.extend(warnings),
                Ok(None) => {
                    self.rollback(mark);
                    if attempt < READ_ATTEMPTS {
                        std::thread::sleep(RETRY_PAUSE);
                    }
                }
                Err(e) => {
                    // Entries of a file that cannot be read whole are noise beside the reason.
                    self.rollback(mark);
                    return self.errors.push(e);
                }
            }
        }
        self.errors.push(LoadError::FileChanging(path.to_owned()));
    }

    /// Forgets what was loaded since `mark`: a reading of the keys file that does not count.
    fn rollback(&mut self, (loaded, errors): (usize, usize)) {
        for gone in self.loaded.drain(loaded..) {
            self.by_name.remove(&gone.name);
            let prefix = gone.entry.digest.prefix();
            if self.by_prefix.get(&prefix).is_some_and(|&i| i >= loaded) {
                self.by_prefix.remove(&prefix);
            }
        }
        self.same_prefix.retain(|&i| i < loaded);
        self.errors.truncate(errors);
    }

    /// One line of the keys file; whether it holds a key in plaintext (rather than its digest).
    fn file_line(&mut self, path: &Path, line_no: usize, line: &[u8]) -> bool {
        let source = || KeySource::File(path.to_owned(), line_no);
        let Ok(line) = std::str::from_utf8(line) else {
            self.errors.push(LoadError::NotUnicode(source()));
            // Not known to be a digest: a secret is assumed.
            return true;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return false;
        }
        let Some((name, value)) = line.split_once('=') else {
            self.errors.push(LoadError::FileSyntax(source()));
            return true;
        };
        self.named_entry(name.trim(), source(), value);
        !is_digest_entry(value)
    }

    /// An entry given in code (or in a file line), after checking its name.
    pub fn named_entry(&mut self, name: &str, source: KeySource, value: &str) {
        let Some(name) = key_name(name) else {
            // The name is not echoed: a line without a proper name may be a bare key.
            let source = match source {
                KeySource::Code(_) => KeySource::Code("<invalid name>".into()),
                other => other,
            };
            return self.errors.push(LoadError::Name(source));
        };
        self.entry(name, source, value);
    }

    fn entry(&mut self, name: String, source: KeySource, value: &str) {
        match parse_entry(value) {
            Ok(entry) => self.push(Loaded {
                name,
                source,
                entry,
            }),
            Err(e) => self.errors.push(LoadError::Entry(source, e)),
        }
    }

    /// A key read from a row of the PostgreSQL table, its name checked already (rows that do not
    /// load are left out by the table's copy, which tells them).
    #[cfg(feature = "postgres")]
    pub fn database_entry(&mut self, name: &str, entry: KeyEntry) {
        self.push(Loaded {
            name: name.to_owned(),
            source: KeySource::Database(name.to_owned()),
            entry,
        })
    }

    /// The entries and the errors, without the indexes.
    pub fn into_parts(self) -> (Vec<Loaded>, Vec<LoadError>) {
        (self.loaded, self.errors)
    }

    pub fn push(&mut self, new: Loaded) {
        if let Some(&i) = self.by_name.get(&new.name) {
            let first = self.loaded[i].source.clone();
            return self
                .errors
                .push(LoadError::DuplicateName(new.source, first));
        }
        let prefix = new.entry.digest.prefix();
        let index = self.loaded.len();
        let earlier = match self.by_prefix.get(&prefix) {
            None => {
                self.by_prefix.insert(prefix, index);
                None
            }
            Some(&first) => {
                let loaded = &self.loaded;
                let found = std::iter::once(first)
                    .chain(
                        self.same_prefix
                            .iter()
                            .copied()
                            .filter(|&i| loaded[i].entry.digest.prefix() == prefix),
                    )
                    .find(|&i| loaded[i].entry.digest.ct_eq(&new.entry.digest));
                if found.is_none() {
                    self.same_prefix.push(index);
                }
                found
            }
        };
        if let Some(i) = earlier {
            let first = self.loaded[i].source.clone();
            return self.errors.push(LoadError::DuplicateKey(new.source, first));
        }
        self.by_name.insert(new.name.clone(), self.loaded.len());
        self.loaded.push(new);
    }
}

/// A key's name as the store keeps it, from a name given in code, on a line of the keys file or to
/// the `apikey` command: 1 to 64 ASCII letters, digits and `_`, lower-cased. `None` for any other.
#[doc(hidden)]
pub fn key_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| name.to_ascii_lowercase())
}

/// The name a key retired by `apikey rotate` keeps through its grace period:
/// `<name>_r<revision>`, within the 64 bytes of a name (the end of a long name gives way).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn retired_name(name: &str, revision: i64) -> String {
    let suffix = format!("_r{revision}");
    let keep = MAX_NAME_LEN.saturating_sub(suffix.len()).min(name.len());
    format!("{}{suffix}", &name[..keep])
}

/// The name a [`retired_name`] was made from (`orders` for `orders_r17`), as far as the name
/// shows it: any name ending in `_r` and digits after at least one other byte. `None` for
/// another name.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn retired_from(name: &str) -> Option<&str> {
    let (base, revision) = name.rsplit_once("_r")?;
    let is_revision = !revision.is_empty() && revision.bytes().all(|b| b.is_ascii_digit());
    (is_revision && !base.is_empty()).then_some(base)
}

#[cfg(test)]
mod tests;
