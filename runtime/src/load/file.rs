//! The keys file, read as a file that others may be writing: opened without waiting (a FIFO), a
//! byte-order mark skipped, read into a buffer wiped when dropped, told apart from a version
//! written meanwhile by its [stamp](FileStamp), a last line not trusted until it has settled, and
//! who else may read or write it told.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use super::LoadError;
use crate::config::Config;
use crate::target::TARGET;

/// Readings of a keys file that keeps changing while it is read, before the load fails.
pub(super) const READ_ATTEMPTS: u32 = 4;

/// The pause between two readings: time for a writer to finish.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// The UTF-8 byte-order mark that some editors write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the keys file must be to be read: the rules the configuration sets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileRules {
    /// The largest file read, in bytes.
    pub max_size: u64,
    /// How long after its last change a file whose last line has no final newline is not
    /// trusted: the line may still be being written.
    pub settle: Duration,
}

impl FileRules {
    /// The rules of `config`. A file whose last line has no final newline is trusted once
    /// unchanged for a poll interval: the poll after the one that deferred it finds it settled.
    /// With polling off, for the default interval.
    pub fn of(config: &Config) -> FileRules {
        let settle = if config.reload_interval.is_zero() {
            Config::default().reload_interval
        } else {
            config.reload_interval
        };
        FileRules {
            max_size: config.keys_file_max_size,
            settle,
        }
    }
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

impl FileWarning {
    /// Logs the warning, with the fix.
    pub fn log(&self) {
        match self {
            FileWarning::Writable(path, mode) => tracing::warn!(
                target: TARGET,
                path = ?path,
                mode = %format!("{mode:o}"),
                "keys file can be written by group or others, who could add a key; `chmod go-w` it"
            ),
            FileWarning::Readable(path, mode) => tracing::warn!(
                target: TARGET,
                path = ?path,
                mode = %format!("{mode:o}"),
                "keys file holds plaintext keys and can be read by group or others; `chmod go-r` \
                 it, or store `sha256:` entries (`apikey hash`)"
            ),
        }
    }
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
    /// The state of the file at `path` now: its stamp, or `None` when it cannot be read.
    pub fn at(path: &Path) -> FileState {
        std::fs::metadata(path)
            .ok()
            .map(|meta| FileStamp::of(&meta))
    }

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

/// One reading of the keys file, each line handed to `line` with its number (which says whether
/// it held a plaintext key): `Ok(None)` when the file changed meanwhile (what was read may be
/// torn), else the warnings about the file.
pub(super) fn read(
    path: &Path,
    rules: FileRules,
    mut line: impl FnMut(usize, &[u8]) -> bool,
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
            plaintext |= line(line_no, &buf[start..start + len]);
            start += len + 1;
        }
        if n == 0 {
            let tail = &buf[start..end];
            if !tail.is_empty() {
                plaintext |= line(line_no + 1, tail);
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
