//! What the store checks on behalf of a hold's caller beyond the request
//! itself: the customer's hold limit and who may move an event.

use cal_core::holds::HoldRequest;

use super::records::EventRecord;
#[cfg(doc)]
use crate::error::StoreError;

/// At most `max` holds created by one customer (`HoldRequest::customer_id`)
/// in the `window_secs` before a request's `now`, all providers together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomerLimit {
    /// Holds allowed in the window.
    pub max: i64,
    /// The window, in seconds.
    pub window_secs: i64,
}

impl CustomerLimit {
    /// At most `max` holds an hour.
    pub const fn per_hour(max: i64) -> Self {
        CustomerLimit { max, window_secs: 3600 }
    }
}

impl std::fmt::Display for CustomerLimit {
    /// `at most 20 holds per hour`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = self.max;
        match self.window_secs {
            3600 => write!(f, "at most {max} holds per hour"),
            86_400 => write!(f, "at most {max} holds per day"),
            s if s % 60 == 0 => write!(f, "at most {max} holds per {} minutes", s / 60),
            s => write!(f, "at most {max} holds per {s} seconds"),
        }
    }
}

/// What the store checks on behalf of a hold's caller, beyond the request
/// itself. [`HoldPolicy::TRUSTED`] (the default) checks nothing more: for
/// admins, services and operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldPolicy {
    /// The limit on the request's customer's holds, checked by the write
    /// under a per-customer lock, so concurrent requests of one customer,
    /// whatever their providers, never exceed it: over it, the request is
    /// [`StoreError::CustomerLimit`] (`RATE_LIMITED`). A retry of a hold
    /// already made is answered whatever the limit. `None`, or a request
    /// without a customer: no limit.
    pub customer_limit: Option<CustomerLimit>,
    /// The caller, unless trusted: a reschedule hold may move only an event
    /// the caller is the provider or the customer of; another's is
    /// `NOT_FOUND`, as if it did not exist. `None`: any event of the
    /// request's provider.
    pub on_behalf_of: Option<String>,
}

impl HoldPolicy {
    /// No limit, any event of the provider.
    pub const TRUSTED: HoldPolicy = HoldPolicy { customer_limit: None, on_behalf_of: None };

    /// The limit that applies to `req`: none without a customer.
    pub(super) fn limit_for(&self, req: &HoldRequest) -> Option<CustomerLimit> {
        self.customer_limit.filter(|_| req.customer_id.is_some())
    }

    /// Whether the caller may move `event` (see [`HoldPolicy::on_behalf_of`]).
    pub(super) fn may_move(&self, event: &EventRecord) -> bool {
        self.on_behalf_of.as_deref().is_none_or(|me| me == event.user_id || Some(me) == event.customer_id.as_deref())
    }
}
