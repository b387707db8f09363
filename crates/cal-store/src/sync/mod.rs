//! Two-way sync's records (SEMANTICS.md §11): connections and their
//! calendars, the busy items of blocking calendars, and what we wrote into
//! the booking calendar. The protocol is cal-sync's; the functions that
//! call both are `fn-sync-*`.
//!
//! Synced busy time lives beside imported ICS busy time (the calendar read
//! unions `cal.synced_event` into its external rows) and, like it, every
//! change bumps the provider's version, so a hold re-checks it and a cached
//! answer is not served over it. A failed sync changes no busy row.

use std::collections::HashMap;

use cal_core::time::Instant;
use cal_sync::jobs::Sealed;
use cal_sync::{RemoteCalendar, ServiceKind, Watch};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio_postgres::Row;

use crate::db::{Begin, Executor};
use crate::error::{StoreError, ValidationProblem};
use crate::outbox;

mod pull;
mod push;

pub use pull::{Applied, FailureKind, PullState, Pulled, PulledItem, apply_pull, forget_token, pull_state, record_pull_failure, request_resync};
pub use push::{PushPlan, future_bookings, parked_push_count, push_plan, record_push, record_push_failure};

/// A sync brought its calendar up to date.
pub const SYNC_OK: &str = "cal.sync.ok";
/// A sync failed; the calendar keeps its last good busy time.
pub const SYNC_ERROR: &str = "cal.sync.error";
/// The grant is gone: the provider must connect again.
pub const SYNC_REAUTH_REQUIRED: &str = "cal.sync.reauth_required";
/// Someone changed or deleted one of our bookings in the provider's
/// calendar; the booking stands and the next write restores it.
pub const SYNC_REMOTE_CHANGE_IGNORED: &str = "cal.sync.remote_change_ignored";
/// A calendar account was connected (or connected again).
pub const SYNC_CONNECTED: &str = "cal.sync.connected";
/// A connection was removed with its calendars and busy time.
pub const SYNC_DISCONNECTED: &str = "cal.sync.disconnected";

/// Most calendar connections one provider may hold.
pub const MAX_CONNECTIONS_PER_USER: i64 = 10;
/// Longest error text kept in a status (it never holds a secret).
const MAX_ERROR_CHARS: usize = 300;

/// A connection's state, as the provider sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Syncing.
    Connected,
    /// The grant expired or was revoked: connect again.
    NeedsReauth,
    /// The last sync failed for another reason (see `last_error`); it is
    /// retried.
    Error,
}

impl ConnectionStatus {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "connected" => Some(ConnectionStatus::Connected),
            "needs_reauth" => Some(ConnectionStatus::NeedsReauth),
            "error" => Some(ConnectionStatus::Error),
            _ => None,
        }
    }

    /// The stored (and GraphQL-lower-cased) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::NeedsReauth => "needs_reauth",
            ConnectionStatus::Error => "error",
        }
    }
}

/// One calendar of a connection and its use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncCalendar {
    /// The service's calendar id.
    pub calendar_id: String,
    /// Its name in the service.
    pub name: String,
    /// Whether bookings may be written into it.
    pub writable: bool,
    /// Its busy time blocks ours.
    pub blocks: bool,
    /// Our bookings are written into it.
    pub receives_bookings: bool,
    /// The last successful sync.
    pub last_sync_at: Option<Instant>,
    /// Why the last sync failed, if it did.
    pub last_error: Option<String>,
    /// When its push channel / subscription expires.
    pub watch_expires_at: Option<Instant>,
}

/// A connection as the provider sees it: no token, no secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// `con_…`.
    pub connection_id: String,
    /// Whose it is.
    pub user_id: String,
    /// Google or Microsoft.
    pub service: ServiceKind,
    /// The account's e-mail or user principal name.
    pub account: String,
    /// Its state.
    pub status: ConnectionStatus,
    /// The last successful sync of any of its calendars.
    pub last_sync_at: Option<Instant>,
    /// Why it is not `connected`.
    pub last_error: Option<String>,
    /// Its calendars.
    pub calendars: Vec<SyncCalendar>,
}

/// A connection with its sealed refresh token, for the worker.
#[derive(Clone, Debug)]
pub struct ConnectionGrant {
    /// The connection.
    pub connection: Connection,
    /// The refresh token, sealed ([`cal_sync::jobs::TokenVault::open`]).
    pub token: Sealed,
}

/// What the callback stores after a consent.
#[derive(Debug)]
pub struct NewConnection<'a> {
    /// The provider who consented.
    pub user_id: &'a str,
    /// The service.
    pub service: ServiceKind,
    /// The service's account id and display name.
    pub account: &'a cal_sync::Account,
    /// The refresh token, sealed for `connection_id`.
    pub token: &'a Sealed,
    /// The id the token was sealed for ([`new_connection_id`]).
    pub connection_id: &'a str,
    /// Scopes granted.
    pub scopes: Option<&'a str>,
    /// The account's calendars.
    pub calendars: &'a [RemoteCalendar],
}

/// A fresh connection id (`con_` and 32 hex digits).
pub fn new_connection_id() -> String {
    format!("con_{}", uuid::Uuid::new_v4().simple())
}

const TABLE: &str = "cal.sync_connection";

fn not_found(connection_id: &str) -> StoreError {
    StoreError::NotFound { entity: "calendar_connection", id: connection_id.to_owned() }
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

fn instant(row: &Row, column: &str) -> Result<Option<Instant>, StoreError> {
    Ok(row.try_get::<_, Option<DateTime<Utc>>>(column)?.map(Instant::from_chrono))
}

/// The id of `user_id`'s existing connection to this account, if any: a
/// token is sealed for the connection that will hold it.
pub async fn connection_id_for(
    db: &impl Executor,
    user_id: &str,
    service: ServiceKind,
    account_subject: &str,
) -> Result<Option<String>, StoreError> {
    Ok(db
        .query(
            "select connection_id from cal.sync_connection where user_id = $1 and service = $2 and account_subject = $3",
            &[&user_id, &service.as_str(), &account_subject],
        )
        .await?
        .first()
        .map(|r| r.get(0)))
}

/// Records an OAuth state's nonce as used; `false` if it was used before
/// (a replayed consent).
pub async fn use_oauth_nonce(db: &impl Executor, nonce: &str) -> Result<bool, StoreError> {
    let n = db.execute("insert into cal.oauth_nonce (nonce) values ($1) on conflict do nothing", &[&nonce]).await?;
    Ok(n == 1)
}

/// The connection of `new.user_id` to `new.account` after a consent:
/// created, or (same account connected again) given the new token and set
/// back to `connected`. The account's calendars are added or renamed;
/// choices already made stay. A new connection's primary calendar blocks
/// time from the start, which is what connecting a calendar is for.
/// Returns the connection's id (an existing one keeps its id).
pub async fn save_connection(db: &mut impl Begin, new: &NewConnection<'_>) -> Result<String, StoreError> {
    let tx = db.begin().await?;
    let service = new.service.as_str();
    let count: i64 = tx
        .query(
            "select count(*) from cal.sync_connection where user_id = $1 and not (service = $2 and account_subject = $3)",
            &[&new.user_id, &service, &new.account.subject],
        )
        .await?[0]
        .get(0);
    if count >= MAX_CONNECTIONS_PER_USER {
        return Err(StoreError::Limit { what: "calendar connections", max: MAX_CONNECTIONS_PER_USER });
    }
    let rows = tx
        .query(
            "insert into cal.sync_connection as c
                    (connection_id, user_id, service, account_subject, account_display,
                     token_ciphertext, token_nonce, token_wrapped_key, scopes)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             on conflict (user_id, service, account_subject) do update
                set account_display = excluded.account_display, status = 'connected', last_error = null,
                    token_ciphertext = excluded.token_ciphertext, token_nonce = excluded.token_nonce,
                    token_wrapped_key = excluded.token_wrapped_key, scopes = excluded.scopes, updated_at = now()
             returning connection_id, (xmax = 0) as created",
            &[
                &new.connection_id,
                &new.user_id,
                &service,
                &new.account.subject,
                &new.account.display,
                &new.token.ciphertext,
                &new.token.nonce,
                &new.token.wrapped_key,
                &new.scopes,
            ],
        )
        .await?;
    let connection_id: String = rows[0].get(0);
    let created: bool = rows[0].get(1);
    for cal in new.calendars {
        tx.execute(
            "insert into cal.sync_calendar (connection_id, calendar_id, user_id, name, writable, blocks)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (connection_id, calendar_id) do update
                set name = excluded.name, writable = excluded.writable,
                    receives_bookings = cal.sync_calendar.receives_bookings and excluded.writable, updated_at = now()",
            &[&connection_id, &cal.id, &new.user_id, &cal.name, &cal.writable, &(created && cal.primary)],
        )
        .await?;
    }
    let payload = json!({ "connection_id": connection_id, "user_id": new.user_id, "service": service });
    outbox::enqueue(&tx, SYNC_CONNECTED, new.user_id, &payload).await?;
    tx.commit().await?;
    tracing::info!(connection_id, user_id = new.user_id, service, "calendar account connected");
    Ok(connection_id)
}

const CONNECTION_COLUMNS: &str =
    "c.connection_id, c.user_id, c.service, c.account_display, c.status, c.last_sync_at, c.last_error";
const CALENDAR_COLUMNS: &str = "k.connection_id, k.calendar_id, k.name, k.writable, k.blocks, k.receives_bookings,
     k.last_sync_at, k.last_error, k.watch_expires_at";

fn connection(row: &Row) -> Result<Connection, StoreError> {
    let connection_id: String = row.try_get("connection_id")?;
    let service: &str = row.try_get("service")?;
    let status: &str = row.try_get("status")?;
    Ok(Connection {
        service: ServiceKind::parse(service).ok_or_else(|| StoreError::corrupt(TABLE, &connection_id, "service"))?,
        status: ConnectionStatus::parse(status).ok_or_else(|| StoreError::corrupt(TABLE, &connection_id, "status"))?,
        user_id: row.try_get("user_id")?,
        account: row.try_get("account_display")?,
        last_sync_at: instant(row, "last_sync_at")?,
        last_error: row.try_get("last_error")?,
        calendars: Vec::new(),
        connection_id,
    })
}

fn calendar(row: &Row) -> Result<SyncCalendar, StoreError> {
    Ok(SyncCalendar {
        calendar_id: row.try_get("calendar_id")?,
        name: row.try_get("name")?,
        writable: row.try_get("writable")?,
        blocks: row.try_get("blocks")?,
        receives_bookings: row.try_get("receives_bookings")?,
        last_sync_at: instant(row, "last_sync_at")?,
        last_error: row.try_get("last_error")?,
        watch_expires_at: instant(row, "watch_expires_at")?,
    })
}

async fn with_calendars(db: &impl Executor, mut connections: Vec<Connection>) -> Result<Vec<Connection>, StoreError> {
    let ids: Vec<&str> = connections.iter().map(|c| c.connection_id.as_str()).collect();
    let rows = db
        .query(
            &format!("select {CALENDAR_COLUMNS} from cal.sync_calendar k where k.connection_id = any($1) order by k.name, k.calendar_id"),
            &[&ids],
        )
        .await?;
    let mut by_connection: HashMap<String, Vec<SyncCalendar>> = HashMap::new();
    for row in &rows {
        by_connection.entry(row.try_get("connection_id")?).or_default().push(calendar(row)?);
    }
    for c in &mut connections {
        c.calendars = by_connection.remove(&c.connection_id).unwrap_or_default();
    }
    Ok(connections)
}

/// A provider's connections with their calendars, oldest first.
pub async fn list_connections(db: &impl Executor, user_id: &str) -> Result<Vec<Connection>, StoreError> {
    let rows = db
        .query(
            &format!("select {CONNECTION_COLUMNS} from cal.sync_connection c where c.user_id = $1 order by c.created_at, c.connection_id"),
            &[&user_id],
        )
        .await?;
    let connections = rows.iter().map(connection).collect::<Result<Vec<_>, _>>()?;
    with_calendars(db, connections).await
}

/// One connection (any owner: callers check who may see it).
pub async fn get_connection(db: &impl Executor, connection_id: &str) -> Result<Connection, StoreError> {
    Ok(grant(db, connection_id).await?.connection)
}

/// One connection with its sealed token, for the worker.
pub async fn grant(db: &impl Executor, connection_id: &str) -> Result<ConnectionGrant, StoreError> {
    let rows = db
        .query(
            &format!(
                "select {CONNECTION_COLUMNS}, c.token_ciphertext, c.token_nonce, c.token_wrapped_key
                   from cal.sync_connection c where c.connection_id = $1"
            ),
            &[&connection_id],
        )
        .await?;
    let row = rows.first().ok_or_else(|| not_found(connection_id))?;
    let token = Sealed {
        ciphertext: row.try_get("token_ciphertext")?,
        nonce: row.try_get("token_nonce")?,
        wrapped_key: row.try_get("token_wrapped_key")?,
    };
    let connection = with_calendars(db, vec![connection(row)?]).await?.remove(0);
    Ok(ConnectionGrant { connection, token })
}

/// Stores a refresh token the service rotated.
pub async fn replace_token(db: &impl Executor, connection_id: &str, token: &Sealed) -> Result<(), StoreError> {
    db.execute(
        "update cal.sync_connection set token_ciphertext = $2, token_nonce = $3, token_wrapped_key = $4, updated_at = now()
          where connection_id = $1",
        &[&connection_id, &token.ciphertext, &token.nonce, &token.wrapped_key],
    )
    .await?;
    Ok(())
}

/// How a provider uses one calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CalendarUse {
    /// Its busy time blocks ours.
    pub blocks: bool,
    /// Our bookings are written into it (at most one calendar per provider:
    /// choosing one clears the others).
    pub receives_bookings: bool,
}

/// Sets how `user_id` uses a calendar. Turning blocking off removes its busy
/// time at once; turning it on makes a full read due now. Returns the
/// connection as it is now.
pub async fn set_calendar_use(
    db: &mut impl Begin,
    user_id: &str,
    connection_id: &str,
    calendar_id: &str,
    choice: CalendarUse,
) -> Result<Connection, StoreError> {
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    let rows = tx
        .query(
            "select writable, blocks from cal.sync_calendar
              where connection_id = $1 and calendar_id = $2 and user_id = $3 for update",
            &[&connection_id, &calendar_id, &user_id],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotFound { entity: "calendar", id: format!("{connection_id}/{calendar_id}") });
    };
    let (writable, blocked): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
    if choice.receives_bookings && !writable {
        return Err(StoreError::validation("receivesBookings", ValidationProblem::Booking("this calendar is read-only".into())));
    }
    if choice.receives_bookings {
        tx.execute(
            "update cal.sync_calendar set receives_bookings = false, updated_at = now() where user_id = $1 and receives_bookings",
            &[&user_id],
        )
        .await?;
    }
    if blocked && !choice.blocks {
        tx.execute("delete from cal.synced_event where connection_id = $1 and calendar_id = $2", &[&connection_id, &calendar_id])
            .await?;
    }
    tx.execute(
        "update cal.sync_calendar
            set blocks = $3, receives_bookings = $4, updated_at = now(),
                sync_token = case when $3 and not blocks then null else sync_token end,
                next_sync_at = case when $3 and not blocks then now() else next_sync_at end
          where connection_id = $1 and calendar_id = $2",
        &[&connection_id, &calendar_id, &choice.blocks, &choice.receives_bookings],
    )
    .await?;
    let payload = json!({ "connection_id": connection_id, "calendar_id": calendar_id, "version": version,
                          "blocks": choice.blocks, "receives_bookings": choice.receives_bookings });
    outbox::enqueue(&tx, "cal.sync.calendar_updated", user_id, &payload).await?;
    tx.commit().await?;
    get_connection(db_executor(db), connection_id).await
}

fn db_executor<B: Begin>(db: &B) -> &B {
    db
}

/// What a removed connection leaves for the caller to undo remotely: the
/// token to revoke and the watches to stop.
#[derive(Debug)]
pub struct Disconnected {
    /// The service.
    pub service: ServiceKind,
    /// The sealed refresh token.
    pub token: Sealed,
    /// Its push channels / subscriptions.
    pub watches: Vec<Watch>,
}

/// Removes a connection of `user_id` with its calendars, busy time and
/// write records (our items stay in the provider's calendar: they are the
/// provider's now). Another user's connection is [`StoreError::NotFound`].
pub async fn disconnect(db: &mut impl Begin, user_id: &str, connection_id: &str) -> Result<Disconnected, StoreError> {
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    let watches = tx
        .query(
            "select watch_id, watch_resource_id, watch_expires_at from cal.sync_calendar
              where connection_id = $1 and user_id = $2 and watch_id is not null",
            &[&connection_id, &user_id],
        )
        .await?
        .iter()
        .map(watch)
        .collect::<Result<Vec<_>, _>>()?;
    let rows = tx
        .query(
            "delete from cal.sync_connection where connection_id = $1 and user_id = $2
             returning service, token_ciphertext, token_nonce, token_wrapped_key",
            &[&connection_id, &user_id],
        )
        .await?;
    let row = rows.first().ok_or_else(|| not_found(connection_id))?;
    let service: &str = row.try_get(0)?;
    let service = ServiceKind::parse(service).ok_or_else(|| StoreError::corrupt(TABLE, connection_id, "service"))?;
    let token = Sealed { ciphertext: row.try_get(1)?, nonce: row.try_get(2)?, wrapped_key: row.try_get(3)? };
    let payload = json!({ "connection_id": connection_id, "user_id": user_id, "version": version });
    outbox::enqueue(&tx, SYNC_DISCONNECTED, user_id, &payload).await?;
    tx.commit().await?;
    tracing::info!(connection_id, user_id, "calendar account disconnected");
    Ok(Disconnected { service, token, watches })
}

fn watch(row: &Row) -> Result<Watch, StoreError> {
    Ok(Watch {
        id: row.try_get("watch_id")?,
        resource_id: row.try_get("watch_resource_id")?,
        expires_at: instant(row, "watch_expires_at")?.unwrap_or(Instant::from_unix(0)),
    })
}

/// Whose calendar a notification's channel / subscription id names, and
/// the hash of the secret it must present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchOwner {
    /// The connection.
    pub connection_id: String,
    /// The calendar.
    pub calendar_id: String,
    /// SHA-256 of the channel token / clientState.
    pub secret_hash: Vec<u8>,
    /// Google's resource id of the channel (checked against the header).
    pub resource_id: Option<String>,
}

/// The calendar watched by `watch_id`, if any.
pub async fn watch_owner(db: &impl Executor, watch_id: &str) -> Result<Option<WatchOwner>, StoreError> {
    let rows = db
        .query(
            "select connection_id, calendar_id, watch_secret_hash, watch_resource_id from cal.sync_calendar
              where watch_id = $1 and blocks",
            &[&watch_id],
        )
        .await?;
    rows.first()
        .map(|r| {
            Ok(WatchOwner {
                connection_id: r.try_get(0)?,
                calendar_id: r.try_get(1)?,
                secret_hash: r.try_get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                resource_id: r.try_get(3)?,
            })
        })
        .transpose()
}

/// A calendar's current watch, if it has one.
pub async fn current_watch(db: &impl Executor, connection_id: &str, calendar_id: &str) -> Result<Option<Watch>, StoreError> {
    db.query(
        "select watch_id, watch_resource_id, watch_expires_at from cal.sync_calendar
          where connection_id = $1 and calendar_id = $2 and watch_id is not null",
        &[&connection_id, &calendar_id],
    )
    .await?
    .first()
    .map(watch)
    .transpose()
}

/// Stores a calendar's watch as granted, with the hash of its secret
/// (`None`: the same watch extended, which keeps its secret); returns the
/// one it replaces, if any.
pub async fn record_watch(
    db: &impl Executor,
    connection_id: &str,
    calendar_id: &str,
    granted: &Watch,
    secret_hash: Option<&[u8]>,
) -> Result<Option<Watch>, StoreError> {
    let rows = db
        .query(
            "update cal.sync_calendar k
                set watch_id = $3, watch_resource_id = $4, watch_expires_at = $5,
                    watch_secret_hash = coalesce($6, k.watch_secret_hash), updated_at = now()
               from (select watch_id, watch_resource_id, watch_expires_at from cal.sync_calendar
                      where connection_id = $1 and calendar_id = $2 for update) old
              where k.connection_id = $1 and k.calendar_id = $2
             returning old.watch_id, old.watch_resource_id, old.watch_expires_at",
            &[&connection_id, &calendar_id, &granted.id, &granted.resource_id, &granted.expires_at.to_chrono(), &secret_hash],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotFound { entity: "calendar", id: format!("{connection_id}/{calendar_id}") });
    };
    let old: Option<String> = row.try_get(0)?;
    Ok(if old.is_some() { Some(watch(row)?).filter(|w| w.id != granted.id) } else { None })
}

/// A calendar whose watch should be set up or renewed, or whose periodic
/// sync is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarRef {
    /// The connection.
    pub connection_id: String,
    /// The calendar.
    pub calendar_id: String,
}

fn calendar_ref(row: &Row) -> Result<CalendarRef, StoreError> {
    Ok(CalendarRef { connection_id: row.try_get(0)?, calendar_id: row.try_get(1)? })
}

/// Blocking calendars of usable connections with no watch, or one that
/// expires before `before`.
pub async fn watches_due(db: &impl Executor, before: Instant, limit: i64) -> Result<Vec<CalendarRef>, StoreError> {
    db.query(
        "select k.connection_id, k.calendar_id from cal.sync_calendar k
           join cal.sync_connection c using (connection_id)
          where k.blocks and c.status <> 'needs_reauth' and (k.watch_expires_at is null or k.watch_expires_at < $1)
          order by k.watch_expires_at nulls first limit $2",
        &[&before.to_chrono(), &limit],
    )
    .await?
    .iter()
    .map(calendar_ref)
    .collect()
}

/// Blocking calendars of usable connections whose periodic sync is due at
/// `now` (the safety net under lost notifications).
pub async fn syncs_due(db: &impl Executor, now: Instant, limit: i64) -> Result<Vec<CalendarRef>, StoreError> {
    db.query(
        "select k.connection_id, k.calendar_id from cal.sync_calendar k
           join cal.sync_connection c using (connection_id)
          where k.blocks and c.status <> 'needs_reauth' and k.next_sync_at <= $1
          order by k.next_sync_at limit $2",
        &[&now.to_chrono(), &limit],
    )
    .await?
    .iter()
    .map(calendar_ref)
    .collect()
}
