//! Rate-limit state in Redis (feature `redis`): instances sharing a Redis share every limit.
//!
//! One Lua script runs the same GCRA as the in-process cells, atomically and on Redis's own
//! clock, so instances with skewed clocks still agree. Keys expire when their state is back to
//! fresh, so Redis holds nothing for idle keys or addresses. The connection is made in the
//! background and re-made by the connection manager; until it exists, and whenever a call
//! fails or takes longer than `redis_timeout`, the configured policy answers instead.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::outcome::{unreachable, Limit};
use crate::config::{Config, UnavailablePolicy};
use crate::rate::{limited_address, Clock, RateSpec};
use crate::redact::CredentialUrl;
use crate::target::TARGET;

/// GCRA on Redis's clock. KEYS[1]: the state; ARGV: emission interval and tolerance (ns), and
/// 1 to count the request or 0 to only look. Returns 0 when the request conforms, otherwise the
/// nanoseconds until one would.
///
/// In nanoseconds, as in process: in whole microseconds a rate above a million a second had an
/// interval of 0 and was never limited, and every interval lost its fraction of a microsecond.
/// Lua's numbers are doubles, exact for integers up to 2^53: microseconds since the Unix epoch
/// fit (until 2255), nanoseconds do not. So the state is stored as microseconds since the epoch
/// with the nanoseconds as a fraction (`1700000000123456.500`), read back in two parts, and
/// only `ahead`, how many nanoseconds it lies past now, is computed with. `ahead` is capped at
/// `tolerance + interval`, the most a request of this rate can leave (state written under
/// another rate, or a Redis clock stepped back, may hold more): at most a day and a bit, so
/// every sum stays exact. Earlier versions stored whole microseconds, read here as such, and
/// read this format as a number of microseconds, so instances of both share one limit during
/// an upgrade. Anything else under the key (only a writer to Redis could put it there) reads as
/// fresh state.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local ahead = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local micros, fraction = string.match(stored, '^(%d+)%.?(%d*)$')
  if micros then
    ahead = (tonumber(micros) - now) * 1000 + tonumber(string.sub(fraction .. '000', 1, 3))
  end
end
ahead = math.min(math.max(ahead, 0), tolerance + interval)
if ahead > tolerance then return ahead - tolerance end
if ARGV[3] == '1' then
  ahead = ahead + interval
  local tat = string.format('%d.%03d', now + math.floor(ahead / 1000), ahead % 1000)
  redis.call('SET', KEYS[1], tat, 'PX', math.ceil(ahead / 1000000) + 1)
end
return 0
";

pub(crate) struct RedisLimiter {
    url: String,
    /// The URL as logs show it, and its credentials to hide from errors.
    redacted: Arc<CredentialUrl>,
    prefix: String,
    timeout: Duration,
    policy: UnavailablePolicy,
    failure_limit: Option<RateSpec>,
    script: Script,
    connection: Arc<OnceLock<ConnectionManager>>,
    last_warning: AtomicU64,
    clock: Clock,
}

impl RedisLimiter {
    pub fn new(config: &Config) -> Self {
        let url = config.redis_url.clone().unwrap_or_default();
        RedisLimiter {
            redacted: Arc::new(CredentialUrl::new(&url)),
            url,
            prefix: config.redis_prefix.clone(),
            timeout: config.redis_timeout,
            // Validation made it explicit; `Deny` is only the type's fallback.
            policy: config.redis_unavailable.unwrap_or(UnavailablePolicy::Deny),
            failure_limit: config.failure_limit,
            script: Script::new(GCRA),
            connection: Arc::new(OnceLock::new()),
            last_warning: AtomicU64::new(0),
            clock: Clock::new(),
        }
    }

    /// Connects in the background, retrying with backoff until it succeeds; the connection
    /// manager reconnects by itself after that.
    pub fn connect(&self) {
        let (url, timeout, slot) = (self.url.clone(), self.timeout, self.connection.clone());
        let redacted = self.redacted.clone();
        rocket::tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout.max(Duration::from_millis(500))))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                let attempt = async {
                    let client = redis::Client::open(url.as_str())?;
                    client.get_connection_manager_with_config(config).await
                };
                match attempt.await {
                    Ok(manager) => {
                        let _ = slot.set(manager);
                        tracing::info!(
                            target: TARGET,
                            redis_url = %redacted.shown,
                            "rate-limit store connected"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(
                            target: TARGET,
                            redis_url = %redacted.shown,
                            error = %Scrubbed(&e, &redacted),
                            retry_in = ?backoff,
                            "rate-limit store unreachable"
                        );
                        rocket::tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
    }

    pub async fn acquire_key(&self, name: &str, spec: RateSpec) -> Limit {
        self.gcra(format!("{}key:{name}", self.prefix), spec, true)
            .await
    }

    /// Looks at (`count == false`) or counts a failure against (`count == true`) an address.
    pub async fn address(&self, ip: IpAddr, count: bool) -> Limit {
        let Some(spec) = self.failure_limit else {
            return Limit::Pass;
        };
        self.gcra(
            format!("{}fail:{}", self.prefix, limited_address(ip)),
            spec,
            count,
        )
        .await
    }

    async fn gcra(&self, key: String, spec: RateSpec, count: bool) -> Limit {
        let Some(connection) = self.connection.get() else {
            return unreachable(
                self.policy,
                &"not connected yet",
                &self.last_warning,
                &self.clock,
            );
        };
        let gcra = spec.gcra();
        let mut connection = connection.clone();
        let mut invocation = self.script.key(key);
        invocation
            .arg(gcra.interval)
            .arg(gcra.tolerance)
            .arg(u8::from(count));
        let call = invocation.invoke_async::<u64>(&mut connection);
        match rocket::tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(0)) => Limit::Pass,
            Ok(Ok(nanos)) => Limit::Wait(Duration::from_nanos(nanos)),
            Ok(Err(e)) => unreachable(
                self.policy,
                &Scrubbed(&e, &self.redacted),
                &self.last_warning,
                &self.clock,
            ),
            Err(_) => unreachable(self.policy, &"timed out", &self.last_warning, &self.clock),
        }
    }
}

/// An error as logs may show it: without the URL's credentials, should the client ever quote
/// them. Formatted only if the event is logged.
struct Scrubbed<'a>(&'a redis::RedisError, &'a CredentialUrl);

impl std::fmt::Display for Scrubbed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1.scrub(&self.0.to_string()))
    }
}
