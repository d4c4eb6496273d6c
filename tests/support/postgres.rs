//! A throwaway PostgreSQL cluster of the test's own: `initdb` into a temporary directory, then
//! `postgres` on a loopback port with password authentication, stopped and removed on drop.
//!
//! Include it next to `process.rs`:
//!
//! ```ignore
//! #[path = "support/process.rs"]
//! mod process;
//! #[path = "support/postgres.rs"]
//! mod postgres;
//! ```
//!
//! PostgreSQL must be installed (`.ci/run` installs it). Without it `Postgres::start` says so and
//! returns `None`, unless `REQUIRE_POSTGRES` is set, as it is in CI. `RAK_POSTGRES_BIN` names the
//! one directory to take `initdb`, `postgres` and `psql` from instead of searching for them.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{free_port, TempDir};

/// The cluster's superuser, the user of the URL.
const USER: &str = "rak";
/// The database of the URL: the one `initdb` creates, so none has to be made.
const DATABASE: &str = "postgres";
/// How long a start may take before the test fails; a cold start takes well under a second, but
/// CI machines are shared.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running PostgreSQL server, stopped and its directory removed when dropped.
pub struct Postgres {
    bin: Binaries,
    /// Who runs `initdb` and `postgres`: PostgreSQL refuses to run as root.
    user: Option<User>,
    password: String,
    port: u16,
    data: PathBuf,
    log: PathBuf,
    /// The postmaster; `None` while stopped.
    server: Option<Child>,
    /// The server's certificate and key, in the cluster's directory, when it serves TLS.
    tls: Option<(PathBuf, PathBuf)>,
    // Removed with its fields, after `drop` has stopped the server.
    dir: TempDir,
}

impl Postgres {
    /// Starts a fresh cluster on 127.0.0.1 and a free port and waits until it accepts
    /// connections. `None`, after printing `SKIPPED: …`, when PostgreSQL is not installed and
    /// `REQUIRE_POSTGRES` is unset; panics when it is set and the server cannot start, or when
    /// PostgreSQL is installed but fails.
    pub fn start() -> Option<Postgres> {
        Self::start_with(None)
    }

    /// Starts a cluster that also serves TLS with the PEM certificate (chain) and key given,
    /// copied into its directory for the server's user.
    pub fn start_tls(cert: &Path, key: &Path) -> Option<Postgres> {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> Option<Postgres> {
        let Some(bin) = Binaries::find() else {
            let wanted = match std::env::var_os("RAK_POSTGRES_BIN") {
                Some(dir) => format!("`initdb`, `postgres` and `psql` in RAK_POSTGRES_BIN={dir:?}"),
                None => "`initdb`, `postgres` and `psql` on PATH or in /usr/lib/postgresql/*/bin"
                    .to_owned(),
            };
            assert!(
                std::env::var_os("REQUIRE_POSTGRES").is_none(),
                "REQUIRE_POSTGRES is set but PostgreSQL is not installed (no {wanted})"
            );
            eprintln!("SKIPPED: PostgreSQL is not installed (no {wanted}); install it to run the PostgreSQL tests");
            return None;
        };
        let user = if running_as_root() {
            Some(User::unprivileged())
        } else {
            None
        };
        // A port that was free a moment ago may be taken by another test's server before ours
        // binds it: the postmaster then exits, and the next attempt takes another port.
        for attempt in 0.. {
            let mut postgres = Postgres::init(bin.clone(), user.clone(), free_port());
            if let Some((cert, key)) = tls {
                postgres.install_tls(cert, key);
            }
            postgres.spawn();
            if postgres.wait_until_ready() {
                return Some(postgres);
            }
            let log = postgres.log();
            assert!(
                attempt < 3 && log.contains("could not bind"),
                "PostgreSQL exited (attempt {}):\n{}",
                attempt + 1,
                postgres.log_tail()
            );
        }
        unreachable!("the loop returns or panics")
    }

    /// `postgres://<user>:<password>@127.0.0.1:<port>/<db>?sslmode=disable`: the cluster has no
    /// TLS unless started with [`start_tls`](Self::start_tls), and the key table requires it
    /// unless the URL says otherwise.
    pub fn url(&self) -> String {
        format!("{}?sslmode=disable", self.url_without_sslmode())
    }

    /// The URL without `sslmode`: what the key table reads as `sslmode=require`.
    pub fn url_without_sslmode(&self) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{DATABASE}",
            self.password, self.port
        )
    }

    /// The superuser's password: random, so a test can look for it in logs.
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// The directory of the cluster's data and log, removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Everything the server has logged so far (every start of it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `sql` with `psql` as the superuser; its output, trimmed (rows unaligned, `|` between
    /// columns, with each statement's command tag: `INSERT 0 1`). Panics with `psql`'s errors.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql failed on {sql:?}:\n{e}"))
    }

    /// Like [`Postgres::psql`], but returns `psql`'s errors: for checking that the server is down.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.try_psql_with_password(&self.password, sql)
    }

    /// Like [`Postgres::try_psql`], with another password: for checking that it is required.
    pub fn try_psql_with_password(&self, password: &str, sql: &str) -> Result<String, String> {
        let mut psql = Command::new(&self.bin.psql);
        without_pg_environment(&mut psql);
        let connection = format!(
            "host=127.0.0.1 port={} user={USER} dbname={DATABASE} connect_timeout=10",
            self.port
        );
        // -w: fail rather than prompt on /dev/tty when the password is refused. The SQL goes
        // through stdin and the password through the environment: a command line is visible to
        // every user of the machine in `ps`.
        let mut child = psql
            .args(["-X", "-At", "-w", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d"])
            .arg(connection)
            .env("PGPASSWORD", password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs: {e}", self.bin.psql.display()));
        let written = child
            .stdin
            .take()
            .expect("psql's stdin")
            .write_all(sql.as_bytes());
        let output = child.wait_with_output().expect("psql's output");
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if !output.status.success() {
            return Err(format!("psql exited with {}: {stderr}", output.status));
        }
        // psql stops reading only when it fails, so a failed write is an error it reported.
        written.map_err(|e| format!("the SQL could not be sent to psql ({e}): {stderr}"))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Stops the server with a fast shutdown (open sessions end, the data is checkpointed) and
    /// waits for it to exit; the data directory stays for [`Postgres::restart`].
    pub fn stop(&mut self) {
        self.shut_down("-INT");
    }

    /// Starts the stopped server again on the same port and data directory and waits until it
    /// accepts connections.
    pub fn restart(&mut self) {
        assert!(self.server.is_none(), "restart needs a stopped server");
        self.spawn();
        assert!(
            self.wait_until_ready(),
            "PostgreSQL did not restart on port {}:\n{}",
            self.port,
            self.log_tail()
        );
    }

    /// A new cluster in a directory of its own, not yet started.
    fn init(bin: Binaries, user: Option<User>, port: u16) -> Postgres {
        let dir = TempDir::new("postgres");
        let data = dir.0.join("data");
        let log = dir.0.join("postgres.log");
        let password = random_password();
        let pwfile = dir.0.join("password");
        std::fs::create_dir(&data).expect("the data directory");
        // Readable by its owner only from the start: the directory is open to every user.
        File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&pwfile)
            .and_then(|mut f| f.write_all(password.as_bytes()))
            .expect("the password file");
        if let Some(user) = &user {
            // initdb, run as the unprivileged user, fills the directory and reads the file.
            for path in [&data, &pwfile] {
                std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                    .unwrap_or_else(|e| panic!("chown {} to {}: {e}", path.display(), user.name));
            }
        }
        let mut initdb = Command::new(&bin.initdb);
        // --no-sync: the cluster lives only as long as the test.
        initdb
            .args([
                "-A",
                "scram-sha-256",
                "-U",
                USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(path_arg("--pwfile=", &pwfile))
            .arg("-D")
            .arg(&data);
        let output = as_user(&mut initdb, &user, &dir.0)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", bin.initdb.display()));
        let _ = std::fs::remove_file(&pwfile);
        assert!(
            output.status.success(),
            "initdb failed with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Postgres {
            bin,
            user,
            password,
            port,
            data,
            log,
            server: None,
            tls: None,
            dir,
        }
    }

    /// Copies the certificate and key where the server reads them, its user's and the key
    /// readable by it alone (PostgreSQL refuses a key others can read).
    fn install_tls(&mut self, cert: &Path, key: &Path) {
        let copy = |from: &Path, name: &str| {
            let to = self.dir.0.join(name);
            std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
                .expect("permissions");
            if let Some(user) = &self.user {
                std::os::unix::fs::chown(&to, Some(user.uid), Some(user.gid)).expect("chown");
            }
            to
        };
        self.tls = Some((copy(cert, "server.crt"), copy(key, "server.key")));
    }

    /// Starts the postmaster, its output appended to the log.
    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file");
        let mut postgres = Command::new(&self.bin.postgres);
        // Loopback TCP only, as every server the tests start; no Unix socket, whose default
        // directory (/var/run/postgresql) may be missing or shared with a system cluster.
        postgres
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off"])
            .args(["-c", "max_connections=100"]);
        if let Some((cert, key)) = &self.tls {
            postgres
                .args(["-c", "ssl=on"])
                .arg("-c")
                .arg(path_arg("ssl_cert_file=", cert))
                .arg("-c")
                .arg(path_arg("ssl_key_file=", key));
        }
        let child = as_user(&mut postgres, &self.user, &self.dir.0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a second handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs: {e}", self.bin.postgres.display()));
        self.server = Some(child);
    }

    /// Waits until the server answers, `false` if it exited first (its port may have been
    /// taken); panics after [`READY_TIMEOUT`].
    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let server = self.server.as_mut().expect("a started server");
            if let Ok(Some(_)) = server.try_wait() {
                self.server = None;
                return false;
            }
            // The password is our random one: a server that accepts it is ours.
            if self.try_psql("select 1").is_ok() {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections within {READY_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the postmaster and waits for it to exit (it waits for its own children
    /// first); kills it if it has not exited after 30 s.
    fn shut_down(&mut self, signal: &str) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        // std can only SIGKILL a child, and a killed postmaster leaves its backends behind.
        let _ = Command::new("kill")
            .args([signal, &server.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(server.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = server.kill();
        let _ = server.wait();
    }

    /// The last lines of the server's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate shutdown: the data is about to be removed, so nothing needs a checkpoint.
        self.shut_down("-QUIT");
    }
}

/// Where `initdb`, `postgres` and `psql` are.
#[derive(Clone)]
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
    psql: PathBuf,
}

impl Binaries {
    /// The first directory on PATH with both `initdb` and `postgres` (a pair from one version),
    /// else the newest /usr/lib/postgresql/<version>/bin, where Debian puts them; `psql` likewise.
    fn find() -> Option<Binaries> {
        if let Some(dir) = std::env::var_os("RAK_POSTGRES_BIN") {
            let dir = PathBuf::from(dir);
            return Some(Binaries {
                initdb: executable(&dir, "initdb")?,
                postgres: executable(&dir, "postgres")?,
                psql: executable(&dir, "psql")?,
            });
        }
        let path: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.to_owned();
                let number = version
                    .split('.')
                    .map(|n| n.parse().ok())
                    .collect::<Option<_>>()?;
                Some((number, entry.path().join("bin")))
            })
            .collect();
        versions.sort();
        let dirs: Vec<PathBuf> = path
            .into_iter()
            .chain(versions.into_iter().rev().map(|(_, bin)| bin))
            .collect();
        let (initdb, postgres) = dirs
            .iter()
            .find_map(|dir| Some((executable(dir, "initdb")?, executable(dir, "postgres")?)))?;
        let psql = dirs.iter().find_map(|dir| executable(dir, "psql"))?;
        Some(Binaries {
            initdb,
            postgres,
            psql,
        })
    }
}

/// `dir/name` if it is an executable file.
fn executable(dir: &Path, name: &str) -> Option<PathBuf> {
    let path = dir.join(name);
    let metadata = std::fs::metadata(&path).ok()?;
    (metadata.is_file() && metadata.permissions().mode() & 0o111 != 0).then_some(path)
}

/// A system user to run the server as.
#[derive(Clone)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    /// `postgres`, which a Debian package install creates, else `nobody`.
    fn unprivileged() -> User {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let user = |wanted: &str| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                match fields[..] {
                    [name, _, uid, gid, ..] if name == wanted => Some(User {
                        name: name.to_owned(),
                        uid: uid.parse().ok()?,
                        gid: gid.parse().ok()?,
                    }),
                    _ => None,
                }
            })
        };
        user("postgres").or_else(|| user("nobody")).expect(
            "PostgreSQL refuses to run as root, and /etc/passwd has neither `postgres` nor `nobody` to run it as",
        )
    }
}

/// Whether this process's effective user is root, from /proc (std has no `geteuid`).
fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let uids = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .expect("a Uid line in /proc/self/status");
    // Real, effective, saved, filesystem.
    uids.split_whitespace().nth(1) == Some("0")
}

/// `command` run as `user` (if any) in `dir`, without the test's PostgreSQL environment.
fn as_user<'a>(command: &'a mut Command, user: &Option<User>, dir: &Path) -> &'a mut Command {
    without_pg_environment(command);
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
    // The test's working directory may be closed to the unprivileged user.
    command.current_dir(dir)
}

/// Removes every `PG…` variable (PGHOST, PGUSER, PGPASSWORD, PGDATA, PGCLUSTER…) from
/// `command`'s environment: the harness's server is the only one its tools may reach.
fn without_pg_environment(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"PG") {
            command.env_remove(&name);
        }
    }
}

/// `flag` and `path` as one argument (`--pwfile=/tmp/…`).
fn path_arg(flag: &str, path: &Path) -> std::ffi::OsString {
    let mut arg = OsStr::new(flag).to_owned();
    arg.push(path);
    arg
}

/// 32 hex digits from the kernel's random source.
fn random_password() -> String {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
