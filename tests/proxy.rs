//! The example behind a real nginx, configured with the README's two snippets, with clients on
//! different loopback addresses (127.0.0.5, 127.0.0.9) forging `X-Real-IP` and `X-Forwarded-For`.
//!
//! `nginx` must be installed (`.ci/run` installs it). Without it these tests say so and pass,
//! unless `REQUIRE_NGINX` is set, as it is in CI.

#[path = "support/process.rs"]
mod process;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use process::{free_port, header_of, raw_request, Example, TempDir};

const OFFICE: &str = "office-key-0123456789abcdef";
/// Allowed only from the proxy's own address: a request must never pass as the proxy's.
const PROXY_ONLY: &str = "proxy-only-key-0123456789abcdef";
const READER: &str = "reader-key-0123456789abcdef";
const GUESS: &str = "guess-key-0123456789abcdef";

const CLIENT: [u8; 4] = [127, 0, 0, 5];
const OTHER: [u8; 4] = [127, 0, 0, 9];

/// The README's `nginx` blocks, in order.
fn readme_snippets() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .split("```nginx\n")
        .skip(1)
        .map(|rest| rest[..rest.find("```").expect("a closed block")].to_owned())
        .collect()
}

struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Nginx {
    /// nginx on a free loopback port, serving `location` (a README snippet) with its upstream
    /// pointed at `app_port`.
    fn start(location: &str, app_port: u16) -> Option<Nginx> {
        if Command::new("nginx")
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("REQUIRE_NGINX").is_none(),
                "REQUIRE_NGINX is set but nginx cannot run"
            );
            eprintln!("SKIPPED: nginx is not installed; install it to run the proxy tests");
            return None;
        }
        assert!(location.contains("127.0.0.1:8000"), "{location}");
        let location = location.replace("127.0.0.1:8000", &format!("127.0.0.1:{app_port}"));
        // A port that was free a moment ago may be taken by another test's server before nginx
        // binds it: each attempt marks its answers and checks that the one answering is ours.
        for attempt in 0.. {
            let dir = TempDir::new("nginx");
            let port = free_port();
            let mark = format!("{}-{port}-{attempt}", std::process::id());
            let d = dir.0.display();
            // Everything nginx writes stays in the test's directory; it runs in the foreground.
            let conf = format!(
                "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
                 server {{\n listen 127.0.0.1:{port};\n add_header X-Rak-Nginx {mark} always;\n{location}\n }}\n}}\n"
            );
            let path = dir.0.join("nginx.conf");
            std::fs::write(&path, conf).unwrap();
            let mut child = Command::new("nginx")
                .arg("-p")
                .arg(&dir.0)
                .arg("-c")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx starts");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let log = || std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default();
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(attempt < 3, "nginx exited with {status}: {}", log());
                    break;
                }
                if header_of(addr, "x-rak-nginx").as_deref() == Some(mark.as_str()) {
                    return Some(Nginx {
                        child,
                        addr,
                        _dir: dir,
                    });
                }
                assert!(Instant::now() < deadline, "nginx did not start: {}", log());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        unreachable!("the loop returns or panics")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example with the test's keys, trusting the proxy 127.0.0.1 (as `ROCKET_API_KEYS`
/// writes it), with a failure limit counted by the address the proxy reports.
fn example(ip_header: Option<&str>) -> Example {
    let office = format!("{OFFICE};ips=127.0.0.5");
    let proxy_only = format!("{PROXY_ONLY};ips=127.0.0.1");
    let mut env = vec![
        ("API_KEY_OFFICE", office.as_str()),
        ("API_KEY_PROXY_ONLY", proxy_only.as_str()),
        ("API_KEY_READER", READER),
        (
            "ROCKET_API_KEYS",
            r#"{trusted_proxies=["127.0.0.1"], failure_limit="3/m", failure_limit_address="proxy"}"#,
        ),
    ];
    if let Some(header) = ip_header {
        env.push(("ROCKET_IP_HEADER", header));
    }
    Example::start(&env)
}

fn get(to: SocketAddr, from: [u8; 4], headers: &[(&str, &str)]) -> u16 {
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    raw_request(
        to,
        Some(from),
        &format!("GET /secure-data HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n"),
    )
}

/// What holds behind either configuration: the reported client decides, forged headers do not,
/// and the proxy's own address never stands in for a client's.
fn common_rules(to: SocketAddr, forge: &str) {
    assert_eq!(get(to, CLIENT, &[("x-api-key", OFFICE)]), 200);
    assert_eq!(get(to, OTHER, &[("x-api-key", OFFICE)]), 403);
    assert_eq!(
        get(to, OTHER, &[("x-api-key", OFFICE), (forge, "127.0.0.5")]),
        403
    );
    assert_eq!(
        get(
            to,
            OTHER,
            &[("x-api-key", OFFICE), ("X-Real-IP", "127.0.0.5")]
        ),
        403
    );
    assert_eq!(get(to, CLIENT, &[("x-api-key", PROXY_ONLY)]), 403);
    assert_eq!(
        get(
            to,
            CLIENT,
            &[("x-api-key", PROXY_ONLY), (forge, "127.0.0.1")]
        ),
        403
    );
    // Guesses from 127.0.0.9 use up its allowance, whatever address it claims; 127.0.0.5 is
    // unaffected.
    for claim in ["127.0.0.5", "127.0.0.6", "127.0.0.7"] {
        let status = get(
            to,
            OTHER,
            &[("x-api-key", GUESS), (forge, claim), ("X-Real-IP", claim)],
        );
        assert_eq!(status, 401, "{claim}");
    }
    assert_eq!(get(to, OTHER, &[("x-api-key", READER)]), 429);
    assert_eq!(get(to, CLIENT, &[("x-api-key", READER)]), 200);
}

#[test]
fn behind_nginx_setting_x_real_ip() {
    let snippets = readme_snippets();
    assert_eq!(
        snippets.len(),
        2,
        "the README shows two nginx configurations"
    );
    let app = example(None);
    let Some(nginx) = Nginx::start(&snippets[0], app.port) else {
        return;
    };
    common_rules(nginx.addr, "X-Forwarded-For");
    // Straight to the application: a peer that is not the proxy is its socket address.
    assert_eq!(
        get(
            app.addr(),
            [127, 0, 0, 10],
            &[("x-api-key", OFFICE), ("X-Real-IP", "127.0.0.5")]
        ),
        403
    );
    // From the proxy's address without the header: unknown, not the proxy itself.
    assert_eq!(
        get(app.addr(), [127, 0, 0, 1], &[("x-api-key", PROXY_ONLY)]),
        403
    );
    let output = app.stop();
    assert!(
        output.contains("client_ip_unknown_via=127.0.0.1"),
        "{output}"
    );
}

#[test]
fn behind_nginx_appending_x_forwarded_for() {
    let snippets = readme_snippets();
    let app = example(Some("X-Forwarded-For"));
    let Some(nginx) = Nginx::start(&snippets[1], app.port) else {
        return;
    };
    common_rules(nginx.addr, "X-Forwarded-For");
    // A client's own entry sits to the left of the one nginx appends.
    let forged = [("x-api-key", OFFICE), ("X-Forwarded-For", "127.0.0.9")];
    assert_eq!(get(nginx.addr, CLIENT, &forged), 200);
}

#[test]
fn the_misconfiguration_the_readme_warns_about_is_real() {
    // An XFF-only proxy with Rocket still reading X-Real-IP: a forged X-Real-IP passes
    // through and is believed. This is why the README says to set `ip_header`.
    let snippets = readme_snippets();
    let app = example(None);
    let Some(nginx) = Nginx::start(&snippets[1], app.port) else {
        return;
    };
    let forged = [("x-api-key", OFFICE), ("X-Real-IP", "127.0.0.5")];
    assert_eq!(get(nginx.addr, OTHER, &forged), 200);
}
