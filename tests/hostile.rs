//! Hostile requests over real HTTP, written byte by byte: each gets its exact answer, nothing is
//! let in, and the server keeps serving.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rocket::{get, post, routes};
use rocket_api_key::{
    keygen::GeneratedKey, keygen::KeyDigest, require_api_key, ApiKey, ApiKeyStore,
};
use serde_json::{json, Value};
use support::Server;

const VALID: &str = "valid-key-0123456789abcdef";
const EXPIRED: &str = "expired-key-0123456789abcdef";
const OFFICE: &str = "office-key-0123456789abcdef";

#[require_api_key]
#[get("/secure-data")]
fn secure_data(key: ApiKey) -> String {
    format!("hello {}", key.name())
}

#[require_api_key(scope = "admin")]
#[get("/admin")]
fn admin() -> &'static str {
    "admin"
}

#[require_api_key]
#[post("/upload", data = "<body>")]
fn upload(body: String) -> String {
    body.len().to_string()
}

#[get("/health")]
fn health() -> &'static str {
    "ok"
}

/// A response as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes and reads the whole answer (the request asks the server to close).
fn raw(base: &str, request: &[u8]) -> Answer {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut bytes = Vec::new();
    // A server may reset the connection after answering a request it refuses to read.
    let _ = stream.read_to_end(&mut bytes);
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response to {:?}: {:?}",
                String::from_utf8_lossy(request),
                String::from_utf8_lossy(&bytes)
            )
        });
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

/// `GET <path>` with these raw header lines.
fn get_with(path: &str, header_lines: &[&[u8]]) -> Vec<u8> {
    let mut req =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n").into_bytes();
    for line in header_lines {
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

fn key_line(value: &str) -> Vec<u8> {
    format!("x-api-key: {value}").into_bytes()
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 401 with the exact Flask body and the challenge.
    Unauthorized,
    /// 403 with this JSON body.
    Forbidden(&'static str),
    /// 200 with this body.
    Ok(&'static str),
    /// Refused by the HTTP parser (hyper) before Rocket sees it: 400, no body of ours.
    Protocol,
    /// No route: the percent-encoded path stays encoded and matches nothing.
    NotFound,
}

#[test]
fn hostile_requests_let_in_only_the_right_key_and_never_stop_the_server() {
    let generated = GeneratedKey::new().unwrap();
    let stored_hash = KeyDigest::of(VALID.as_bytes()).to_entry();
    let keys = ApiKeyStore::builder()
        .from_env(false)
        .accept_bearer(true)
        .key("valid", VALID)
        .key("expired", format!("{EXPIRED};expires=2001-01-01T00:00:00Z"))
        .key("office", format!("{OFFICE};ips=10.0.0.0/8"))
        .key("generated", generated.entry());
    let server = Server::start(
        rocket::build()
            .attach(keys.fairing())
            .mount("/", routes![secure_data, admin, upload, health]),
    );

    let mut bad_checksum = generated.expose_secret().to_owned();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'x' { 'y' } else { 'x' });
    let changed = format!("{}X{}", &VALID[..5], &VALID[6..]);
    let cyrillic = VALID.replacen('a', "а", 1); // U+0430
    let big8k = "k".repeat(8 * 1024);
    let big64k = "k".repeat(64 * 1024);
    let mut filler: Vec<Vec<u8>> = (0..90)
        .map(|i| format!("x-filler-{i}: {i}").into_bytes())
        .collect();
    filler.push(key_line(VALID));
    let filler_request = get_with(
        "/secure-data",
        &filler.iter().map(Vec::as_slice).collect::<Vec<_>>(),
    );

    use Expect::*;
    let scope_403 = r#"{"error":"Insufficient scope","match":"all","required_scopes":["admin"]}"#;
    let ip_403 = r#"{"error":"This key may not be used from this address"}"#;
    let mut cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("no key", get_with("/secure-data", &[]), Unauthorized),
        ("empty header", get_with("/secure-data", &[b"x-api-key:"]), Unauthorized),
        ("empty header with space", get_with("/secure-data", &[b"x-api-key: "]), Unauthorized),
        ("only whitespace", get_with("/secure-data", &[b"x-api-key: \t  \t"]), Unauthorized),
        ("8 KB value", get_with("/secure-data", &[&key_line(&big8k)]), Unauthorized),
        ("64 KB value", get_with("/secure-data", &[&key_line(&big64k)]), Unauthorized),
        ("non-ASCII UTF-8", get_with("/secure-data", &[&key_line("clé-0123456789abcdef")]), Unauthorized),
        ("Cyrillic look-alike of the valid key", get_with("/secure-data", &[&key_line(&cyrillic)]), Unauthorized),
        ("invalid UTF-8 bytes", get_with("/secure-data", &[b"x-api-key: \xff\xfe\xfd0123456789abcdef"]), Unauthorized),
        ("NUL byte", get_with("/secure-data", &[b"x-api-key: valid-key\x000123456789abcdef"]), Protocol),
        ("tab inside the key", get_with("/secure-data", &[b"x-api-key: valid-key\t0123456789abcdef"]), Unauthorized),
        ("bare CR inside the key", get_with("/secure-data", &[b"x-api-key: valid-key-0123\r456789abcdef"]), Protocol),
        ("obsolete line folding", get_with("/secure-data", &[b"x-api-key: valid-key-0123456789abcdef", b" continued"]), Protocol),
        ("CRLF then a forged header", get_with("/secure-data", &[b"x-api-key: nope-0123456789abcdef", b"x-api-key: valid-key-0123456789abcdef"]), Unauthorized),
        ("the header twice, same value", get_with("/secure-data", &[&key_line(VALID), &key_line(VALID)]), Unauthorized),
        ("the header twice, different values", get_with("/secure-data", &[&key_line(VALID), &key_line(EXPIRED)]), Unauthorized),
        ("one header, two comma-separated keys", get_with("/secure-data", &[&key_line(&format!("{VALID}, {VALID}"))]), Unauthorized),
        ("x-api-key and Bearer disagree", get_with("/secure-data", &[&key_line(VALID), format!("Authorization: Bearer {OFFICE}").as_bytes()]), Unauthorized),
        ("x-api-key and Bearer agree", get_with("/secure-data", &[&key_line(VALID), format!("Authorization: Bearer {VALID}").as_bytes()]), Ok("hello valid")),
        ("Bearer with no token", get_with("/secure-data", &[b"Authorization: Bearer"]), Unauthorized),
        ("Bearer with only spaces", get_with("/secure-data", &[b"Authorization: Bearer    "]), Unauthorized),
        ("bearer in lower case (schemes are case-insensitive)", get_with("/secure-data", &[format!("Authorization: bearer {VALID}").as_bytes()]), Ok("hello valid")),
        ("Bearer with extra spaces", get_with("/secure-data", &[format!("Authorization: Bearer    {VALID}   ").as_bytes()]), Ok("hello valid")),
        ("Bearerkey run together", get_with("/secure-data", &[format!("Authorization: Bearer{VALID}").as_bytes()]), Unauthorized),
        ("Basic credentials", get_with("/secure-data", &[b"Authorization: Basic dmFsaWQta2V5OnBhc3M="]), Unauthorized),
        ("valid key with surrounding whitespace (OWS, trimmed by HTTP)", get_with("/secure-data", &[format!("x-api-key:   {VALID}  ").as_bytes()]), Ok("hello valid")),
        ("valid key in an upper-case header name", get_with("/secure-data", &[format!("X-API-KEY: {VALID}").as_bytes()]), Ok("hello valid")),
        ("one character changed", get_with("/secure-data", &[&key_line(&changed)]), Unauthorized),
        ("truncated", get_with("/secure-data", &[&key_line(&VALID[..VALID.len() - 1])]), Unauthorized),
        ("doubled", get_with("/secure-data", &[&key_line(&VALID.repeat(2))]), Unauthorized),
        ("a prefix of the key", get_with("/secure-data", &[&key_line(&VALID[..16])]), Unauthorized),
        ("generated format, bad checksum", get_with("/secure-data", &[&key_line(&bad_checksum)]), Unauthorized),
        ("the stored sha256 entry as the key", get_with("/secure-data", &[&key_line(&stored_hash)]), Unauthorized),
        ("the bare stored digest as the key", get_with("/secure-data", &[&key_line(&stored_hash[7..])]), Unauthorized),
        ("expired key", get_with("/secure-data", &[&key_line(EXPIRED)]), Unauthorized),
        ("key from a disallowed address", get_with("/secure-data", &[&key_line(OFFICE)]), Forbidden(ip_403)),
        ("disallowed address with a spoofed X-Real-IP", get_with("/secure-data", &[&key_line(OFFICE), b"X-Real-IP: 10.0.0.1"]), Forbidden(ip_403)),
        ("disallowed address with a spoofed X-Forwarded-For", get_with("/secure-data", &[&key_line(OFFICE), b"X-Forwarded-For: 10.0.0.1"]), Forbidden(ip_403)),
        ("the right key under a wrong header name", get_with("/secure-data", &[format!("x-api-token: {VALID}").as_bytes()]), Unauthorized),
        ("the right key with a misspelt header", get_with("/secure-data", &[format!("x_api_key: {VALID}").as_bytes()]), Unauthorized),
        ("the key in the query string", get_with(&format!("/secure-data?x-api-key={VALID}&api_key={VALID}&key={VALID}"), &[]), Unauthorized),
        ("the key in a cookie", get_with("/secure-data", &[format!("Cookie: x-api-key={VALID}").as_bytes()]), Unauthorized),
        ("the key percent-encoded", get_with("/secure-data", &[&key_line(&VALID.replace('-', "%2D"))]), Unauthorized),
        ("a key containing ;", get_with("/secure-data", &[&key_line(&format!("{VALID};scopes=admin"))]), Unauthorized),
        ("a 257-byte key (over the cap, never hashed)", get_with("/secure-data", &[&key_line(&"v".repeat(257))]), Unauthorized),
        ("valid key, missing scope", get_with("/admin", &[&key_line(VALID)]), Forbidden(scope_403)),
        ("scope smuggled in a header", get_with("/admin", &[&key_line(VALID), b"x-api-scopes: admin"]), Forbidden(scope_403)),
        ("90 other headers and a valid key", filler_request, Ok("hello valid")),
        ("HEAD with no key", b"HEAD /secure-data HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec(), Unauthorized),
        ("POST with a body and no key", b"POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 11\r\n\r\nhello world".to_vec(), Unauthorized),
        ("encoded newline in the path", get_with("/secure-data%0d%0aX-Forged:%201", &[]), NotFound),
        ("the valid key, at last", get_with("/secure-data", &[&key_line(VALID)]), Ok("hello valid")),
        ("a generated key", get_with("/secure-data", &[&key_line(generated.expose_secret())]), Ok("hello generated")),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());

    let health = get_with("/health", &[]);
    for (name, request, expect) in cases.drain(..) {
        let answer = raw(&server.base, &request);
        match expect {
            Unauthorized => {
                assert_eq!(answer.status, 401, "{name}: {answer:?}");
                assert_eq!(
                    answer.header("content-type"),
                    Some("application/json"),
                    "{name}"
                );
                assert_eq!(
                    answer.header("www-authenticate"),
                    Some(r#"ApiKey header="x-api-key""#),
                    "{name}"
                );
                if !request.starts_with(b"HEAD") {
                    assert_eq!(
                        answer.json(),
                        json!({"error": "Unauthorized access"}),
                        "{name}"
                    );
                }
            }
            Forbidden(body) => {
                assert_eq!(answer.status, 403, "{name}: {answer:?}");
                assert_eq!(
                    answer.json(),
                    serde_json::from_str::<Value>(body).unwrap(),
                    "{name}"
                );
            }
            Ok(body) => {
                assert_eq!(answer.status, 200, "{name}: {answer:?}");
                assert_eq!(answer.body, body.as_bytes(), "{name}");
            }
            Protocol => assert_eq!(answer.status, 400, "{name}: {answer:?}"),
            NotFound => assert_eq!(answer.status, 404, "{name}: {answer:?}"),
        }
        // Whatever came before, the server still answers.
        assert_eq!(raw(&server.base, &health).status, 200, "after {name}");
    }

    // Nothing above was let in as anyone but `valid` and `generated`.
    let usage = server.keys.usage();
    assert_eq!(usage.key("office").unwrap().accepted, 0);
    assert_eq!(usage.key("expired").unwrap().accepted, 0);
    assert_eq!(usage.key("generated").unwrap().accepted, 1);
}
