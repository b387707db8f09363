//! Protocol fakes of Google Calendar v3 ([`google::FakeGoogle`]) and
//! Microsoft Graph ([`microsoft::FakeGraph`]) for tests: real HTTP/1.1
//! servers on 127.0.0.1, speaking the request and response shapes of the
//! published API descriptions (Google's discovery document `calendar.v3.json`,
//! Graph's Event / Subscription / ChangeNotification types and its documented
//! delta and validation behaviour). They keep calendars in memory, deliver
//! push notifications to the receiver URLs they are given, and take injected
//! faults (`429` with `Retry-After`, `401`, `403`, `410`, `500`).
//!
//! Test-only: no production crate depends on this one.

#![forbid(unsafe_code)]

pub mod google;
pub mod microsoft;
pub mod server;

pub use server::{FakeRequest, FakeResponse, FakeServer};
