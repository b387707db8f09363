//! Reading a blocking calendar into busy time: what a read starts from,
//! applying a completed read in one transaction, and recording a failed one
//! (which changes no busy row).

use std::collections::{HashMap, HashSet};

use cal_core::time::{Instant, Interval, Zone};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{CalendarRef, SYNC_ERROR, SYNC_OK, SYNC_REAUTH_REQUIRED, SYNC_REMOTE_CHANGE_IGNORED, calendar_ref, cut, not_found};
use crate::db::{Begin, Executor};
use crate::error::{RowProblem, StoreError};
use crate::outbox;

/// What a sync needs to know of a calendar before it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullState {
    /// The owner.
    pub user_id: String,
    /// Whether its busy time counts (a calendar turned off in the meantime
    /// is not read).
    pub blocks: bool,
    /// Where the increment starts (`None`: full read).
    pub sync_token: Option<String>,
    /// The provider's zone, for all-day items (the zone of the provider's
    /// first active weekly rule, UTC without one).
    pub zone: Zone,
    /// How far ahead bookings can be made, days (the horizon of a full read).
    pub horizon_days: i32,
}

/// The provider's zone and booking horizon, read as the ICS poller reads
/// them (`crate::poll`'s due columns), for the calendar's owner.
const PROVIDER_ZONE_SQL: &str = "select
     (select r.timezone from cal.weekly_rule r where r.user_id = k.user_id and r.active
       order by r.created_at, r.rule_id limit 1) as provider_zone,
     (select max(r.booking_window_days) from cal.weekly_rule r where r.user_id = k.user_id and r.active) as horizon_days,
     k.user_id, k.blocks, k.sync_token
   from cal.sync_calendar k where k.connection_id = $1 and k.calendar_id = $2";

/// A calendar's sync state.
pub async fn pull_state(db: &impl Executor, connection_id: &str, calendar_id: &str) -> Result<PullState, StoreError> {
    let rows = db.query(PROVIDER_ZONE_SQL, &[&connection_id, &calendar_id]).await?;
    let row = rows.first().ok_or_else(|| StoreError::NotFound { entity: "calendar", id: format!("{connection_id}/{calendar_id}") })?;
    Ok(PullState {
        zone: crate::poll::zone_or_utc(row.try_get("provider_zone")?, connection_id),
        horizon_days: row.try_get::<_, Option<i32>>("horizon_days")?.unwrap_or(crate::poll::DEFAULT_HORIZON_DAYS),
        user_id: row.try_get("user_id")?,
        blocks: row.try_get("blocks")?,
        sync_token: row.try_get("sync_token")?,
    })
}

/// One item of a completed read, resolved to instants in the provider's zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledItem {
    /// The service's item id.
    pub item_id: String,
    /// What it blocks (`None`: nothing — free, declined, cancelled or deleted).
    pub busy: Option<Interval>,
    /// Our event id, when the item carries our extended property.
    pub ours: Option<String>,
}

/// A completed read of one calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// The token the read started from (`None`: none was stored).
    pub started_from: Option<String>,
    /// Items: every item (full) or the changed ones (increment).
    pub items: Vec<PulledItem>,
    /// The token for the next increment.
    pub token: String,
    /// A full read replaces the calendar's busy time.
    pub full: bool,
}

/// What applying a read did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// `false`: another sync of the calendar committed first (its token is
    /// not the one this read started from); nothing was written.
    pub applied: bool,
    /// Busy rows written or removed.
    pub changed: usize,
    /// Our bookings that were changed or deleted remotely: rewrite them.
    pub restore: Vec<String>,
    /// The provider's new version, if busy time changed.
    pub version: Option<i64>,
}

/// Applies a completed read in one transaction, unless another sync of the
/// same calendar committed since this read's token was taken (then the
/// other one's result stands and this one is dropped: the two read the same
/// changes, and applying the older would go back in time).
///
/// Items of ours (by extended property, or by an item id we wrote) never
/// count as busy. One of ours that is gone, freed or moved is reported in
/// [`Applied::restore`] with a `cal.sync.remote_change_ignored` event, and
/// its write record is reset so the next push writes it again.
pub async fn apply_pull(
    db: &mut impl Begin,
    connection_id: &str,
    calendar_id: &str,
    pulled: &Pulled,
    next_sync_at: Instant,
) -> Result<Applied, StoreError> {
    let tx = db.begin().await?;
    let rows = tx.query("select user_id from cal.sync_calendar where connection_id = $1 and calendar_id = $2", &[&connection_id, &calendar_id]).await?;
    let Some(row) = rows.first() else { return Ok(Applied::default()) };
    let user_id: String = row.try_get(0)?;
    // The provider's version row first, then the calendar's: the order every
    // writer of this provider takes.
    tx.execute("insert into cal.provider_version (user_id, version) values ($1, 0) on conflict (user_id) do nothing", &[&user_id])
        .await?;
    tx.execute("select 1 from cal.provider_version where user_id = $1 for update", &[&user_id]).await?;
    let rows = tx
        .query(
            "select sync_token, blocks from cal.sync_calendar where connection_id = $1 and calendar_id = $2 for update",
            &[&connection_id, &calendar_id],
        )
        .await?;
    let Some(row) = rows.first() else { return Ok(Applied::default()) };
    let (token, blocks): (Option<String>, bool) = (row.try_get(0)?, row.try_get(1)?);
    if token != pulled.started_from || !blocks {
        return Ok(Applied::default());
    }

    // Our items in this calendar: by item id, with the event they show.
    let written = tx
        .query(
            "select w.item_id, w.event_id, e.start_at, e.end_at, e.status = 'confirmed' as live, w.removed
               from cal.sync_write w join cal.event e using (event_id)
              where w.connection_id = $1 and w.calendar_id = $2 and w.item_id is not null",
            &[&connection_id, &calendar_id],
        )
        .await?;
    let mut ours: HashMap<String, (String, Option<Interval>)> = HashMap::new();
    for r in &written {
        let live: bool = r.try_get("live")?;
        let removed: bool = r.try_get("removed")?;
        let event_id: String = r.try_get("event_id")?;
        let span = Interval::new(
            Instant::from_chrono(r.try_get("start_at")?),
            Instant::from_chrono(r.try_get("end_at")?),
        )
        .map_err(|e| StoreError::InvalidRow { table: "cal.event", id: event_id.clone(), column: "end_at", problem: RowProblem::Time(e) })?;
        ours.insert(r.try_get("item_id")?, (event_id, (live && !removed).then_some(span)));
    }

    let mut restore: Vec<String> = Vec::new();
    let mut seen_ours: HashSet<&str> = HashSet::new();
    // Busy items as three parallel columns (for `unnest`), and freed ones.
    let (mut ids, mut starts, mut ends) = (Vec::<&str>::new(), Vec::<DateTime<Utc>>::new(), Vec::<DateTime<Utc>>::new());
    let mut gone: Vec<&str> = Vec::new();
    for item in &pulled.items {
        let mine = ours.get(&item.item_id).map(|(e, span)| (e.as_str(), *span)).or_else(|| {
            item.ours.as_deref().map(|e| (e, None))
        });
        if let Some((event_id, expected)) = mine {
            seen_ours.insert(item.item_id.as_str());
            // Only a booking we still show can be "changed remotely".
            if let Some(expected) = expected
                && item.busy != Some(expected)
            {
                restore.push(event_id.to_owned());
            }
            continue;
        }
        match item.busy {
            Some(iv) => {
                ids.push(&item.item_id);
                starts.push(iv.start().to_chrono());
                ends.push(iv.end().to_chrono());
            }
            None => gone.push(&item.item_id),
        }
    }
    if pulled.full {
        // A full read lists everything: one of ours it does not list was deleted.
        for (item_id, (event_id, expected)) in &ours {
            if expected.is_some() && !seen_ours.contains(item_id.as_str()) {
                restore.push(event_id.clone());
            }
        }
    }
    restore.sort();
    restore.dedup();

    let mut changed = 0;
    if pulled.full {
        changed += tx
            .execute(
                "delete from cal.synced_event where connection_id = $1 and calendar_id = $2 and item_id <> all($3)",
                &[&connection_id, &calendar_id, &ids],
            )
            .await? as usize;
    } else if !gone.is_empty() {
        changed += tx
            .execute(
                "delete from cal.synced_event where connection_id = $1 and calendar_id = $2 and item_id = any($3)",
                &[&connection_id, &calendar_id, &gone],
            )
            .await? as usize;
    }
    if !ids.is_empty() {
        // Only rows that are new or moved count as a change.
        changed += tx
            .execute(
                "insert into cal.synced_event (connection_id, calendar_id, item_id, user_id, start_at, end_at)
                 select $1, $2, i, $3, s, e from unnest($4::text[], $5::timestamptz[], $6::timestamptz[]) as t(i, s, e)
                 on conflict (connection_id, calendar_id, item_id) do update
                    set start_at = excluded.start_at, end_at = excluded.end_at
                  where (cal.synced_event.start_at, cal.synced_event.end_at) is distinct from (excluded.start_at, excluded.end_at)",
                &[&connection_id, &calendar_id, &user_id, &ids, &starts, &ends],
            )
            .await? as usize;
    }
    let version = if changed > 0 { Some(outbox::bump_version(&tx, &user_id).await?) } else { None };
    if !restore.is_empty() {
        tx.execute("update cal.sync_write set written_sequence = null, updated_at = now() where event_id = any($1)", &[&restore])
            .await?;
        for event_id in &restore {
            let payload = json!({ "connection_id": connection_id, "calendar_id": calendar_id, "event_id": event_id });
            outbox::enqueue(&tx, SYNC_REMOTE_CHANGE_IGNORED, &user_id, &payload).await?;
        }
    }
    tx.execute(
        "update cal.sync_calendar set sync_token = $3, last_sync_at = now(), last_error = null, next_sync_at = $4, updated_at = now()
          where connection_id = $1 and calendar_id = $2",
        &[&connection_id, &calendar_id, &pulled.token, &next_sync_at.to_chrono()],
    )
    .await?;
    let was: Option<String> = tx
        .query(
            "update cal.sync_connection c set status = 'connected', last_error = null, last_sync_at = now(), updated_at = now()
               from (select status from cal.sync_connection where connection_id = $1) old
              where c.connection_id = $1 returning old.status",
            &[&connection_id],
        )
        .await?
        .first()
        .map(|r| r.get(0));
    if changed > 0 || pulled.full || was.as_deref() != Some("connected") {
        let payload = json!({ "connection_id": connection_id, "calendar_id": calendar_id, "full": pulled.full,
                              "changed": changed, "version": version });
        outbox::enqueue(&tx, SYNC_OK, &user_id, &payload).await?;
    }
    tx.commit().await?;
    Ok(Applied { applied: true, changed, restore, version })
}

/// Why a sync failed, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The grant is gone: `needs_reauth` until the provider connects again.
    Reauth,
    /// Anything else: `error`, retried at the given time.
    Other,
}

/// Records a failed sync of a calendar (or of the whole connection, with no
/// calendar): its busy time stays as it was. Emits `cal.sync.reauth_required`
/// when the connection first needs a new consent, else `cal.sync.error`.
pub async fn record_pull_failure(
    db: &mut impl Begin,
    connection_id: &str,
    calendar_id: Option<&str>,
    kind: FailureKind,
    error: &str,
    retry_at: Instant,
) -> Result<(), StoreError> {
    let tx = db.begin().await?;
    let error = cut(error);
    let status = match kind {
        FailureKind::Reauth => "needs_reauth",
        FailureKind::Other => "error",
    };
    let rows = tx
        .query(
            "update cal.sync_connection c set status = $2, last_error = $3, updated_at = now()
               from (select status from cal.sync_connection where connection_id = $1 for update) old
              where c.connection_id = $1 returning c.user_id, old.status",
            &[&connection_id, &status, &error],
        )
        .await?;
    let Some(row) = rows.first() else { return Ok(()) };
    let (user_id, was): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    if let Some(calendar_id) = calendar_id {
        tx.execute(
            "update cal.sync_calendar set last_error = $3, next_sync_at = $4, updated_at = now()
              where connection_id = $1 and calendar_id = $2",
            &[&connection_id, &calendar_id, &error, &retry_at.to_chrono()],
        )
        .await?;
    }
    let payload = json!({ "connection_id": connection_id, "calendar_id": calendar_id, "error": error });
    match kind {
        FailureKind::Reauth if was != "needs_reauth" => {
            outbox::enqueue(&tx, SYNC_REAUTH_REQUIRED, &user_id, &payload).await?;
        }
        FailureKind::Reauth => {}
        FailureKind::Other => {
            outbox::enqueue(&tx, SYNC_ERROR, &user_id, &payload).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Makes a full read of `user_id`'s calendar due now (a resync asked for by
/// the provider or an operator, or `410 Gone`).
pub async fn request_resync(db: &impl Executor, user_id: &str, connection_id: &str) -> Result<Vec<CalendarRef>, StoreError> {
    let rows = db
        .query(
            "update cal.sync_calendar set sync_token = null, next_sync_at = now(), updated_at = now()
              where connection_id = $1 and user_id = $2 and blocks returning connection_id, calendar_id",
            &[&connection_id, &user_id],
        )
        .await?;
    if rows.is_empty() && db.query("select 1 from cal.sync_connection where connection_id = $1 and user_id = $2", &[&connection_id, &user_id]).await?.is_empty() {
        return Err(not_found(connection_id));
    }
    rows.iter().map(calendar_ref).collect()
}

/// Forgets a calendar's token, so its next read is a full one.
pub async fn forget_token(db: &impl Executor, connection_id: &str, calendar_id: &str) -> Result<(), StoreError> {
    db.execute(
        "update cal.sync_calendar set sync_token = null, updated_at = now() where connection_id = $1 and calendar_id = $2",
        &[&connection_id, &calendar_id],
    )
    .await?;
    Ok(())
}
