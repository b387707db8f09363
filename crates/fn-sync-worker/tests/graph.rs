//! Two-way sync with Microsoft 365 end to end (SEMANTICS.md §11), through
//! the rig two_way.rs uses for Google: connect through the OAuth callback,
//! a subscription made by the worker after Graph's validation handshake
//! (answered by our receiver over HTTP), changes in the fake calendar
//! notified to the receiver, queued, pulled, and seen as busy time; a
//! booking written into the default calendar, moved and removed, and put
//! back when changed remotely; the lifecycle notifications; a forgotten
//! sync state; a withdrawn consent; forged notifications.

use cal_core::holds::HoldKind;
use cal_core::time::{Instant, Interval};
use cal_store::sync::{self, CalendarUse, ConnectionStatus};
use cal_store::testing::fixture::PROVIDER;
use cal_store::{cancel_event, create_hold, reschedule_event};
use cal_sync::ServiceKind;
use cal_sync::jobs::{NotifyEvent, SyncJob};
use cal_sync::microsoft::{EVENT_ID_PROPERTY, transaction_id};
use cal_sync::oauth::secret_hash;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use fn_sync_worker::testing::{Rig, hold_request, monday, span, zone};
use serde_json::json;
use sync_fakes::FakeRequest;
use sync_fakes::microsoft::{FakeEvent, NewEvent, Range, Recurrence};

/// A timed event over `iv` (the fake keeps UTC wall-clock times).
fn timed(iv: Interval) -> NewEvent {
    NewEvent::timed(&iv.start().rfc3339(), &iv.end().rfc3339())
}

fn wall(t: Instant) -> NaiveDateTime {
    t.to_chrono().naive_utc()
}

/// A rig with Microsoft connected (the first subscription and pull run):
/// the rig, the Monday it books on, the default calendar, the connection.
async fn graph_rig() -> (Rig, NaiveDate, String, String) {
    let rig = Rig::new().await;
    let id = rig.connect(ServiceKind::Microsoft).await;
    rig.settle().await;
    let (day, cal) = (monday(rig.clock.now()), rig.graph.default_calendar());
    (rig, day, cal, id)
}

/// The delta reads Graph served so far.
fn delta_reads(rig: &Rig) -> Vec<FakeRequest> {
    rig.graph.requests().into_iter().filter(|r| r.method == "GET" && r.path.ends_with("/calendarView/delta")).collect()
}

/// A read from nothing (a window), not from a delta link.
fn is_full(read: &FakeRequest) -> bool {
    read.param("startDateTime").is_some()
}

/// Our items for `event_id` in the default calendar.
fn ours(rig: &Rig, event_id: &str) -> Vec<FakeEvent> {
    let cal = rig.graph.default_calendar();
    rig.graph.events(&cal).into_iter().filter(|e| e.extended.get(EVENT_ID_PROPERTY).is_some_and(|v| v == event_id)).collect()
}

/// The stored subscription id and secret hash of the default calendar.
async fn stored_watch(rig: &Rig) -> (String, Vec<u8>) {
    let row = rig
        .db
        .client
        .query_one("select watch_id, watch_secret_hash from cal.sync_calendar where calendar_id = $1", &[&rig.graph.default_calendar()])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn outbox_count(rig: &Rig, event_type: &str) -> i64 {
    rig.db.client.query_one("select count(*) from cal.outbox where event_type = $1", &[&event_type]).await.unwrap().get(0)
}

#[tokio::test]
async fn connecting_subscribes_after_our_receiver_answers_the_handshake() {
    let (rig, _, _, id) = graph_rig().await;
    let c = &sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0];
    assert_eq!((c.connection_id.as_str(), c.status, c.account.as_str()), (id.as_str(), ConnectionStatus::Connected, "ana@contoso.example"));
    let cal = &c.calendars[0];
    assert_eq!(cal.calendar_id, rig.graph.default_calendar());
    assert!(cal.blocks && cal.watch_expires_at.is_some(), "{c:?}");

    let receiver = format!("{}/", rig.graph_receiver.base_url());
    let subs = rig.graph.subscriptions();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0].resource, format!("me/calendars/{}/events", cal.calendar_id));
    assert_eq!((subs[0].notification_url.as_str(), subs[0].lifecycle_url.as_deref()), (receiver.as_str(), Some(receiver.as_str())));
    // Graph validated both URLs; our receiver echoed the decoded token as
    // text/plain, over HTTP, before the subscription existed.
    let handshakes = rig.graph.handshakes();
    assert_eq!(handshakes.len(), 2, "{handshakes:?}");
    assert!(handshakes.iter().all(|h| h.url == receiver && h.echoed()), "{handshakes:?}");
    assert!(handshakes[0].token.contains(' ') && handshakes[0].token.contains('+'), "a token that needs decoding");
    let seen = rig.graph_receiver.requests().iter().filter(|r| r.param("validationToken").is_some()).count();
    assert_eq!(seen, 2);
    // Only the hash of the clientState is stored, under the subscription's id.
    let (watch_id, hash) = stored_watch(&rig).await;
    assert_eq!(watch_id, subs[0].id);
    assert_eq!(hash, secret_hash(subs[0].client_state.as_deref().unwrap()));
    // The first read was a full one over the booking horizon.
    assert!(delta_reads(&rig).first().is_some_and(is_full));
}

#[tokio::test]
async fn remote_changes_are_notified_and_become_busy_time_as_section_11_says() {
    let (rig, day, cal, _) = graph_rig().await;

    // Added: Graph POSTs the change to our receiver (202), which queues it.
    let a = rig.graph.add_event(&cal, timed(span(day, 10, 11)));
    let delivered = rig.graph.deliver_notifications().await;
    assert_eq!(delivered.iter().map(|d| d.status).collect::<Vec<_>>(), [Some(202)]);
    let jobs = rig.queue.drain();
    assert!(matches!(jobs[..], [SyncJob::Notify { event: NotifyEvent::Changed, .. }]), "{jobs:?}");
    jobs.into_iter().for_each(|j| rig.queue.push(j));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, [span(day, 10, 11)]);
    assert!(!rig.slot_starts(day).await.contains(&span(day, 10, 11).start()));

    // Moved, then deleted.
    let moved = span(day, 12, 13);
    rig.graph.update_event(&a, |e| (e.start, e.end) = (wall(moved.start()), wall(moved.end())));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, [moved]);
    assert!(rig.slot_starts(day).await.contains(&span(day, 10, 11).start()));
    rig.graph.delete_event(&a);
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, []);

    // A daily series of five (07:00–07:30 local on Monday; the fake repeats
    // it in UTC): one occurrence moved, one cancelled.
    let first = Interval::new(zone().point(day.and_hms_opt(7, 0, 0).unwrap()), zone().point(day.and_hms_opt(7, 30, 0).unwrap())).unwrap();
    let nth = |i: i64| Interval::new(first.start().plus_secs(i * 86_400), first.end().plus_secs(i * 86_400)).unwrap();
    let original = |i: i64| wall(nth(i).start()).date();
    let series = rig.graph.add_event(&cal, timed(first).repeating(Recurrence::Daily { interval: 1, range: Range::Count(5) }));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, (0..5).map(nth).collect::<Vec<_>>());
    let tuesday = day + Duration::days(1);
    let early =
        Interval::new(zone().point(tuesday.and_hms_opt(6, 15, 0).unwrap()), zone().point(tuesday.and_hms_opt(6, 45, 0).unwrap())).unwrap();
    rig.graph.move_occurrence(&series, original(1), &early.start().rfc3339(), &early.end().rfc3339());
    rig.graph.cancel_occurrence(&series, original(3));
    rig.settle().await;
    let mut want = vec![nth(0), early, nth(2), nth(4)];
    want.sort();
    assert_eq!(rig.synced_busy().await, want);

    // All-day: the whole local day in the provider's zone, not the UTC day.
    let wednesday = day + Duration::days(2);
    let off = rig.graph.add_event(&cal, NewEvent::all_day(wednesday, wednesday + Duration::days(1)).subject("off"));
    rig.settle().await;
    let whole_day = zone().day(wednesday).unwrap();
    assert_ne!(whole_day.start(), Instant::parse(&format!("{wednesday}T00:00:00Z")).unwrap(), "Berlin is not UTC");
    want.push(whole_day);
    want.sort();
    assert_eq!(rig.synced_busy().await, want);
    rig.graph.delete_event(&off);

    // Free, declined and cancelled block nothing; a busy event that becomes
    // free or cancelled stops blocking.
    let thursday = day + Duration::days(3);
    rig.graph.add_event(&cal, timed(span(thursday, 9, 10)).show_as("free"));
    rig.graph.add_event(&cal, timed(span(thursday, 10, 11)).response("declined"));
    rig.graph.add_event(&cal, timed(span(thursday, 11, 12)).cancelled());
    let b = rig.graph.add_event(&cal, timed(span(thursday, 13, 14)));
    let c = rig.graph.add_event(&cal, timed(span(thursday, 15, 16)).show_as("tentative"));
    rig.settle().await;
    want.retain(|iv| *iv != whole_day);
    let mut with_thursday = want.clone();
    with_thursday.extend([span(thursday, 13, 14), span(thursday, 15, 16)]);
    with_thursday.sort();
    assert_eq!(rig.synced_busy().await, with_thursday);
    rig.graph.update_event(&b, |e| e.show_as = "free".into());
    rig.graph.update_event(&c, |e| e.is_cancelled = true);
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, want);
}

#[tokio::test]
async fn a_booking_lives_in_the_default_calendar_once_and_is_never_busy_read_back() {
    let (mut rig, day, cal, id) = graph_rig().await;
    sync::set_calendar_use(&mut rig.db.client, PROVIDER, &id, &cal, CalendarUse { blocks: true, receives_bookings: true }).await.unwrap();
    rig.settle().await;

    // The create is made but its answer lost; the retry repeats the
    // transactionId and Graph answers with that event. The push is
    // delivered twice as well.
    rig.graph.lose_next_create();
    let event = rig.book(span(day, 14, 15), "k1").await;
    rig.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
    rig.settle().await;
    let written = ours(&rig, &event.event_id);
    assert_eq!(written.len(), 1, "{written:#?}");
    let item = &written[0];
    assert_eq!((item.start, item.end), (wall(span(day, 14, 15).start()), wall(span(day, 14, 15).end())));
    assert_eq!(item.transaction_id.as_deref(), Some(transaction_id(&event.event_id).as_str()));
    assert_eq!(item.show_as, "busy");
    assert_eq!(rig.graph.events(&cal).len(), 1, "nothing else was made");
    // Graph notified the create and the worker read it back: ours, not busy.
    assert!(delta_reads(&rig).len() >= 2);
    assert_eq!(rig.synced_busy().await, []);

    // Rescheduled: the same item moves.
    let now = rig.clock.now();
    let hold = create_hold(&rig.db.client, &hold_request(HoldKind::Reschedule, span(day, 16, 17), Some(&event.event_id), "k2"), now)
        .await
        .unwrap();
    reschedule_event(&mut rig.db.client, &event.event_id, &hold.hold_id, now).await.unwrap();
    rig.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
    rig.settle().await;
    let moved = ours(&rig, &event.event_id);
    assert_eq!(moved.len(), 1);
    assert_eq!((moved[0].id.as_str(), moved[0].start), (item.id.as_str(), wall(span(day, 16, 17).start())));
    assert_eq!(rig.synced_busy().await, []);

    // Cancelled: removed.
    cancel_event(&mut rig.db.client, &event.event_id, now).await.unwrap();
    rig.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
    rig.settle().await;
    assert!(rig.graph.events(&cal).is_empty());
    assert_eq!(rig.synced_busy().await, []);
    assert_eq!(outbox_count(&rig, sync::SYNC_REMOTE_CHANGE_IGNORED).await, 0);
}

#[tokio::test]
async fn our_item_deleted_or_moved_in_outlook_is_put_back() {
    let (mut rig, day, cal, id) = graph_rig().await;
    sync::set_calendar_use(&mut rig.db.client, PROVIDER, &id, &cal, CalendarUse { blocks: true, receives_bookings: true }).await.unwrap();
    let event = rig.book(span(day, 11, 12), "k1").await;
    rig.settle().await;
    let first = ours(&rig, &event.event_id).remove(0);

    // Deleted in Outlook: the notification's pull sees it gone and the
    // worker writes it again (a new item: the old one is gone).
    rig.graph.delete_event(&first.id);
    rig.settle().await;
    let back = ours(&rig, &event.event_id);
    assert_eq!(back.len(), 1, "{back:#?}");
    assert_ne!(back[0].id, first.id);
    assert_eq!(back[0].start, wall(span(day, 11, 12).start()));
    assert_eq!(outbox_count(&rig, sync::SYNC_REMOTE_CHANGE_IGNORED).await, 1);

    // Moved in Outlook: moved back, the same item.
    let elsewhere = span(day, 15, 16);
    rig.graph.update_event(&back[0].id, |e| (e.start, e.end) = (wall(elsewhere.start()), wall(elsewhere.end())));
    rig.settle().await;
    let again = ours(&rig, &event.event_id);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id.as_str(), again[0].start), (back[0].id.as_str(), wall(span(day, 11, 12).start())));
    assert_eq!(outbox_count(&rig, sync::SYNC_REMOTE_CHANGE_IGNORED).await, 2);
    assert_eq!(rig.synced_busy().await, [], "our booking never counts as external busy");
}

#[tokio::test]
async fn lifecycle_notifications_read_in_full_resubscribe_and_reauthorize() {
    let (rig, day, cal, _) = graph_rig().await;
    let sub = rig.graph.subscriptions().remove(0);

    // A change whose notification is lost on our side.
    rig.graph.add_event(&cal, timed(span(day, 9, 10)));
    rig.graph.deliver_notifications().await;
    rig.queue.drain();
    assert_eq!(rig.synced_busy().await, []);
    // `missed`: the calendar is read in full, and the change is there.
    let before = delta_reads(&rig).len();
    let sent = rig.graph.send_lifecycle(&sub.id, "missed").await.unwrap();
    assert_eq!(sent.status, Some(202));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, [span(day, 9, 10)]);
    let reads = delta_reads(&rig);
    assert!(reads[before..].iter().any(is_full), "a full read after `missed`");

    // `reauthorizationRequired`: the same subscription, renewed (PATCH)
    // with a fresh access token.
    rig.clock.advance_secs(3_600);
    rig.graph.send_lifecycle(&sub.id, "reauthorizationRequired").await.unwrap();
    rig.settle().await;
    let renewed = rig.graph.subscriptions();
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].id, sub.id);
    assert!(renewed[0].expires > sub.expires, "{} > {}", renewed[0].expires, sub.expires);
    let patch = format!("/v1.0/subscriptions/{}", sub.id);
    assert!(rig.graph.requests().iter().any(|r| r.method == "PATCH" && r.path == patch));
    assert_eq!(stored_watch(&rig).await.0, sub.id);

    // `subscriptionRemoved`: a new subscription (a new handshake, a new
    // secret), and changes are notified through it.
    rig.graph.send_lifecycle(&sub.id, "subscriptionRemoved").await.unwrap();
    rig.settle().await;
    let subs = rig.graph.subscriptions();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_ne!(subs[0].id, sub.id);
    assert_ne!(subs[0].client_state, sub.client_state);
    let handshakes = rig.graph.handshakes();
    assert_eq!(handshakes.len(), 4);
    assert!(handshakes.iter().all(|h| h.echoed()));
    assert_eq!(stored_watch(&rig).await, (subs[0].id.clone(), secret_hash(subs[0].client_state.as_deref().unwrap())));
    rig.graph.add_event(&cal, timed(span(day, 15, 16)));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, [span(day, 9, 10), span(day, 15, 16)]);
}

#[tokio::test]
async fn a_subscription_is_renewed_before_it_expires() {
    let (rig, ..) = graph_rig().await;
    let sub = rig.graph.subscriptions().remove(0);
    let expires = sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0].calendars[0].watch_expires_at.unwrap();
    // Within a day of expiry: the renewer queues a watch, the worker PATCHes.
    rig.clock.advance_secs(expires.unix() - rig.clock.now().unix() - 3_600);
    rig.renew().await;
    rig.settle().await;
    let after = sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0].calendars[0].watch_expires_at.unwrap();
    assert!(after > expires, "{after} > {expires}");
    let subs = rig.graph.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].id, sub.id);
    assert_eq!(Instant::from_chrono(subs[0].expires).unix(), after.unix());
}

#[tokio::test]
async fn a_forgotten_sync_state_reads_the_calendar_in_full_and_converges() {
    let (rig, day, cal, id) = graph_rig().await;
    let a = rig.graph.add_event(&cal, timed(span(day, 9, 10)));
    rig.settle().await;
    // The delta links go stale (410 syncStateNotFound) while one event is
    // deleted and another added.
    rig.graph.forget_sync_states();
    rig.graph.delete_event(&a);
    rig.graph.add_event(&cal, timed(span(day, 11, 12)));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, [span(day, 11, 12)]);
    // The new delta link works: one incremental read.
    let before = delta_reads(&rig).len();
    rig.worker.run(&SyncJob::Pull { connection_id: id, calendar_id: cal }, 1).await.unwrap();
    let reads = delta_reads(&rig);
    assert_eq!(reads.len(), before + 1);
    assert!(reads[before].param("$deltatoken").is_some());
}

#[tokio::test]
async fn a_withdrawn_consent_needs_reauth_and_keeps_the_last_busy_time() {
    let (rig, day, cal, _) = graph_rig().await;
    rig.graph.add_event(&cal, timed(span(day, 9, 10)));
    rig.settle().await;

    // The user withdraws the consent in their account, then changes the
    // calendar: the notification comes, the pull is refused.
    rig.graph.withdraw_consent();
    rig.graph.add_event(&cal, timed(span(day, 12, 13)));
    rig.settle().await;
    let c = &sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0];
    assert_eq!(c.status, ConnectionStatus::NeedsReauth, "{c:?}");
    let why = c.last_error.as_deref().unwrap_or("");
    assert!(!why.is_empty() && !why.contains("eyJ0eXAi") && !why.contains("M.C5"), "{why}");
    assert_eq!(rig.synced_busy().await, [span(day, 9, 10)]);
    assert_eq!(outbox_count(&rig, sync::SYNC_REAUTH_REQUIRED).await, 1);
    // Later periodic pulls do not call Graph with a refused grant.
    let calls = rig.graph.requests().len();
    rig.clock.advance_secs(rig.worker.settings.periodic_secs + 60);
    rig.renew().await;
    rig.settle().await;
    assert_eq!(rig.graph.requests().len(), calls);
}

#[tokio::test]
async fn a_forged_client_state_changes_nothing() {
    let (rig, day, cal, _) = graph_rig().await;
    rig.graph.add_event(&cal, timed(span(day, 9, 10)));
    rig.settle().await;
    let sub = rig.graph.subscriptions().remove(0);

    // Someone who knows the receiver URL and the subscription id, not the
    // clientState: a change, a lifecycle event, and one with no clientState.
    let http = reqwest::Client::new();
    let forgeries = [
        json!({"value": [{"subscriptionId": sub.id, "clientState": "guess", "changeType": "created", "resource": "x"}]}),
        json!({"value": [{"subscriptionId": sub.id, "changeType": "deleted", "resource": "x"}]}),
        json!({"value": [{"subscriptionId": sub.id, "clientState": "guess", "lifecycleEvent": "subscriptionRemoved"}]}),
        json!({"value": [{"subscriptionId": sub.id, "clientState": "guess", "lifecycleEvent": "missed"}]}),
    ];
    for body in forgeries {
        let answer = http.post(format!("{}/", rig.graph_receiver.base_url())).body(body.to_string()).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 202);
    }
    let calls = rig.graph.requests().len();
    let version = cal_store::outbox::version(&rig.db.client, PROVIDER).await.unwrap();
    rig.settle().await;
    assert_eq!(rig.graph.requests().len(), calls, "no call to Graph for a forgery");
    assert_eq!(cal_store::outbox::version(&rig.db.client, PROVIDER).await.unwrap(), version);
    assert_eq!(rig.synced_busy().await, [span(day, 9, 10)]);
    assert_eq!(rig.graph.subscriptions()[0].id, sub.id);
    assert_eq!(stored_watch(&rig).await.0, sub.id);
}

#[tokio::test]
async fn an_event_beyond_the_first_reads_window_is_seen_once_the_booking_window_reaches_it() {
    let (rig, _, cal, _) = graph_rig().await;
    // A delta link keeps the window of the read that started it (now to
    // now + 60 days, the booking window, at connect time). A month later
    // the booking window reaches 30 days past that window's end.
    rig.clock.advance_secs(30 * 86_400);
    let late = span(monday(rig.clock.now()) + Duration::days(42), 10, 11);
    assert!(late.start() < rig.clock.now().plus_secs(60 * 86_400));
    rig.graph.add_event(&cal, timed(late));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, [late]);
}
