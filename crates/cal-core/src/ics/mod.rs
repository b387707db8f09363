//! iCalendar (RFC 5545), both ways: import of the calendars providers
//! publish (SEMANTICS.md §6) and export of the ones we send (§7).
//!
//! Import reads a body in two streaming passes ([`import`]): the syntax
//! (`lexer`) gives content lines, their values (`values`) are placed on
//! the wall clock their TZID names (`zones`), and the body's events are
//! expanded (`expand`, with rules parsed by [`rrule`] and expanded by
//! `recur`, and only the latest of an event's versions kept by `versions`)
//! into busy occurrences. Export ([`export`]) writes the booking
//! attachments and the personal feed.

pub mod export;
mod expand;
pub mod import;
mod lexer;
mod recur;
pub mod rrule;
mod values;
mod versions;
mod zones;
