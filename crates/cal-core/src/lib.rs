//! The calendar domain, pure: time zones and DST, availability rules →
//! windows, interval algebra, busy time and feasibility; and which calendar
//! URLs may be fetched ([`url_guard`]).
//!
//! No I/O, no async, no AWS. Every function here is deterministic; the
//! current time is always a parameter (`now`). The contract is
//! SEMANTICS.md, the project's external calendar-semantics contract; comments
//! cite its sections (`§4`).

#![forbid(unsafe_code)]

pub mod availability;
pub mod error;
pub mod explain;
pub mod feasibility;
pub mod holds;
pub mod ics;
pub mod intervals;
pub mod policy;
pub mod text;
pub mod time;
pub mod url_guard;
pub mod windows_zones;
pub mod slots_document;

/// The old path of [`ics::import`], kept while callers in other crates move.
pub use ics::import as ics_in;
/// The old path of [`ics::export`], kept while callers in other crates move.
pub use ics::export as ics_out;
/// The old path of [`ics::rrule`], kept while callers in other crates move.
pub use ics::rrule as ics_rrule;

pub use availability::{Availability, BookingParams, Exception, ExceptionKind, WeekdayMask, WeeklyRule, Window};
pub use feasibility::{
    Combine, CommonAnswer, CommonSlot, EventBusy, EventStatus, FeasibilityError, HoldBusy, HoldStatus, Participant,
    PartyAnswer, PartyGroup, PartySlot, ProviderCalendar, Slot, SlotAnswer, SlotQuery, SlotRange, StepMinutes,
    bookable_slots, common_slots, party_slots,
};
pub use policy::BookingPolicy;
pub use time::{Instant, Interval, LocalMapping, LocalTime, TimeError, Zone};
pub use error::{BookingError, ErrorType};
pub use holds::{HoldKind, HoldMode, HoldRequest, HoldRequestInput};
