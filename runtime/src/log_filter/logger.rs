//! [`init`]: Rocket's logger, without the lines that can carry a key.
//!
//! Rocket installs its logger (`rocket::log::init`, private) in `rocket::build()`, before any
//! code of this crate runs, and the `log` crate takes one logger per process, never replaced. An
//! application that wants Rocket's lines without the credential-printing ones therefore installs
//! this logger first, and Rocket's attempt then fails silently, as Rocket intends (it leaves an
//! existing logger alone). What Rocket then no longer does for itself, this module does: set the
//! `log` level from Rocket's `log_level` at ignite ([`follow_log_level`], called by the
//! fairing), and print each line exactly as Rocket's `RocketLogger` (`rocket-0.5.2/src/log.rs`)
//! does: same indentation, colours, level names and launch lines.

use std::sync::atomic::{AtomicBool, Ordering};

use rocket::figment::Figment;
use yansi::Paint;

use super::{allows, is_filtered, Bounded};

/// Installs Rocket's logger without the lines that can print an API key (see the
/// [module](super) documentation): call it first, before `rocket::build()`.
///
/// ```no_run
/// # use rocket::launch;
/// use rocket_api_key::{log_filter, ApiKeyStore};
///
/// #[launch]
/// fn rocket() -> _ {
///     log_filter::init();
///     rocket::build().attach(ApiKeyStore::fairing())
/// }
/// ```
///
/// Every other line is printed as Rocket prints it, at the `log_level` of Rocket's
/// configuration, which [`ApiKeyStore::fairing`](crate::ApiKeyStore::fairing) applies at ignite
/// (until then, `normal`, as Rocket's). When a logger is already installed (yours, or the bridge
/// of a `tracing` subscriber), it does nothing: that logger's lines are yours to filter, with
/// [`CredentialFilter`](super::CredentialFilter) for `tracing`. Install a `tracing` subscriber
/// before, not after: its `init()` fails once a `log` logger is in place.
pub fn init() {
    if log::set_logger(&RocketLines).is_ok() {
        INSTALLED.store(true, Ordering::Release);
        // Rocket's own level before ignite: its debug default's `normal`.
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Whether [`init`] installed this crate's logger.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether this crate's logger is the process's `log` logger.
pub(super) fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

/// Sets the `log` level to the `log_level` of Rocket's configuration in `figment`, when this
/// crate's logger is installed: Rocket does so at ignite only for its own logger. Without it,
/// `log_level` would be ignored. A configuration Rocket cannot read leaves the level alone:
/// ignite fails on it anyway.
pub(crate) fn follow_log_level(figment: &Figment) {
    if !installed() {
        return;
    }
    if let Ok(config) = rocket::Config::try_from(figment) {
        log::set_max_level(config.log_level.into());
    }
}

/// Rocket's `RocketLogger`, less what [`allows`] refuses.
struct RocketLines;

/// `print!`, which panics when stdout is gone, only where Rocket uses it: in debug builds, whose
/// tests capture it. Elsewhere, what Rocket does: stdout, or the error on stderr.
#[cfg(not(debug_assertions))]
macro_rules! write_out {
    ($($arg:tt)*) => ({
        use std::io::{Write, stdout, stderr};
        let _ = write!(stdout(), $($arg)*).or_else(|e| write!(stderr(), "{}", e));
    })
}

#[cfg(debug_assertions)]
macro_rules! write_out {
    ($($arg:tt)*) => (print!($($arg)*))
}

/// Whether a record is one of Rocket's launch lines, shown at every level but `off`.
fn is_launch_record(metadata: &log::Metadata<'_>) -> bool {
    metadata.target().contains("rocket::launch")
}

/// The `tracing` level of a `log` record, for [`allows`].
fn tracing_level(level: log::Level) -> tracing::Level {
    match level {
        log::Level::Error => tracing::Level::ERROR,
        log::Level::Warn => tracing::Level::WARN,
        log::Level::Info => tracing::Level::INFO,
        log::Level::Debug => tracing::Level::DEBUG,
        log::Level::Trace => tracing::Level::TRACE,
    }
}

impl log::Log for RocketLines {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        match log::max_level().to_level() {
            Some(max) => metadata.level() <= max || is_launch_record(metadata),
            None => false,
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = record.target();
        if is_filtered(target)
            && !allows(
                target,
                &tracing_level(record.level()),
                Bounded::display(record.args()).as_str(),
            )
        {
            return;
        }

        // From here on, Rocket's `RocketLogger::log` as it is.
        let max = log::max_level();
        let from = |path| record.module_path().is_some_and(|m| m.starts_with(path));
        let debug_only = from("hyper") || from("rustls") || from("r2d2");
        if log::LevelFilter::Trace > max && debug_only {
            return;
        }

        // Rocket's targets that end in `_` are indented lines.
        let indented = target.ends_with('_');
        if indented {
            write_out!("   {} ", ">>".bold());
        }

        // A launch line, logged at `warn` to show at `critical`, reads as `info`.
        let level = if is_launch_record(record.metadata()) {
            log::Level::Info
        } else {
            record.level()
        };

        match level {
            log::Level::Error if !indented => {
                write_out!("{} {}\n", "Error:".red().bold(), record.args().red().wrap());
            }
            log::Level::Warn if !indented => {
                write_out!(
                    "{} {}\n",
                    "Warning:".yellow().bold(),
                    record.args().yellow().wrap()
                );
            }
            log::Level::Info => write_out!("{}\n", record.args().blue().wrap()),
            log::Level::Trace => write_out!("{}\n", record.args().magenta().wrap()),
            log::Level::Warn => write_out!("{}\n", record.args().yellow().wrap()),
            log::Level::Error => write_out!("{}\n", &record.args().red().wrap()),
            log::Level::Debug => {
                write_out!("\n{} ", "-->".blue().bold());
                if let Some(file) = record.file() {
                    write_out!("{}", file.blue());
                }
                if let Some(line) = record.line() {
                    write_out!(":{}\n", line.blue());
                }
                write_out!("\t{}\n", record.args());
            }
        }
    }

    fn flush(&self) {
        // Nothing is buffered, as in Rocket's.
    }
}
