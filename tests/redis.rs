//! The Redis backend against a real `redis-server` started for the test on a loopback port:
//! two instances sharing it enforce one limit, and an outage meets the configured policy
//! without ever deciding authentication.
//!
//! `redis-server` must be installed (`.ci/run` installs it). Without it these tests say so and
//! pass, unless `REQUIRE_REDIS` is set, as it is in CI.

#[path = "../runtime/tests/common/concurrent.rs"]
mod concurrent;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use rocket_api_key::{
    config::ClientAddress, config::UnavailablePolicy, require_api_key, ApiKey, ApiKeyStore,
    ApiKeyStoreBuilder,
};

use concurrent::{exactly_the_limit_of_guesses, parallel, valid_keys_are_no_failures};

const LIMITED: &str = "limited-key-0123456789abcdef";
const VALID: &str = "valid-key-0123456789abcdef";
/// A key whose generous rate makes each request a Redis call: the connection probe.
const PROBE: &str = "probe-key-0123456789abcdef";

#[require_api_key]
#[get("/any")]
fn any(key: ApiKey) -> String {
    key.name().to_owned()
}

struct RedisServer {
    child: Child,
    port: u16,
    url: String,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spawned = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if std::env::var_os("REQUIRE_REDIS").is_none() => {
                eprintln!("SKIPPED: redis-server is not available ({e}); install it to run the Redis tests");
                return None;
            }
            Err(e) => panic!("REQUIRE_REDIS is set but redis-server cannot start: {e}"),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(RedisServer {
            child,
            port,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }

    /// Runs one command with `redis-cli` (installed with `redis-server`); its output, trimmed.
    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Redis's clock, in microseconds since the Unix epoch.
    fn now_micros(&self) -> u64 {
        let time = self.cli(&["TIME"]);
        let mut parts = time.lines().map(|n| n.trim().parse::<u64>().unwrap());
        let (seconds, micros) = (parts.next().unwrap(), parts.next().unwrap());
        seconds * 1_000_000 + micros
    }

    /// A limit's stored state (its theoretical arrival time), in nanoseconds since the Unix
    /// epoch. Stored as microseconds, with the nanoseconds as a fraction.
    fn stored_nanos(&self, state: &str) -> u64 {
        let stored = self.cli(&["GET", state]);
        let (micros, fraction) = stored.split_once('.').unwrap_or((&stored, ""));
        let fraction = format!("{fraction:0<3}");
        micros.parse::<u64>().unwrap() * 1_000 + fraction[..3].parse::<u64>().unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keys(url: &str, policy: UnavailablePolicy) -> ApiKeyStoreBuilder {
    ApiKeyStore::builder()
        .from_env(false)
        .key("limited", format!("{LIMITED};rate=5/m"))
        .key("valid", VALID)
        .key("probe", format!("{PROBE};rate=100000/s"))
        .redis(url, policy)
}

async fn instance(builder: ApiKeyStoreBuilder) -> Client {
    Client::tracked(
        rocket::build()
            .attach(builder.fairing())
            .mount("/", routes![any]),
    )
    .await
    .unwrap()
}

async fn status(c: &Client, key: &str, peer: &str) -> Status {
    c.get("/any")
        .header(Header::new("x-api-key", key.to_owned()))
        .remote(peer.parse().unwrap())
        .dispatch()
        .await
        .status()
}

/// Waits until the instance has connected to Redis (with `deny`, requests get 503 until then).
async fn connected(c: &Client) {
    let start = Instant::now();
    while status(c, PROBE, "192.0.2.200:1").await == Status::ServiceUnavailable {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never connected to Redis"
        );
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[rocket::async_test]
async fn two_instances_share_one_rate_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = instance(keys(&redis.url, UnavailablePolicy::Deny)).await;
    let b = instance(keys(&redis.url, UnavailablePolicy::Deny)).await;
    connected(&a).await;
    connected(&b).await;
    // 5 per minute across both instances, alternating between them.
    let mut answers = Vec::new();
    for i in 0..8 {
        let c = if i % 2 == 0 { &a } else { &b };
        answers.push(status(c, LIMITED, "192.0.2.1:1").await.code);
    }
    assert_eq!(answers, [200, 200, 200, 200, 200, 429, 429, 429]);
    let limited = c_usage(&a)
        .key("limited")
        .unwrap()
        .rejected
        .get("rate_limited")
        .copied();
    let limited_b = c_usage(&b)
        .key("limited")
        .unwrap()
        .rejected
        .get("rate_limited")
        .copied();
    assert_eq!(limited.unwrap_or(0) + limited_b.unwrap_or(0), 3);
    // The 429 carries the wait: 60 s / 5 = 12 s per request.
    let response = a
        .get("/any")
        .header(Header::new("x-api-key", LIMITED))
        .dispatch()
        .await;
    assert_eq!(response.headers().get_one("Retry-After"), Some("12"));
}

fn c_usage(c: &Client) -> rocket_api_key::usage::UsageReport {
    c.rocket().state::<ApiKeyStore>().unwrap().usage()
}

#[rocket::async_test]
async fn two_instances_share_one_failure_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let builder = || {
        keys(&redis.url, UnavailablePolicy::Deny)
            .failure_limit("4/m".parse().unwrap(), ClientAddress::Peer)
    };
    let a = instance(builder()).await;
    let b = instance(builder()).await;
    connected(&a).await;
    connected(&b).await;
    let attacker = "203.0.113.9:5555";
    for i in 0..4 {
        let c = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            status(c, "guess-0123456789abcdef", attacker).await,
            Status::Unauthorized
        );
    }
    assert_eq!(status(&a, VALID, attacker).await, Status::TooManyRequests);
    assert_eq!(status(&b, VALID, attacker).await, Status::TooManyRequests);
    assert_eq!(status(&b, VALID, "203.0.113.10:5555").await, Status::Ok);
}

#[rocket::async_test]
async fn an_outage_meets_the_policy_and_never_decides_authentication() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url.clone();
    let deny = instance(keys(&url, UnavailablePolicy::Deny)).await;
    let allow = instance(keys(&url, UnavailablePolicy::Allow)).await;
    connected(&deny).await;
    assert_eq!(status(&allow, LIMITED, "192.0.2.1:1").await, Status::Ok);
    drop(redis);

    // deny: 503 with a JSON error and Retry-After; a bad key is still 401, not 503.
    let response = deny
        .get("/any")
        .header(Header::new("x-api-key", LIMITED))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert_eq!(response.headers().get_one("Retry-After"), Some("1"));
    assert_eq!(
        response.into_string().await.unwrap(),
        r#"{"error":"Rate limiting is unavailable"}"#
    );
    assert_eq!(
        status(&deny, "guess-0123456789abcdef", "192.0.2.1:1").await,
        Status::Unauthorized
    );
    // Keys without a rate do not touch Redis at all.
    assert_eq!(status(&deny, VALID, "192.0.2.1:1").await, Status::Ok);

    // allow: through, unlimited; authentication unchanged.
    for _ in 0..10 {
        assert_eq!(status(&allow, LIMITED, "192.0.2.1:1").await, Status::Ok);
    }
    assert_eq!(
        status(&allow, "guess-0123456789abcdef", "192.0.2.1:1").await,
        Status::Unauthorized
    );
}

#[rocket::async_test]
async fn redis_unreachable_from_the_start() {
    // Nothing listens on this port: the application still starts, and the policy answers.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let deny = instance(keys(&url, UnavailablePolicy::Deny)).await;
    assert_eq!(
        status(&deny, LIMITED, "192.0.2.1:1").await,
        Status::ServiceUnavailable
    );
    assert_eq!(
        status(&deny, "guess-0123456789abcdef", "192.0.2.1:1").await,
        Status::Unauthorized
    );
    let allow = instance(keys(&url, UnavailablePolicy::Allow)).await;
    assert_eq!(status(&allow, LIMITED, "192.0.2.1:1").await, Status::Ok);
}

/// An instance whose Redis calls may take up to five seconds: a flood of a thousand requests
/// on two cores must meet the failure limit, not the 50 ms timeout's `redis_unavailable`.
async fn patient_instance(builder: ApiKeyStoreBuilder) -> Arc<Client> {
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(("log_level", "off"))
        .merge(("api_keys.redis_timeout", "5s"));
    let rocket = rocket::custom(figment)
        .attach(builder.fairing())
        .mount("/", routes![any]);
    Arc::new(Client::untracked(rocket).await.unwrap())
}

/// Concurrency must not let more keys be tried than the limit allows: a check that passes many
/// requests before any of them is counted tries them all. The limit is per hour, so that the
/// allowance cannot come back while a slow machine is still sending.
#[test]
fn concurrent_guesses_get_exactly_the_failure_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    parallel(async {
        let c = limited_instance(&redis).await;
        exactly_the_limit_of_guesses(&c, VALID, "redis").await;
    });
}

/// Valid keys are never counted as failures, however they interleave with guesses.
#[test]
fn valid_keys_amid_guesses_do_not_spend_the_failure_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    parallel(async {
        let c = limited_instance(&redis).await;
        valid_keys_are_no_failures(&c, VALID, "redis").await;
    });
}

/// An instance with a failure limit of 5 an hour in `redis`, connected.
async fn limited_instance(redis: &RedisServer) -> Arc<Client> {
    let c = patient_instance(
        keys(&redis.url, UnavailablePolicy::Deny)
            .failure_limit("5/h".parse().unwrap(), ClientAddress::Peer),
    )
    .await;
    connected(&c).await;
    c
}

/// A rate of two million a second allows one request every 500 ns: that must still be counted,
/// not rounded to nothing. Redis cannot even be asked that often, so the limit can only be seen
/// in the state it keeps: each counted request moves the stored theoretical arrival time on by
/// exactly one interval.
#[test]
fn rates_above_a_million_a_second_are_counted_to_the_nanosecond() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const FAST: &str = "fast-key-0123456789abcdef";
    parallel(async {
        let c = patient_instance(
            keys(&redis.url, UnavailablePolicy::Deny)
                .key("fast", format!("{FAST};rate=2000000/s"))
                .failure_limit("2000000/s".parse().unwrap(), ClientAddress::Peer),
        )
        .await;
        connected(&c).await;
        let attacker = "203.0.113.77:1";
        for (state, request) in [
            ("rak:key:fast", FAST),
            ("rak:fail:203.0.113.77", "guess-0123456789abcdef"),
        ] {
            // Half a second ahead, in whole microseconds as earlier versions stored it: within
            // the burst, so the next request passes and is counted.
            let seeded = redis.now_micros() + 500_000;
            redis.cli(&["SET", state, &seeded.to_string(), "PX", "10000"]);
            let answer = status(&c, request, attacker).await;
            assert!(answer == Status::Ok || answer == Status::Unauthorized);
            assert_eq!(redis.stored_nanos(state), seeded * 1_000 + 500, "{state}");
            // And again, from the state as this version stores it.
            status(&c, request, attacker).await;
            assert_eq!(redis.stored_nanos(state), seeded * 1_000 + 1_000, "{state}");
        }
        // A valid key is not a failure: it leaves the address's state as it was.
        let before = redis.stored_nanos("rak:fail:203.0.113.77");
        assert_eq!(status(&c, VALID, attacker).await, Status::Ok);
        assert_eq!(redis.stored_nanos("rak:fail:203.0.113.77"), before);
    });
}
