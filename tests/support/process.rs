//! The example as its users run it: its own process, its own logging, real TCP.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A temporary directory of the test's own, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "rak-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ u128::from(free_port())
        ));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The example's binary, built now if it is missing or older than its sources: `cargo test`
/// builds examples, but `cargo test --test <name>` does not.
pub fn example_binary() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    built(&BUILT, &["--example", "orders"], "examples/orders")
}

/// The `apikey` binary, built now if it is missing or older than its sources.
pub fn apikey_binary() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    built(&BUILT, &["-p", "rocket-api-key-cli"], "apikey")
}

/// `cargo build <what>` once per test binary, in its profile; the path of `file` in the
/// profile's directory.
fn built(once: &std::sync::Once, what: &[&str], file: &str) -> PathBuf {
    once.call_once(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.arg("build").args(what).arg("--quiet");
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let status = cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build {what:?}");
    });
    let deps = std::env::current_exe().expect("the test binary's path");
    let profile = deps
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    profile.join(file)
}

/// `program` with `args` on 127.0.0.1:`port`, in `dir`, with `env` and none of the test's own
/// API_KEY*, RUST_LOG or ROCKET_LOG_LEVEL variables, and no colours in its output.
fn server_command(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    port: u16,
    dir: &TempDir,
) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove("API_KEY")
        .env_remove("API_KEYS_FILE")
        .env_remove("API_KEYS_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("ROCKET_LOG_LEVEL")
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_CLI_COLORS", "false")
        .env("NO_COLOR", "1")
        .current_dir(&dir.0)
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// The example (or another Rocket application) running in a process of its own, its output
/// (stdout and stderr) in a file.
pub struct Example {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Example {
    /// Starts the example with `env` and waits until it accepts connections.
    pub fn start(env: &[(&str, &str)]) -> Example {
        Example::start_program(&example_binary(), &[], env)
    }

    /// Starts `program` with `args` and `env`, as the example is started, and waits until it
    /// accepts connections.
    pub fn start_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Example {
        // A port that was free a moment ago may be taken by another test's server before ours
        // binds it: each attempt names its server (Rocket's `ident`, its `Server` header) and
        // checks that the one answering is ours.
        for attempt in 0.. {
            let dir = TempDir::new("example");
            let log = dir.0.join("output.log");
            let port = free_port();
            let ident = format!("rak-test-{}-{port}-{attempt}", std::process::id());
            let output = std::fs::File::create(&log).expect("a log file");
            let child = server_command(program, args, env, port, &dir)
                .env("ROCKET_IDENT", &ident)
                .stdout(output.try_clone().expect("a second handle"))
                .stderr(output)
                .spawn()
                .expect("the example starts");
            let mut example = Example {
                child,
                port,
                log,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = example.child.try_wait() {
                    assert!(
                        attempt < 3,
                        "the example exited with {status}:\n{}",
                        example.output()
                    );
                    break;
                }
                if server_header(example.addr()).as_deref() == Some(ident.as_str()) {
                    return example;
                }
                assert!(
                    Instant::now() < deadline,
                    "the example did not start:\n{}",
                    example.output()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        unreachable!("the loop returns or panics")
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Everything the example printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the example once it has printed nothing new for a moment (the lines a request
    /// logs after its answer included), and returns everything it printed.
    pub fn stop_when_quiet(self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut before = self.output();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.output();
            if now == before || Instant::now() > deadline {
                return self.stop();
            }
            before = now;
        }
    }

    /// Stops the example and returns everything it printed.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `Server` header of `GET /health` at `to`, if something answers there.
pub fn server_header(to: SocketAddr) -> Option<String> {
    header_of(to, "server")
}

/// The header `name` of the answer to `GET /health` at `to`, if something answers there.
pub fn header_of(to: SocketAddr, name: &str) -> Option<String> {
    let mut stream = TcpStream::connect(to).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).lines().find_map(|line| {
        let (header, value) = line.split_once(':')?;
        header
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Sends `request` (a whole HTTP/1.1 request, `Connection: close` added) to `to`, from the
/// loopback address `from`, and returns the status code of the answer.
pub fn raw_request(to: SocketAddr, from: Option<[u8; 4]>, request: &str) -> u16 {
    let stream = match from {
        Some(ip) => bind_from(ip, to),
        None => TcpStream::connect(to).expect("a connection"),
    };
    let mut stream = stream;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    let request = request.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("the request is sent");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// A connection to `to` from the loopback address `from` (any 127/8 address is local on Linux).
fn bind_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("the chosen loopback address");
    socket
        .connect_timeout(&to.into(), Duration::from_secs(10))
        .expect("a connection");
    socket.into()
}

/// Runs the example with `env` until it exits (it must, within 30 s): its status and output.
pub fn run_to_exit(env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let dir = TempDir::new("example-exit");
    let mut child = server_command(&example_binary(), &[], env, free_port(), &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("a status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the example did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("its output");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status, text)
}
