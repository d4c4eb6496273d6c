//! Reading key entries from their sources: the environment, the keys file and code.
//!
//! Every problem is collected (an operator fixes them all in one go) and reported with where it
//! is: the variable, the file and line, or the name given in code. No message repeats a key.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rocket::figment;
use zeroize::Zeroizing;

use crate::config::ConfigError;
pub use crate::entry::EntryError;
use crate::entry::{is_digest_entry, parse_entry, KeyEntry};
pub use crate::env::KEYS_FILE_VAR;
use crate::env::{env_role, is_env_name_byte, EnvRole};
pub use crate::reload_summary::ReloadSummary;

/// The longest key name, in bytes.
const MAX_NAME_LEN: usize = 64;

/// Readings of a keys file that keeps changing while it is read, before the load fails.
const READ_ATTEMPTS: u32 = 4;

/// The pause between two readings: time for a writer to finish.
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// The UTF-8 byte-order mark that some editors write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

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

/// What the keys file must be to be read: the rules the configuration sets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileRules {
    /// The largest file read, in bytes.
    pub max_size: u64,
    /// How long after its last change a file whose last line has no final newline is not
    /// trusted: the line may still be being written.
    pub settle: Duration,
}

/// A keys file that others may read or write: loaded, but worth a warning. Both carry the path
/// and the file's mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileWarning {
    /// Group or others may write it, so they could add a key of their own.
    Writable(PathBuf, u32),
    /// It holds plaintext keys, and group or others may read them.
    Readable(PathBuf, u32),
}

/// What the poller compares with the state at the last load: the file's [stamp](FileStamp)
/// (`None` when it cannot be read, so a file that disappears and comes back is noticed).
pub(crate) type FileState = Option<FileStamp>;

/// What tells one version of a file from another without reading it: its identity, size and
/// modification time. On Unix the inode's change time too, which no one can set back (`touch`
/// can set the modification time to anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    id: [i64; 4],
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    pub fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            // Reinterpreted, not converted: only equality matters.
            [
                meta.dev() as i64,
                meta.ino() as i64,
                meta.ctime(),
                meta.ctime_nsec(),
            ]
        };
        #[cfg(not(unix))]
        let id = [0; 4];
        FileStamp {
            id,
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
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
            match self.read_file(path, rules) {
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

    /// One reading of the keys file into the loader: `Ok(None)` when the file changed meanwhile
    /// (what was read may be torn), else the warnings about the file.
    fn read_file(
        &mut self,
        path: &Path,
        rules: FileRules,
    ) -> Result<Option<Vec<FileWarning>>, LoadError> {
        let fail = |e| LoadError::File(path.to_owned(), e);
        let mut file = open(path).map_err(fail)?;
        // The open handle's metadata, not the path's, which may name another file by now.
        let before = file.metadata().map_err(fail)?;
        if !before.is_file() {
            return Err(LoadError::NotRegularFile(path.to_owned(), kind(&before)));
        }
        let too_large = || LoadError::FileTooLarge(path.to_owned(), rules.max_size);
        if before.len() > rules.max_size {
            return Err(too_large());
        }
        let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
        let (mut filled, mut line_no, mut total) = (0, 0, 0u64);
        let (mut at_start, mut plaintext) = (true, false);
        let unterminated = loop {
            if filled == buf.len() {
                // A line longer than the buffer: grow it, wiping the old one.
                let mut bigger = Zeroizing::new(vec![0u8; buf.len() * 2]);
                bigger[..filled].copy_from_slice(&buf[..filled]);
                buf = bigger;
            }
            let n = match file.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail(e)),
            };
            // Counted as it is read: the file may have grown since its size was checked.
            total += n as u64;
            if total > rules.max_size {
                return Err(too_large());
            }
            let end = filled + n;
            let mut start = 0;
            if at_start {
                // A read that stopped inside a mark: read on before deciding.
                if n != 0 && end < BOM.len() && BOM.starts_with(&buf[..end]) {
                    filled = end;
                    continue;
                }
                // Only at the very start of the file: anywhere else it is part of a line.
                if buf[..end].starts_with(BOM) {
                    start = BOM.len();
                }
                at_start = false;
            }
            while let Some(len) = buf[start..end].iter().position(|&b| b == b'\n') {
                line_no += 1;
                plaintext |= self.file_line(path, line_no, &buf[start..start + len]);
                start += len + 1;
            }
            if n == 0 {
                let tail = &buf[start..end];
                if !tail.is_empty() {
                    plaintext |= self.file_line(path, line_no + 1, tail);
                }
                break tail.iter().any(|b| !b.is_ascii_whitespace());
            }
            buf.copy_within(start..end, 0);
            filled = end - start;
        };

        let stamp = FileStamp::of(&before);
        let after = file.metadata().map_err(fail)?;
        let same_at_path = std::fs::metadata(path).is_ok_and(|m| FileStamp::of(&m) == stamp);
        if FileStamp::of(&after) != stamp || !same_at_path || total != before.len() {
            return Ok(None);
        }
        if unterminated {
            // A modification time in the future (a clock set back) counts as just now.
            let age = before
                .modified()
                .ok()
                .and_then(|at| SystemTime::now().duration_since(at).ok())
                .unwrap_or_default();
            if age < rules.settle {
                return Err(LoadError::FileUnsettled(
                    path.to_owned(),
                    rules.settle - age,
                ));
            }
        }
        Ok(Some(permission_warnings(path, &before, plaintext)))
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

/// Opens the keys file for reading without waiting: opening a FIFO would otherwise block until
/// a writer comes, hanging ignition, or a reload with the reload lock held, which stops every
/// later reload.
fn open(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// What a file that is not a regular file is, for the error message.
fn kind(meta: &Metadata) -> &'static str {
    let file_type = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "something other than a file"
    }
}

/// Warnings about who else may use the keys file, judged as ssh judges a private key: writable
/// by group or others, anyone of them can add a key; readable, anyone can take a plaintext one.
#[cfg(unix)]
fn permission_warnings(path: &Path, meta: &Metadata, plaintext: bool) -> Vec<FileWarning> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    let mut warnings = Vec::new();
    if mode & 0o022 != 0 {
        warnings.push(FileWarning::Writable(path.to_owned(), mode));
    }
    if plaintext && mode & 0o044 != 0 {
        warnings.push(FileWarning::Readable(path.to_owned(), mode));
    }
    warnings
}

#[cfg(not(unix))]
fn permission_warnings(_: &Path, _: &Metadata, _: bool) -> Vec<FileWarning> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{
        env_var, is_valid_env_prefix, shadowed_var, DEFAULT_ENV_PREFIX, KEYS_FILE_VAR,
    };

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn messages(l: &Loader) -> Vec<String> {
        l.errors.iter().map(|e| e.to_string()).collect()
    }

    /// Rules under which every file is settled, and one with an hour's settle window.
    const SETTLED: FileRules = FileRules {
        max_size: 64 << 20,
        settle: Duration::ZERO,
    };
    const FRESH: FileRules = FileRules {
        max_size: 64 << 20,
        settle: Duration::from_secs(3600),
    };

    /// A directory of its own for a test's files, removed with it.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("rak-load-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Loads a keys file on another thread: a load that blocks fails the test instead of
    /// hanging it.
    fn load_file_within(path: &Path, rules: FileRules, limit: std::time::Duration) -> Loader {
        let (tx, rx) = std::sync::mpsc::channel();
        let path = path.to_owned();
        std::thread::spawn(move || {
            let mut l = Loader::default();
            l.file(&path, rules);
            let _ = tx.send(l);
        });
        rx.recv_timeout(limit)
            .expect("loading the keys file blocked")
    }

    #[test]
    fn env_names_and_default() {
        let mut l = Loader::default();
        l.env(
            "API_KEY_",
            vars(&[
                ("API_KEY", A),
                ("API_KEY_ORDERS_2", B),
                ("PATH", "/bin"),
                ("API_KEYS_FILE", "x"),
            ]),
        );
        assert!(l.errors.is_empty(), "{:?}", messages(&l));
        let names: Vec<&str> = l.loaded.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["default", "orders_2"]);
    }

    #[test]
    fn retired_names_stay_within_64_bytes_and_lead_back_to_their_name() {
        assert_eq!(retired_name("orders", 17), "orders_r17");
        assert_eq!(retired_from("orders_r17"), Some("orders"));
        assert_eq!(
            retired_from(&retired_name("orders_r3", 40)),
            Some("orders_r3")
        );
        let long = "a".repeat(64);
        let retired = retired_name(&long, 12345);
        assert_eq!(retired.len(), 64);
        assert!(retired.ends_with("_r12345"));
        assert!(key_name(&retired).is_some());
        assert_eq!(retired_from(&retired), Some(&long[..57]));
        for other in [
            "orders",
            "orders_r",
            "_r17",
            "orders_rx",
            "orders_r1x",
            "r17",
            "orders17",
        ] {
            assert_eq!(retired_from(other), None, "{other}");
        }
    }

    /// What `apikey` prints for a name, under any valid prefix, loads back as that name.
    #[test]
    fn env_var_is_read_back_as_the_key_name() {
        let longest = "x".repeat(MAX_NAME_LEN);
        for prefix in [DEFAULT_ENV_PREFIX, "BILLING_KEY_", "K_2_"] {
            assert!(is_valid_env_prefix(prefix), "{prefix}");
            for given in ["orders", "Orders_2027", "_", "9", longest.as_str()] {
                let name = key_name(given).unwrap();
                let mut l = Loader::default();
                l.env(prefix, vars(&[(&env_var(prefix, &name), A)]));
                assert!(l.errors.is_empty(), "{:?}", messages(&l));
                assert_eq!(l.loaded[0].name, name);
            }
        }
    }

    #[test]
    fn key_names_and_env_prefixes() {
        assert_eq!(key_name("Orders_2").as_deref(), Some("orders_2"));
        let too_long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in ["", "a-b", "a b", "é", too_long.as_str()] {
            assert_eq!(key_name(bad), None, "{bad}");
        }
        for bad in ["", "_X", "API_KEY", "api_key_", "API-KEY_", "API KEY_"] {
            assert!(!is_valid_env_prefix(bad), "{bad}");
        }
        assert!(is_valid_env_prefix("_"));
    }

    #[test]
    fn env_prefix_never_reads_the_keys_file_variable_or_api_key_as_keys() {
        // Both values are valid plaintext keys: read as entries, they would load.
        let env = || {
            vars(&[
                ("API_KEYS_FILE", "/etc/orders/api-keys"),
                ("API_KEY", A),
                ("API_KEY_ORDERS", B),
                ("API", "cccccccccccccccccccccccc"),
                ("API_KEYS_REPORTS", "dddddddddddddddddddddddd"),
            ])
        };
        let names = |prefix: &str| {
            let mut l = Loader::default();
            l.env(prefix, env());
            assert!(l.errors.is_empty(), "{prefix}: {:?}", messages(&l));
            let mut names: Vec<String> = l.loaded.into_iter().map(|k| k.name).collect();
            names.sort();
            names
        };
        assert_eq!(names("API_KEY_"), ["default", "orders"]);
        assert_eq!(names("API_"), ["default", "key_orders", "keys_reports"]);
        assert_eq!(names("API_KEYS_"), ["reports"]);
        assert_eq!(names("API_KEYS_FILE_"), Vec::<String>::new());

        // Such prefixes are refused by `Config::validate`, through this.
        assert_eq!(shadowed_var("API_"), Some(KEYS_FILE_VAR));
        assert_eq!(shadowed_var("API_KEYS_"), Some(KEYS_FILE_VAR));
        assert_eq!(shadowed_var("API_KEYS_FILE_"), Some(KEYS_FILE_VAR));
        for fine in ["API_KEY_", "BILLING_KEY_", "API_KEYS_FILES_", "APIS_"] {
            assert_eq!(shadowed_var(fine), None, "{fine}");
        }
    }

    #[test]
    fn misspelt_digests_are_errors_naming_where_they_are() {
        let hex = &crate::digest::KeyDigest::of(A.as_bytes()).to_entry()[7..];
        let dir = TempDir::new("misspelt");
        let path = dir.write(
            "keys",
            format!("good=sha256={hex}\nbad=SHA256-{hex};scopes=admin\nother=sha-256:{hex}\n"),
        );
        let mut l = Loader::default();
        l.env(
            "API_KEY_",
            vars(&[
                ("API_KEY_X", &format!("Sha256_{hex}")),
                ("API_KEY_Y", &format!("SHA2={hex};scopes=admin")),
            ]),
        );
        l.file(&path, SETTLED);
        let m = messages(&l);
        let misspelt = "the key looks like a digest but is not `sha256:` and 64 hex digits";
        let expected = [
            "environment variable `API_KEY_X`".to_owned(),
            "environment variable `API_KEY_Y`".to_owned(),
            format!("{}:2", path.display()),
            format!("{}:3", path.display()),
        ];
        assert_eq!(m.len(), expected.len(), "{m:?}");
        for (message, place) in m.iter().zip(&expected) {
            assert!(
                message.starts_with(&format!("{place}: {misspelt};")),
                "{message}"
            );
            assert!(!message.contains(&hex[..8]), "{message}");
        }
        let names: Vec<&str> = l.loaded.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["good"]);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let mut l = Loader::default();
        l.env(
            "API_KEY_",
            vars(&[
                ("API_KEY_", A),
                ("API_KEY_lower", A),
                ("API_KEY_BAD", "short"),
            ]),
        );
        assert_eq!(
            messages(&l),
            [
                "environment variable `API_KEY_`: the name after the prefix must be upper-case letters, digits and `_`",
                "environment variable `API_KEY_lower`: the name after the prefix must be upper-case letters, digits and `_`",
                "environment variable `API_KEY_BAD`: the key is shorter than 16 characters; generate a random key of at least 32 bytes",
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn env_not_unicode() {
        use std::os::unix::ffi::OsStringExt;
        let mut l = Loader::default();
        l.env(
            "API_KEY_",
            [("API_KEY_X".into(), OsString::from_vec(vec![0xff; 20]))],
        );
        assert_eq!(
            messages(&l),
            ["environment variable `API_KEY_X`: the value is not UTF-8"]
        );
    }

    #[test]
    fn duplicates() {
        let mut l = Loader::default();
        l.env("API_KEY_", vars(&[("API_KEY_ONE", A), ("API_KEY_TWO", A)]));
        l.named_entry("ONE", KeySource::Code("ONE".into()), B);
        let hashed = crate::digest::KeyDigest::of(A.as_bytes()).to_entry();
        l.named_entry("three", KeySource::Code("three".into()), &hashed);
        assert_eq!(
            messages(&l),
            [
                "environment variable `API_KEY_TWO`: the same key is already configured by environment variable `API_KEY_ONE`; give each client its own key",
                "key `ONE` given in code: this name is already used by environment variable `API_KEY_ONE`",
                "key `three` given in code: the same key is already configured by environment variable `API_KEY_ONE`; give each client its own key",
            ]
        );
    }

    #[test]
    fn file_lines() {
        let dir = std::env::temp_dir().join(format!("rak-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        std::fs::write(
            &path,
            format!("# comment\n\n  reader = {A};scopes=read\n{B}\nbad name={B}x\nw=short\r\n"),
        )
        .unwrap();
        let mut l = Loader::default();
        l.file(&path, SETTLED);
        let p = path.display();
        assert_eq!(
            messages(&l),
            [
                format!("{p}:4: expected `name=entry`, a blank line or a `#` comment"),
                format!("{p}:5: a key name is letters, digits and `_`"),
                format!("{p}:6: the key is shorter than 16 characters; generate a random key of at least 32 bytes"),
            ]
        );
        assert_eq!(l.loaded.len(), 1);
        assert_eq!(l.loaded[0].entry.scopes, ["read"]);
        for m in messages(&l) {
            assert!(!m.contains(B), "{m}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn file_lines_across_reads() {
        // Lines longer than the read buffer, lines split between reads, no final newline.
        let dir = std::env::temp_dir().join(format!("rak-load-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys");
        let mut text = format!("# {}\n", "x".repeat(200_000));
        for i in 0..5000 {
            text.push_str(&format!("k{i}=key-number-{i:08}-padding\n"));
        }
        text.push_str(&format!("bad\nlast={B}"));
        std::fs::write(&path, text).unwrap();
        let mut l = Loader::default();
        l.file(&path, SETTLED);
        assert_eq!(
            messages(&l),
            [format!(
                "{}:5002: expected `name=entry`, a blank line or a `#` comment",
                path.display()
            )]
        );
        assert_eq!(l.loaded.len(), 5001);
        assert_eq!(l.loaded[4999].source, KeySource::File(path.clone(), 5001));
        assert_eq!(l.loaded[5000].name, "last");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_file() {
        let mut l = Loader::default();
        l.file(Path::new("/nonexistent/keys"), SETTLED);
        assert!(messages(&l)[0].starts_with("cannot read keys file /nonexistent/keys: "));
    }

    #[test]
    fn a_byte_order_mark_is_skipped_at_the_start_only() {
        let dir = TempDir::new("bom");
        let path = dir.write("keys", format!("\u{feff}a={A}\n\u{feff}b={B}\n"));
        let mut l = Loader::default();
        l.file(&path, SETTLED);
        assert_eq!(
            messages(&l),
            [format!(
                "{}:2: a key name is letters, digits and `_`",
                path.display()
            )]
        );
        assert_eq!(l.loaded.len(), 1);
        assert_eq!(l.loaded[0].name, "a");
        assert_eq!(l.loaded[0].source, KeySource::File(path.clone(), 1));

        // A comment first, and a file that is nothing but the mark.
        let path = dir.write("comment", format!("\u{feff}# keys\na={A}"));
        let mut l = Loader::default();
        l.file(&path, SETTLED);
        assert!(l.errors.is_empty(), "{:?}", messages(&l));
        assert_eq!(l.loaded.len(), 1);
        let path = dir.write("empty", "\u{feff}");
        let mut l = Loader::default();
        l.file(&path, SETTLED);
        assert!(
            l.errors.is_empty() && l.loaded.is_empty(),
            "{:?}",
            messages(&l)
        );
    }

    #[test]
    fn an_unterminated_last_line_is_trusted_only_once_settled() {
        let dir = TempDir::new("unterminated");
        // `ips=10.0.0.0/16` while its writer is still at `/1`.
        let path = dir.write("keys", format!("a={A}\nb={B};ips=10.0.0.0/1"));
        let mut l = Loader::default();
        l.file(&path, FRESH);
        assert!(l.loaded.is_empty());
        assert!(
            matches!(&l.errors[..], [LoadError::FileUnsettled(p, wait)]
                if *p == path && *wait > Duration::from_secs(3500)),
            "{:?}",
            messages(&l)
        );
        assert!(
            messages(&l)[0].contains("may be half-written"),
            "{:?}",
            messages(&l)
        );

        // The same line, ended: trusted at once.
        std::fs::write(&path, format!("a={A}\nb={B};ips=10.0.0.0/16\n")).unwrap();
        let mut l = Loader::default();
        l.file(&path, FRESH);
        assert!(l.errors.is_empty(), "{:?}", messages(&l));
        assert_eq!(l.loaded[1].entry.ips[0].to_string(), "10.0.0.0/16");

        // A file without a final newline that has not changed for the window loads as before;
        // trailing blanks are no unterminated line.
        std::fs::write(&path, format!("a={A}\nb={B};ips=10.0.0.0/1")).unwrap();
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        let mut l = Loader::default();
        l.file(&path, FRESH);
        assert!(l.errors.is_empty(), "{:?}", messages(&l));
        assert_eq!(l.loaded.len(), 2);
        std::fs::write(&path, format!("a={A}\n  \t")).unwrap();
        let mut l = Loader::default();
        l.file(&path, FRESH);
        assert!(l.errors.is_empty(), "{:?}", messages(&l));
    }

    /// The reading position of this process's open handle on `path`, if it has one.
    #[cfg(target_os = "linux")]
    fn read_position(path: &Path) -> Option<u64> {
        std::fs::read_dir("/proc/self/fd")
            .ok()?
            .flatten()
            .find_map(|fd| {
                if std::fs::read_link(fd.path()).ok()? != path {
                    return None;
                }
                let info = std::fs::read_to_string(format!(
                    "/proc/self/fdinfo/{}",
                    fd.file_name().to_str()?
                ))
                .ok()?;
                info.lines()
                    .find_map(|l| l.strip_prefix("pos:"))
                    .and_then(|p| p.trim().parse().ok())
            })
    }

    /// Loads `path` while `change` runs once the reading of `opened` (the file `path` leads to)
    /// is past its first read and before its last.
    #[cfg(target_os = "linux")]
    fn load_while_changed(
        path: &Path,
        opened: &Path,
        len: u64,
        change: impl Fn() + Sync,
    ) -> Loader {
        let mut l = Loader::default();
        let changed = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                let started = std::time::Instant::now();
                while started.elapsed() < Duration::from_secs(10) {
                    if read_position(opened).is_some_and(|pos| pos > 0 && pos < len) {
                        change();
                        return true;
                    }
                    std::thread::yield_now();
                }
                false
            });
            l.file(path, SETTLED);
            writer.join().unwrap()
        });
        assert!(changed, "the writer never met the read in progress");
        l
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_changed_between_two_reads_is_read_again() {
        use std::io::Write;

        // Two versions of the same length, several reads long.
        let version = |scope: &str| -> String {
            (0..3000)
                .map(|i| format!("k{i}=key-number-{i:08}-padding;scopes={scope}\n"))
                .collect()
        };
        let (a, b) = (version("a"), version("b"));
        let len = a.len() as u64;
        // Long unchanged, so that only the change during the read tells the versions apart.
        let write_old = |path: &Path| {
            std::fs::write(path, &a).unwrap();
            let file = File::options().write(true).open(path).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(3600))
                .unwrap();
        };
        let only_b = |how: &str, l: &Loader| {
            assert!(l.errors.is_empty(), "{how}: {:?}", messages(l));
            assert_eq!(l.loaded.len(), 3000);
            let other = l.loaded.iter().filter(|k| k.entry.scopes != ["b"]).count();
            assert_eq!(other, 0, "{how}: lines of the earlier version were loaded");
        };
        let dir = TempDir::new("changed");

        // Written over, in place and at the same length: seen through the open handle.
        let path = dir.0.join("in-place");
        write_old(&path);
        let l = load_while_changed(&path, &path, len, || {
            let mut file = File::options().write(true).open(&path).unwrap();
            file.write_all(b.as_bytes()).unwrap();
        });
        only_b("in place", &l);

        // Replaced by `mv`.
        let path = dir.0.join("moved");
        write_old(&path);
        let l = load_while_changed(&path, &path, len, || {
            std::fs::write(dir.0.join("moved.tmp"), &b).unwrap();
            std::fs::rename(dir.0.join("moved.tmp"), &path).unwrap();
        });
        only_b("by `mv`", &l);

        // A link swapped to a new file, as Kubernetes updates a mounted secret: the file being
        // read is untouched, only the path tells.
        let (old, new, path) = (dir.0.join("old"), dir.0.join("new"), dir.0.join("linked"));
        write_old(&old);
        std::os::unix::fs::symlink(&old, &path).unwrap();
        let l = load_while_changed(&path, &old, len, || {
            std::fs::write(&new, &b).unwrap();
            std::os::unix::fs::symlink(&new, dir.0.join("linked.tmp")).unwrap();
            std::fs::rename(dir.0.join("linked.tmp"), &path).unwrap();
        });
        only_b("by a swapped link", &l);
    }

    #[test]
    fn a_file_written_in_place_while_read_never_loads_torn() {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
        use std::sync::Arc;

        let dir = TempDir::new("torn");
        // Large enough to take several reads, ending with the line a torn read would widen.
        let mut head = String::new();
        for i in 0..4000 {
            let key = crate::digest::KeyDigest::of(format!("key-{i}").as_bytes()).to_entry();
            head.push_str(&format!("k{i}={key};scopes=read\n"));
        }
        head.push_str(&format!("last={A};ips=10.0.0.0/1"));
        let path = dir.write("keys", format!("{head}6\n"));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (path, stop, head) = (path.clone(), stop.clone(), head.clone());
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    // In place, in two writes, as an editor or `echo >` may do.
                    let mut file = File::options()
                        .write(true)
                        .truncate(true)
                        .open(&path)
                        .unwrap();
                    file.write_all(head.as_bytes()).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                    file.write_all(b"6\n").unwrap();
                    drop(file);
                    std::thread::sleep(Duration::from_millis(15));
                }
            })
        };
        let started = std::time::Instant::now();
        let (mut whole, mut emptied, mut refused) = (0, 0, 0);
        while started.elapsed() < Duration::from_millis(1500) {
            let mut l = Loader::default();
            l.file(&path, FRESH);
            if l.errors.is_empty() && l.loaded.is_empty() {
                // The file as it is between truncation and the first write: a real version of
                // it, which revokes rather than widens.
                emptied += 1;
            } else if l.errors.is_empty() {
                assert_eq!(l.loaded.len(), 4001, "a torn file loaded");
                let last = &l.loaded[4000].entry;
                assert_eq!(last.ips[0].to_string(), "10.0.0.0/16", "a torn line loaded");
                whole += 1;
            } else {
                assert!(
                    l.errors.iter().all(LoadError::is_transient) && l.loaded.is_empty(),
                    "{:?}",
                    messages(&l)
                );
                refused += 1;
            }
        }
        stop.store(true, SeqCst);
        writer.join().unwrap();
        // Once the writer is done, the file loads.
        let mut l = Loader::default();
        l.file(&path, FRESH);
        assert!(l.errors.is_empty(), "{:?}", messages(&l));
        assert_eq!(l.loaded.len(), 4001);
        eprintln!(
            "while the file was written: {whole} whole loads, {emptied} empty, {refused} refused"
        );
    }

    #[cfg(unix)]
    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = TempDir::new("kinds");
        let fifo = dir.0.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let limit = Duration::from_secs(10);
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (dir.0.as_path(), "a directory"),
        ] {
            // A small cap as well, so a regression reading /dev/zero stops at it.
            let rules = FileRules {
                max_size: 1 << 20,
                ..SETTLED
            };
            let l = load_file_within(path, rules, limit);
            assert_eq!(
                messages(&l),
                [format!(
                    "cannot read keys file {}: it is {kind}; the keys file must be a regular file",
                    path.display()
                )]
            );
        }
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused() {
        let dir = TempDir::new("size");
        let text = format!("a={A}\nb={B}\n");
        let path = dir.write("keys", &text);
        let exact = FileRules {
            max_size: text.len() as u64,
            ..SETTLED
        };
        let mut l = Loader::default();
        l.file(&path, exact);
        assert!(l.errors.is_empty(), "{:?}", messages(&l));
        assert_eq!(l.loaded.len(), 2);

        let under = FileRules {
            max_size: text.len() as u64 - 1,
            ..SETTLED
        };
        let mut l = Loader::default();
        l.file(&path, under);
        assert!(l.loaded.is_empty());
        assert_eq!(
            messages(&l),
            [format!(
                "keys file {} is larger than `api_keys.keys_file_max_size` ({} bytes); raise the limit if the file is meant to be this large",
                path.display(),
                text.len() - 1
            )]
        );
    }

    #[cfg(unix)]
    #[test]
    fn permissions_that_let_others_in_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("modes");
        let hashed = crate::digest::KeyDigest::of(A.as_bytes()).to_entry();
        let plain = dir.write("plain", format!("a={A}\n"));
        let digests = dir.write("digests", format!("a={hashed}\n"));
        let warnings = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            let mut l = Loader::default();
            l.file(path, SETTLED);
            assert!(l.errors.is_empty(), "{:?}", messages(&l));
            l.warnings
        };
        let w = |p: &Path, m| FileWarning::Writable(p.to_owned(), m);
        let r = |p: &Path, m| FileWarning::Readable(p.to_owned(), m);
        assert_eq!(warnings(&plain, 0o600), []);
        assert_eq!(warnings(&plain, 0o400), []);
        assert_eq!(warnings(&plain, 0o640), [r(&plain, 0o640)]);
        assert_eq!(warnings(&plain, 0o604), [r(&plain, 0o604)]);
        assert_eq!(
            warnings(&plain, 0o666),
            [w(&plain, 0o666), r(&plain, 0o666)]
        );
        assert_eq!(warnings(&digests, 0o644), []);
        assert_eq!(warnings(&digests, 0o620), [w(&digests, 0o620)]);
        assert_eq!(warnings(&digests, 0o602), [w(&digests, 0o602)]);
    }
}
