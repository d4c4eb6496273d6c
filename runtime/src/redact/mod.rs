//! What must never be shown whole: keys sent in a query string by mistake, and the credentials in
//! a Redis or PostgreSQL URL.

mod credential;
pub(crate) mod query;

pub(crate) use credential::CredentialUrl;
