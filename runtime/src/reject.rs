//! Rejections: why a request was refused, and the JSON answer it gets.
//!
//! Rocket's catchers cannot see a guard's error value, so the guard stores its [`Rejection`] in
//! the request-local cache and the catchers registered by the fairing read it back from there.

use std::borrow::Cow;
use std::fmt;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use serde_json::json;

use crate::header::challenge;
use crate::reason::Reason;
use crate::scope::ScopeRequirement;
use crate::store::ApiKeyStore;

/// The body of every 401, exactly as the Flask recipe answered it.
pub const UNAUTHORIZED_BODY: &str = r#"{"error":"Unauthorized access"}"#;

/// A refused request: the error of the API-key guards, and a [`Responder`] for the JSON answer.
///
/// Holds no key material, so its `Debug` (which Rocket logs for failed guards) is safe. That
/// `Debug` is short, `Rejection(unknown)`, `Rejection(scope, requires all(read:orders))`,
/// `Rejection(rate_limited, retry after 2s)`: Rocket formats it for every failed request.
///
/// | reason | status | body |
/// |---|---|---|
/// | missing, malformed, duplicate, unknown, expired | 401 | `{"error":"Unauthorized access"}` |
/// | scope | 403 | `{"error":"Insufficient scope","required_scopes":[…],"match":"all"\|"any"}` |
/// | ip | 403 | `{"error":"This key may not be used from this address"}` |
/// | no_store | 500 | `{"error":"API key validation is not configured"}` |
/// | rate_limited | 429 | `{"error":"Too many requests"}`, with `Retry-After` |
/// | too_many_failures | 429 | `{"error":"Too many failed attempts"}`, with `Retry-After` |
/// | limiter_unavailable | 503 | `{"error":"Rate limiting is unavailable"}`, with `Retry-After` |
///
/// A 401 also carries `WWW-Authenticate: ApiKey header="<header>"` (and a `Bearer` challenge
/// when bearer tokens are accepted).
#[derive(Clone, PartialEq, Eq)]
pub struct Rejection {
    reason: Reason,
    required: ScopeRequirement,
    retry_after: Option<Duration>,
}

impl Rejection {
    pub(crate) fn new(reason: Reason) -> Self {
        Rejection {
            reason,
            required: ScopeRequirement::AnyKey,
            retry_after: None,
        }
    }

    pub(crate) fn scope(required: ScopeRequirement) -> Self {
        Rejection {
            reason: Reason::Scope,
            required,
            retry_after: None,
        }
    }

    /// A 429 or 503 that the client may retry after `wait`.
    pub(crate) fn retry(reason: Reason, wait: Duration) -> Self {
        Rejection {
            reason,
            required: ScopeRequirement::AnyKey,
            retry_after: Some(wait),
        }
    }

    /// For a 429 or 503, how long the client should wait (sent as `Retry-After`, in whole
    /// seconds rounded up).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Why the request was refused.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The status it is answered with.
    pub fn status(&self) -> Status {
        self.reason.status()
    }

    /// For a [`Reason::Scope`] rejection, what the route required.
    pub fn required_scopes(&self) -> Option<ScopeRequirement> {
        (self.reason == Reason::Scope).then_some(self.required)
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> String {
        self.json().into_owned()
    }

    /// The body, without an allocation unless it names scopes.
    fn json(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self.reason {
            Reason::Scope => {
                return Cow::Owned(
                    json!({
                        "error": "Insufficient scope",
                        "required_scopes": self.required.scopes(),
                        "match": self.required.combinator(),
                    })
                    .to_string(),
                )
            }
            Reason::Ip => r#"{"error":"This key may not be used from this address"}"#,
            Reason::NoStore => r#"{"error":"API key validation is not configured"}"#,
            Reason::RateLimited => r#"{"error":"Too many requests"}"#,
            Reason::TooManyFailures => r#"{"error":"Too many failed attempts"}"#,
            Reason::LimiterUnavailable => r#"{"error":"Rate limiting is unavailable"}"#,
            Reason::Missing
            | Reason::Malformed
            | Reason::Duplicate
            | Reason::Unknown
            | Reason::Expired => UNAUTHORIZED_BODY,
        })
    }

    /// The rejection an API-key guard recorded for this request, if any.
    ///
    /// For applications that register their own 401/403 catchers (see
    /// [`ApiKeyStoreBuilder::register_catchers`](crate::ApiKeyStoreBuilder::register_catchers)):
    ///
    /// ```
    /// use rocket::{catch, Request};
    /// use rocket_api_key::Rejection;
    ///
    /// #[catch(401)]
    /// fn unauthorized(req: &Request<'_>) -> Result<Rejection, &'static str> {
    ///     Rejection::of(req).cloned().ok_or("log in first")
    /// }
    /// ```
    pub fn of<'r>(req: &'r Request<'_>) -> Option<&'r Rejection> {
        recorded_rejection(req)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            Reason::Scope => write!(f, "API key rejected: scope (requires {})", self.required),
            reason => write!(f, "API key rejected: {reason}"),
        }
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rejection({}", self.reason)?;
        if self.reason == Reason::Scope {
            write!(f, ", requires {}", self.required)?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, ", retry after {wait:?}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for Rejection {}

impl<'r> Responder<'r, 'static> for Rejection {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        note_answered(req);
        let retry_after = self.retry_after;
        let answer = JsonError {
            status: self.status(),
            body: self.json(),
        };
        let mut response = answer.respond_to(req)?;
        if let Some(wait) = retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.set_header(Header::new("Retry-After", secs.max(1).to_string()));
        }
        Ok(response)
    }
}

/// A JSON error answer; a 401 also gets its `WWW-Authenticate` challenge.
struct JsonError {
    status: Status,
    body: Cow<'static, str>,
}

impl<'r> Responder<'r, 'static> for JsonError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let JsonError { status, body } = self;
        let body: Cow<'static, [u8]> = match body {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        };
        let mut response = Response::build();
        response
            .status(status)
            .header(ContentType::JSON)
            .sized_body(body.len(), Cursor::new(body));
        if status == Status::Unauthorized {
            let keys = req.rocket().state::<ApiKeyStore>();
            let challenge = match keys {
                Some(keys) => keys.challenge().to_owned(),
                None => challenge(&crate::config::Config::default().header),
            };
            response.header(Header::new("WWW-Authenticate", challenge));
            if keys.is_some_and(|keys| keys.config().accept_bearer) {
                response.header_adjoin(Header::new("WWW-Authenticate", "Bearer"));
            }
        }
        response.ok()
    }
}

/// The request's first rejection and whether a [`Rejection`] answered it, in one entry of
/// Rocket's request-local cache.
#[derive(Default)]
struct Recorded {
    rejection: OnceLock<Rejection>,
    /// Set when a [`Rejection`] answered the request itself (our catchers, or the
    /// application's through [`Rejection::of`]): the response needs no repair.
    answered: AtomicBool,
}

fn recorded<'r>(req: &'r Request<'_>) -> &'r Recorded {
    req.local_cache(Recorded::default)
}

/// Keeps `rejection` as the request's rejection, for the catchers, unless one is kept already:
/// whether it was, so that only the first is logged and counted.
pub(crate) fn keep(req: &Request<'_>, rejection: Rejection) -> bool {
    recorded(req).rejection.set(rejection).is_ok()
}

pub(crate) fn recorded_rejection<'r>(req: &'r Request<'_>) -> Option<&'r Rejection> {
    recorded(req).rejection.get()
}

/// Notes that a [`Rejection`] made the response to `req`.
pub(crate) fn note_answered(req: &Request<'_>) {
    recorded(req).answered.store(true, Ordering::Relaxed);
}

/// The rejection recorded for `req`, unless a [`Rejection`] already made its response.
pub(crate) fn unanswered_rejection<'r>(req: &'r Request<'_>) -> Option<&'r Rejection> {
    let recorded = recorded(req);
    if recorded.answered.load(Ordering::Relaxed) {
        return None;
    }
    recorded.rejection.get()
}

/// The 401 catcher: the recorded rejection, or the generic 401 body for a 401 from elsewhere.
#[rocket::catch(401)]
fn unauthorized(req: &Request<'_>) -> Result<Rejection, JsonError> {
    answer(req, Status::Unauthorized, UNAUTHORIZED_BODY)
}

/// The 403 catcher: the recorded rejection, or a generic JSON 403.
#[rocket::catch(403)]
fn forbidden(req: &Request<'_>) -> Result<Rejection, JsonError> {
    answer(req, Status::Forbidden, r#"{"error":"Forbidden"}"#)
}

fn answer(
    req: &Request<'_>,
    status: Status,
    fallback: &'static str,
) -> Result<Rejection, JsonError> {
    match Rejection::of(req) {
        Some(rejection) if rejection.status() == status => Ok(rejection.clone()),
        _ => Err(JsonError {
            status,
            body: Cow::Borrowed(fallback),
        }),
    }
}

/// The 429 catcher: a rate limit of this layer, or a generic JSON 429.
#[rocket::catch(429)]
fn too_many_requests(req: &Request<'_>) -> Result<Rejection, JsonError> {
    answer(
        req,
        Status::TooManyRequests,
        r#"{"error":"Too many requests"}"#,
    )
}

/// The 503 catcher, for an unreachable shared limiter with the `deny` policy.
#[rocket::catch(503)]
fn unavailable(req: &Request<'_>) -> Result<Rejection, JsonError> {
    answer(
        req,
        Status::ServiceUnavailable,
        r#"{"error":"Service unavailable"}"#,
    )
}

/// The JSON catchers for every status this layer answers with (401, 403, 429, 503), for
/// applications that opted out with
/// [`register_catchers(false)`](crate::ApiKeyStoreBuilder::register_catchers) and mount them
/// themselves, where they like. Each answers with the recorded [`Rejection`], or a generic JSON
/// body of its status for an error that came from elsewhere.
///
/// The fairing itself registers only the 401 and 403 catchers at `/`; it answers its own 429s
/// and 503s (and any of its refusals that another catcher answered) in its response stage.
pub fn catchers() -> Vec<rocket::Catcher> {
    rocket::catchers![unauthorized, forbidden, too_many_requests, unavailable]
}

/// What the fairing registers at `/`.
pub(crate) fn catchers_registered() -> Vec<rocket::Catcher> {
    rocket::catchers![unauthorized, forbidden]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_short_and_says_what_matters() {
        assert_eq!(
            format!("{:?}", Rejection::new(Reason::Unknown)),
            "Rejection(unknown)"
        );
        assert_eq!(
            format!(
                "{:?}",
                Rejection::scope(ScopeRequirement::AllOf(&["read:orders"]))
            ),
            "Rejection(scope, requires all(read:orders))"
        );
        assert_eq!(
            format!(
                "{:?}",
                Rejection::retry(Reason::RateLimited, Duration::from_millis(1500))
            ),
            "Rejection(rate_limited, retry after 1.5s)"
        );
    }
}
