//! The service-independent parts of a sync: reading a calendar from its
//! stored token to its next one, and writing one booking so that a retry,
//! a lost answer or a remote deletion never leaves two items or none.

use cal_core::time::Instant;

use crate::{CalendarService, Cursor, NextPage, OutboundEvent, RemoteItem, Secret, SyncError};

/// At most this many pages in one sync: a service that pages forever (or a
/// calendar far beyond any booking horizon) fails the run instead of
/// looping. 500 pages of 250 Google events or 50+ Graph items each.
pub const MAX_PAGES: usize = 500;

/// What one complete read of a calendar brought.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    /// The changes (increment) or every item (full read), in service order.
    pub items: Vec<RemoteItem>,
    /// The token that starts the next increment.
    pub token: String,
    /// A full read: items not listed are gone, so the caller replaces the
    /// calendar's busy time instead of applying changes.
    pub full: bool,
}

/// Reads a calendar from `token` (or in full over `horizon` when there is
/// none, when it does not reach the horizon's end, or when the service says
/// it is gone), following every page.
/// Nothing is applied until the whole read succeeded: a failure halfway
/// leaves the last good data (§11).
pub async fn sync_calendar<S: CalendarService>(
    service: &S,
    access: &Secret,
    calendar_id: &str,
    token: Option<&str>,
    horizon: (Instant, Instant),
) -> Result<SyncRun, SyncError> {
    let full = Cursor::Full { from: horizon.0, to: horizon.1 };
    match token {
        Some(t) if service.token_reaches(t, horizon.1) => {
            match read_all(service, access, calendar_id, Cursor::Token(t.to_owned()), false).await {
                Err(SyncError::Gone) => read_all(service, access, calendar_id, full, true).await,
                other => other,
            }
        }
        // No token, or one whose window the horizon outgrew.
        _ => read_all(service, access, calendar_id, full, true).await,
    }
}

async fn read_all<S: CalendarService>(
    service: &S,
    access: &Secret,
    calendar_id: &str,
    mut cursor: Cursor,
    full: bool,
) -> Result<SyncRun, SyncError> {
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = service.sync_page(access, calendar_id, &cursor).await?;
        items.extend(page.items);
        match page.next {
            NextPage::More(next) => cursor = Cursor::Page(next),
            NextPage::Done(token) => return Ok(SyncRun { items, token, full }),
        }
    }
    Err(SyncError::Permanent(format!("more than {MAX_PAGES} pages in one sync")))
}

/// Writes one booking: an update of the stored item, or (none stored, or
/// the provider deleted it) an idempotent create. Returns the item's id,
/// which the caller stores before anything else.
pub async fn write_booking<S: CalendarService>(
    service: &S,
    access: &Secret,
    calendar_id: &str,
    stored: Option<&str>,
    event: &OutboundEvent,
) -> Result<String, SyncError> {
    if let Some(remote_id) = stored {
        match service.put_event(access, calendar_id, Some(remote_id), event).await {
            Err(SyncError::NotFound) => {}
            other => return other,
        }
    }
    // A remote deletion of our booking is not applied to it (§11): the
    // write puts it back.
    service.put_event(access, calendar_id, None, event).await
}
