//! Two-way sync's records on a real PostgreSQL: connections and calendar
//! choices, synced busy time blocking slots (and bumping the version), a
//! stale read dropped, a failed read keeping the last good data, our own
//! items never counted and their remote changes reported, and the push plan
//! of a booking through its life.

use cal_core::holds::{HoldKind, HoldMode};
use cal_core::time::Interval;
use cal_store::outbox;
use cal_store::sync::{
    self, CalendarUse, ConnectionStatus, FailureKind, NewConnection, PushPlan, Pulled, PulledItem,
};
use cal_store::testing::TestDb;
use cal_store::testing::fixture::{PROVIDER, ROLE, at, hold_request, rule};
use cal_store::{cancel_event, confirm_hold, create_hold, load_calendar, put_rule};
use cal_sync::jobs::Sealed;
use cal_sync::{Account, RemoteCalendar, ServiceKind};

fn iv(a: &str, b: &str) -> Interval {
    Interval::new(at(a), at(b)).unwrap()
}

fn sealed(tag: u8) -> Sealed {
    Sealed { ciphertext: vec![tag; 40], nonce: vec![1; 12], wrapped_key: vec![2; 64] }
}

fn cal(id: &str, primary: bool, writable: bool) -> RemoteCalendar {
    RemoteCalendar { id: id.into(), name: format!("cal {id}"), primary, writable, time_zone: None }
}

async fn connect(db: &mut TestDb, user: &str) -> String {
    let account = Account { subject: "acct-1".into(), display: "ana@example.com".into() };
    let calendars = [cal("primary", true, true), cal("holidays", false, false)];
    let id = sync::new_connection_id();
    let new = NewConnection {
        user_id: user,
        service: ServiceKind::Google,
        account: &account,
        token: &sealed(7),
        connection_id: &id,
        scopes: Some("calendar.events"),
        calendars: &calendars,
    };
    sync::save_connection(&mut db.client, &new).await.unwrap()
}

fn item(id: &str, busy: Option<Interval>) -> PulledItem {
    PulledItem { item_id: id.into(), busy, ours: None }
}

fn pulled(from: Option<&str>, token: &str, full: bool, items: Vec<PulledItem>) -> Pulled {
    Pulled { started_from: from.map(Into::into), items, token: token.into(), full }
}

async fn external(db: &TestDb, user: &str) -> Vec<Interval> {
    let mut busy = load_calendar(&db.client, user, ROLE, at("2030-03-01T00:00:00Z"), at("2030-04-01T00:00:00Z"), None)
        .await
        .unwrap()
        .external_busy;
    busy.sort();
    busy
}

#[tokio::test]
async fn a_connection_is_saved_once_per_account_and_its_primary_calendar_blocks() {
    let mut db = TestDb::new().await;
    let id = connect(&mut db, PROVIDER).await;
    // The same account again: same connection, new token, back to connected.
    sync::record_pull_failure(&mut db.client, &id, None, FailureKind::Reauth, "invalid_grant", at("2030-03-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(sync::list_connections(&db.client, PROVIDER).await.unwrap()[0].status, ConnectionStatus::NeedsReauth);
    assert_eq!(connect(&mut db, PROVIDER).await, id);
    let list = sync::list_connections(&db.client, PROVIDER).await.unwrap();
    assert_eq!(list.len(), 1);
    let c = &list[0];
    assert_eq!((c.status, c.account.as_str(), c.service), (ConnectionStatus::Connected, "ana@example.com", ServiceKind::Google));
    let primary = c.calendars.iter().find(|k| k.calendar_id == "primary").unwrap();
    let holidays = c.calendars.iter().find(|k| k.calendar_id == "holidays").unwrap();
    assert!(primary.blocks && !primary.receives_bookings && primary.writable);
    assert!(!holidays.blocks && !holidays.writable);
    // The token is stored sealed, as given, and comes back to the worker.
    assert_eq!(sync::grant(&db.client, &id).await.unwrap().token, sealed(7));
    // Nobody else sees it.
    assert!(sync::list_connections(&db.client, "prov-cara").await.unwrap().is_empty());
    assert_eq!(db.count("select count(*) from cal.outbox where event_type = 'cal.sync.connected'").await, 2);
}

#[tokio::test]
async fn an_oauth_nonce_is_used_once() {
    let db = TestDb::new().await;
    assert!(sync::use_oauth_nonce(&db.client, "n-1").await.unwrap());
    assert!(!sync::use_oauth_nonce(&db.client, "n-1").await.unwrap());
}

#[tokio::test]
async fn only_a_writable_calendar_receives_bookings_and_only_one_does() {
    let mut db = TestDb::new().await;
    let id = connect(&mut db, PROVIDER).await;
    let use_ = |blocks, receives_bookings| CalendarUse { blocks, receives_bookings };
    let refused = sync::set_calendar_use(&mut db.client, PROVIDER, &id, "holidays", use_(true, true)).await.unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");
    sync::set_calendar_use(&mut db.client, PROVIDER, &id, "primary", use_(true, true)).await.unwrap();
    let other = connect_other_account(&mut db).await;
    sync::set_calendar_use(&mut db.client, PROVIDER, &other, "primary", use_(false, true)).await.unwrap();
    assert_eq!(db.count("select count(*) from cal.sync_calendar where receives_bookings").await, 1);
    // Another provider cannot touch it.
    let e = sync::set_calendar_use(&mut db.client, "prov-cara", &id, "primary", use_(false, false)).await.unwrap_err();
    assert!(matches!(e, cal_store::StoreError::NotFound { .. }), "{e:?}");
}

async fn connect_other_account(db: &mut TestDb) -> String {
    let account = Account { subject: "acct-2".into(), display: "ana@work.example".into() };
    let calendars = [cal("primary", true, true)];
    let id = sync::new_connection_id();
    let new = NewConnection {
        user_id: PROVIDER,
        service: ServiceKind::Microsoft,
        account: &account,
        token: &sealed(9),
        connection_id: &id,
        scopes: None,
        calendars: &calendars,
    };
    sync::save_connection(&mut db.client, &new).await.unwrap()
}

#[tokio::test]
async fn synced_busy_time_blocks_slots_bumps_the_version_and_survives_a_failed_sync() {
    let mut db = TestDb::new().await;
    let id = connect(&mut db, PROVIDER).await;
    let v0 = outbox::version(&db.client, PROVIDER).await.unwrap();
    let next = at("2030-03-01T00:15:00Z");
    let full = pulled(
        None,
        "t1",
        true,
        vec![
            item("a", Some(iv("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z"))),
            item("b", Some(iv("2030-03-05T09:00:00Z", "2030-03-05T10:00:00Z"))),
            item("free", None),
        ],
    );
    let applied = sync::apply_pull(&mut db.client, &id, "primary", &full, next).await.unwrap();
    assert!(applied.applied && applied.changed == 2 && applied.restore.is_empty(), "{applied:?}");
    assert!(outbox::version(&db.client, PROVIDER).await.unwrap() > v0);
    assert_eq!(
        external(&db, PROVIDER).await,
        vec![iv("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z"), iv("2030-03-05T09:00:00Z", "2030-03-05T10:00:00Z")]
    );

    // An increment moves one and frees the other.
    let inc = pulled(Some("t1"), "t2", false, vec![item("a", Some(iv("2030-03-04T11:00:00Z", "2030-03-04T12:00:00Z"))), item("b", None)]);
    assert_eq!(sync::apply_pull(&mut db.client, &id, "primary", &inc, next).await.unwrap().changed, 2);
    assert_eq!(external(&db, PROVIDER).await, vec![iv("2030-03-04T11:00:00Z", "2030-03-04T12:00:00Z")]);

    // A read that started from the old token lost the race: dropped.
    let stale = pulled(Some("t1"), "t2b", false, vec![item("a", None)]);
    assert!(!sync::apply_pull(&mut db.client, &id, "primary", &stale, next).await.unwrap().applied);
    assert_eq!(external(&db, PROVIDER).await.len(), 1);

    // An unchanged increment changes nothing and keeps the version.
    let v = outbox::version(&db.client, PROVIDER).await.unwrap();
    let same = pulled(Some("t2"), "t3", false, vec![item("a", Some(iv("2030-03-04T11:00:00Z", "2030-03-04T12:00:00Z")))]);
    assert_eq!(sync::apply_pull(&mut db.client, &id, "primary", &same, next).await.unwrap().changed, 0);
    assert_eq!(outbox::version(&db.client, PROVIDER).await.unwrap(), v);

    // A failure keeps the busy time and says why.
    sync::record_pull_failure(&mut db.client, &id, Some("primary"), FailureKind::Reauth, "token revoked", next).await.unwrap();
    assert_eq!(external(&db, PROVIDER).await.len(), 1);
    let c = &sync::list_connections(&db.client, PROVIDER).await.unwrap()[0];
    assert_eq!((c.status, c.last_error.as_deref()), (ConnectionStatus::NeedsReauth, Some("token revoked")));
    // Reported once, not at every retry.
    sync::record_pull_failure(&mut db.client, &id, Some("primary"), FailureKind::Reauth, "token revoked", next).await.unwrap();
    assert_eq!(db.count("select count(*) from cal.outbox where event_type = 'cal.sync.reauth_required'").await, 1);

    // A full read replaces everything; disconnecting removes it all.
    let full2 = pulled(Some("t3"), "t4", true, vec![item("c", Some(iv("2030-03-06T09:00:00Z", "2030-03-06T10:00:00Z")))]);
    sync::apply_pull(&mut db.client, &id, "primary", &full2, next).await.unwrap();
    assert_eq!(external(&db, PROVIDER).await, vec![iv("2030-03-06T09:00:00Z", "2030-03-06T10:00:00Z")]);
    assert_eq!(sync::list_connections(&db.client, PROVIDER).await.unwrap()[0].status, ConnectionStatus::Connected);
    let gone = sync::disconnect(&mut db.client, PROVIDER, &id).await.unwrap();
    assert_eq!(gone.token, sealed(7));
    assert!(external(&db, PROVIDER).await.is_empty());
    assert_eq!(db.count("select count(*) from cal.sync_calendar").await, 0);
}

#[tokio::test]
async fn a_booking_is_pushed_once_per_sequence_never_counted_as_busy_and_restored_when_changed_remotely() {
    let (mut db, id, event) = booked().await;
    let now = at("2030-03-01T00:00:00Z");
    assert_eq!(sync::future_bookings(&db.client, PROVIDER, now, 10).await.unwrap(), vec![event.event_id.clone()]);

    let PushPlan::Put { item_id: None, sequence: 0, event: out, .. } = sync::push_plan(&db.client, &event.event_id).await.unwrap()
    else {
        panic!("a new booking is created")
    };
    assert_eq!((out.start, out.end), (at("2030-03-04T09:00:00Z"), at("2030-03-04T10:00:00Z")));
    sync::record_push(&db.client, &event.event_id, &id, "primary", Some("item-1"), 0, false).await.unwrap();
    assert_eq!(sync::push_plan(&db.client, &event.event_id).await.unwrap(), PushPlan::Nothing, "written once");

    // Reading our own item back never makes it external busy.
    let ours = PulledItem { item_id: "item-1".into(), busy: Some(iv("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z")), ours: None };
    let next = at("2030-03-01T00:15:00Z");
    let a = sync::apply_pull(&mut db.client, &id, "primary", &pulled(None, "t1", true, vec![ours]), next).await.unwrap();
    assert!(a.restore.is_empty() && a.changed == 0, "{a:?}");
    // An item carrying our property that we never recorded is not busy either.
    let tagged = PulledItem { item_id: "item-x".into(), busy: Some(iv("2030-03-05T09:00:00Z", "2030-03-05T10:00:00Z")), ours: Some("ev_other".into()) };
    sync::apply_pull(&mut db.client, &id, "primary", &pulled(Some("t1"), "t2", false, vec![tagged]), next).await.unwrap();
    assert!(external(&db, PROVIDER).await.is_empty());

    // Someone moves it in their calendar: the booking stands, the write is due again.
    let moved = PulledItem { item_id: "item-1".into(), busy: Some(iv("2030-03-04T15:00:00Z", "2030-03-04T16:00:00Z")), ours: None };
    let a = sync::apply_pull(&mut db.client, &id, "primary", &pulled(Some("t2"), "t3", false, vec![moved]), next).await.unwrap();
    assert_eq!(a.restore, vec![event.event_id.clone()]);
    assert!(external(&db, PROVIDER).await.is_empty());
    assert!(matches!(sync::push_plan(&db.client, &event.event_id).await.unwrap(), PushPlan::Put { item_id: Some(ref i), .. } if i == "item-1"));
    assert_eq!(db.count("select count(*) from cal.outbox where event_type = 'cal.sync.remote_change_ignored'").await, 1);
    sync::record_push(&db.client, &event.event_id, &id, "primary", Some("item-1"), 0, false).await.unwrap();

    // A full read that no longer lists it: deleted remotely, restored.
    let a = sync::apply_pull(&mut db.client, &id, "primary", &pulled(Some("t3"), "t4", true, vec![]), next).await.unwrap();
    assert_eq!(a.restore, vec![event.event_id.clone()]);
    sync::record_push(&db.client, &event.event_id, &id, "primary", Some("item-1"), 0, false).await.unwrap();

    // Cancelled: the item is removed, once.
    cancel_event(&mut db.client, &event.event_id, now).await.unwrap();
    let PushPlan::Delete { item_id: Some(item), sequence, .. } = sync::push_plan(&db.client, &event.event_id).await.unwrap() else {
        panic!("a cancelled booking is removed")
    };
    sync::record_push(&db.client, &event.event_id, &id, "primary", Some(&item), sequence, true).await.unwrap();
    assert_eq!(sync::push_plan(&db.client, &event.event_id).await.unwrap(), PushPlan::Nothing);
    // Its removal remotely is no longer a change to report.
    let a = sync::apply_pull(&mut db.client, &id, "primary", &pulled(Some("t4"), "t5", false, vec![item_rm("item-1")]), next).await.unwrap();
    assert!(a.restore.is_empty());
}

/// A provider with a connected booking calendar and one confirmed booking
/// (Monday 2030-03-04 09:00–10:00Z): the database, the connection, the event.
async fn booked() -> (TestDb, String, cal_store::EventRecord) {
    let mut db = TestDb::new().await;
    put_rule(&mut db.client, &rule("wr_1", PROVIDER, 127, "08:00", "18:00")).await.unwrap();
    let id = connect(&mut db, PROVIDER).await;
    sync::set_calendar_use(&mut db.client, PROVIDER, &id, "primary", CalendarUse { blocks: true, receives_bookings: true })
        .await
        .unwrap();
    let now = at("2030-03-01T00:00:00Z");
    let req = hold_request("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", HoldKind::Checkout, HoldMode::Instant, None, "k1");
    let hold = create_hold(&db.client, &req, now).await.unwrap();
    let event = confirm_hold(&mut db.client, &hold.hold_id, now).await.unwrap();
    (db, id, event)
}

fn item_rm(id: &str) -> PulledItem {
    PulledItem { item_id: id.into(), busy: None, ours: None }
}

#[tokio::test]
async fn a_push_that_fails_for_good_is_parked_and_counted() {
    let (db, id, event) = booked().await;
    sync::record_push_failure(&db.client, &event.event_id, &id, "primary", "500 backend", false).await.unwrap();
    assert_eq!(sync::parked_push_count(&db.client).await.unwrap(), 0);
    sync::record_push_failure(&db.client, &event.event_id, &id, "primary", "400 invalid", true).await.unwrap();
    assert_eq!(sync::parked_push_count(&db.client).await.unwrap(), 1);
    assert_eq!(db.count("select attempts::int8 from cal.sync_write").await, 2);
    // A later success clears it.
    sync::record_push(&db.client, &event.event_id, &id, "primary", Some("i"), 0, false).await.unwrap();
    assert_eq!(sync::parked_push_count(&db.client).await.unwrap(), 0);
}
