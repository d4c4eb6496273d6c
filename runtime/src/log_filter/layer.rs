//! [`CredentialFilter`], the `tracing-subscriber` layer.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::{allows, is_filtered, Bounded};

/// Drops Rocket's log events that can carry an API key (see the [module](super) documentation).
///
/// Add it to the subscriber you build; it passes every other event on. Rocket logs through the
/// `log` crate: install the subscriber with `init()` (or `try_init()`), which bridges `log`
/// records into it, rather than with `set_global_default` alone, which leaves Rocket's lines to
/// Rocket's own logger.
///
/// ```
/// use rocket_api_key::log_filter::CredentialFilter;
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::util::SubscriberInitExt;
///
/// tracing_subscriber::fmt()
///     .with_max_level(tracing::Level::DEBUG)
///     .finish()
///     .with(CredentialFilter::default())
///     .init();
/// ```
///
/// With Rocket's own logger (no `tracing` subscriber of yours), call [`init`](super::init)
/// instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialFilter {
    _private: (),
}

impl<S: Subscriber> Layer<S> for CredentialFilter {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        let target = metadata.target();
        // Rocket logs through the `log` crate: bridged events have the target `log` and carry
        // the real one in a field.
        if target != "log" && !is_filtered(target) {
            return true;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let target = if target == "log" {
            fields.log_target.as_str()
        } else {
            target
        };
        allows(target, metadata.level(), fields.message.as_str())
    }
}

/// The two fields the filter reads, each cut to a bounded length.
#[derive(Default)]
struct Fields {
    message: Bounded,
    log_target: Bounded,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push(value),
            "log.target" => self.log_target.push(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let into = match field.name() {
            "message" => &mut self.message,
            "log.target" => &mut self.log_target,
            _ => return,
        };
        into.push_display(format_args!("{value:?}"));
    }
}
