//! Why a request was refused: the reason named in logs, usage figures and the answer's status.

use std::fmt;

use rocket::http::Status;

/// Why a request was refused. [`as_str`](Reason::as_str) is the `reason` field of log events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No key in the request.
    Missing,
    /// A key that cannot be one: empty, too long, or with characters outside visible ASCII.
    Malformed,
    /// The key header twice, or two different keys in the key header and `Authorization`.
    Duplicate,
    /// A well-formed key that is not configured.
    Unknown,
    /// A configured key past its `expires` time.
    Expired,
    /// A valid key without the scopes the route requires.
    Scope,
    /// A valid key used from an address outside its `ips` allowlist.
    Ip,
    /// A guard ran but no key store is attached to the application.
    NoStore,
    /// A valid key over its `rate=` limit.
    RateLimited,
    /// A client address over the failed-authentication limit; refused even with a valid key.
    TooManyFailures,
    /// The shared rate-limit store (Redis) could not be reached and the policy is `deny`.
    LimiterUnavailable,
}

impl Reason {
    pub(crate) const ALL: [Reason; 11] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::Duplicate,
        Reason::Unknown,
        Reason::Expired,
        Reason::Scope,
        Reason::Ip,
        Reason::NoStore,
        Reason::RateLimited,
        Reason::TooManyFailures,
        Reason::LimiterUnavailable,
    ];

    /// The reasons a recognised key is refused for: counted in that key's usage figures. The
    /// others name no key and count as unattributed.
    pub(crate) const OF_A_KEY: [Reason; 5] = [
        Reason::Expired,
        Reason::Scope,
        Reason::Ip,
        Reason::RateLimited,
        Reason::LimiterUnavailable,
    ];

    /// The reason as it appears in logs and usage figures: `missing`, `malformed`, `duplicate`,
    /// `unknown`, `expired`, `scope`, `ip`, `no_store`, `rate_limited`, `too_many_failures` or
    /// `limiter_unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::Duplicate => "duplicate",
            Reason::Unknown => "unknown",
            Reason::Expired => "expired",
            Reason::Scope => "scope",
            Reason::Ip => "ip",
            Reason::NoStore => "no_store",
            Reason::RateLimited => "rate_limited",
            Reason::TooManyFailures => "too_many_failures",
            Reason::LimiterUnavailable => "limiter_unavailable",
        }
    }

    /// The HTTP status this reason is answered with.
    pub fn status(self) -> Status {
        match self {
            Reason::Scope | Reason::Ip => Status::Forbidden,
            Reason::NoStore => Status::InternalServerError,
            Reason::RateLimited | Reason::TooManyFailures => Status::TooManyRequests,
            Reason::LimiterUnavailable => Status::ServiceUnavailable,
            _ => Status::Unauthorized,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
