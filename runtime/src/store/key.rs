//! [`ApiKey`]: the validated key behind a request, as a handler sees it.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::MetricsKeyLabel;
use crate::keygen::digest::Fingerprint;
use crate::rate::RateSpec;
use crate::slot_table::{KeyIdentity, Profile, Slot, SlotTable};

/// The validated key behind a request: its name and permissions, never the key itself.
///
/// Also a request guard: declare it in a handler to learn who is calling. On its own it accepts
/// any valid key; after `#[require_api_key(…)]` it reuses the result of that check.
///
/// ```
/// use rocket::get;
/// use rocket_api_key::ApiKey;
///
/// #[get("/whoami")]
/// fn whoami(key: ApiKey) -> String {
///     format!("{} ({})", key.name(), key.scopes().join(" "))
/// }
/// ```
///
/// An `ApiKey` refers to the set of keys it was checked against, so it shows the key as it was
/// then, whatever a reload changed since; and it keeps that set in memory until it is dropped.
/// It is meant to live as long as a request: to remember a caller for longer, keep its
/// [name](Self::name).
#[derive(Clone)]
pub struct ApiKey {
    pub(super) table: Arc<SlotTable>,
    /// A position `SlotTable::find` returned: always holds a slot.
    pub(super) position: usize,
}

impl ApiKey {
    fn slot(&self) -> &Slot {
        match self.table.slot(self.position) {
            Some(slot) => slot,
            None => unreachable!("an ApiKey is made only from a slot of its store"),
        }
    }

    /// The key's name: `<NAME>` of `API_KEY_<NAME>`, lowercased, or the name in the keys file.
    pub fn name(&self) -> &str {
        &self.slot().identity.name
    }

    /// The scopes granted to the key.
    pub fn scopes(&self) -> Vec<&str> {
        self.granted().iter().map(|s| &**s).collect()
    }

    /// Whether the key has `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.granted().iter().any(|s| &**s == scope)
    }

    /// When the key expires, if it does: in UTC, to the microsecond.
    pub fn expires(&self) -> Option<OffsetDateTime> {
        self.slot().expires.to_time()
    }

    /// The fingerprint of the key in logs: the first 8 hex digits of its SHA-256 digest.
    pub fn fingerprint(&self) -> Fingerprint {
        self.slot().digest.fingerprint()
    }

    /// The scopes, without a `Vec`.
    pub(crate) fn granted(&self) -> &[Box<str>] {
        &self.profile().scopes
    }

    pub(crate) fn rate(&self) -> Option<RateSpec> {
        self.profile().rate
    }

    pub(crate) fn identity(&self) -> &KeyIdentity {
        &self.slot().identity
    }

    /// Counts the request as accepted; in `api_key_requests_total` labelled as `label` (the
    /// store's [`key_label`](super::ApiKeyStore::key_label)) says.
    pub(crate) fn record_accepted(&self, label: MetricsKeyLabel) {
        self.slot().record_accepted(label);
    }

    fn profile(&self) -> &Profile {
        self.table.profile(self.slot())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name())
            .field("fingerprint", &self.fingerprint())
            .field("scopes", &self.granted())
            .finish()
    }
}
