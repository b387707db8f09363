//! Two-way sync end to end (SEMANTICS.md §11): connect through the OAuth
//! callback, a watch set up through the worker, a change in the fake
//! calendar notified to the receiver over HTTP, queued, pulled, and seen by
//! `bookableSlots`; a booking written into the fake calendar, moved and
//! removed; and the failure cases: a revoked grant, `410 Gone`, renewal
//! before expiry, a forged notification.

use cal_core::holds::HoldKind;
use cal_core::time::{Instant, Interval};
use cal_store::sync::{self, ConnectionStatus};
use cal_store::testing::fixture::PROVIDER;
use cal_store::{cancel_event, create_hold, reschedule_event};
use cal_sync::ServiceKind;
use cal_sync::google::EVENT_ID_PROPERTY;
use cal_sync::jobs::SyncJob;
use fn_sync_worker::testing::{Rig, hold_request as request, monday, span};
use serde_json::{Value, json};
use sync_fakes::google::ACCOUNT;

fn google_event(iv: Interval) -> Value {
    json!({"summary": "dentist", "start": {"dateTime": iv.start().rfc3339()}, "end": {"dateTime": iv.end().rfc3339()}})
}

fn ours(rig: &Rig, event_id: &str) -> Vec<Value> {
    rig.google.visible_with_property(ACCOUNT, EVENT_ID_PROPERTY, event_id)
}

fn starts_at(item: &Value) -> Instant {
    Instant::parse(item["start"]["dateTime"].as_str().unwrap()).unwrap()
}

/// Connects Google and lets the first watch and pull run.
async fn connected(rig: &Rig) -> String {
    let id = rig.connect(ServiceKind::Google).await;
    rig.settle().await;
    id
}

#[tokio::test]
async fn a_google_change_blocks_a_slot_and_a_booking_lives_in_the_google_calendar() {
    let mut rig = Rig::new().await;
    let day = monday(rig.clock.now());
    let id = connected(&rig).await;
    let c = &sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0];
    assert_eq!((c.connection_id.as_str(), c.status, c.account.as_str()), (id.as_str(), ConnectionStatus::Connected, ACCOUNT));
    assert!(c.calendars[0].blocks && c.calendars[0].watch_expires_at.is_some(), "{c:?}");
    assert_eq!(rig.google.channels().len(), 1, "one channel for the blocking calendar");
    assert!(rig.slot_starts(day).await.contains(&span(day, 10, 11).start()));

    // The provider adds an appointment in Google Calendar: the fake notifies
    // the receiver, the worker pulls, and the slot is gone.
    rig.google.create(ACCOUNT, google_event(span(day, 10, 11)));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, vec![span(day, 10, 11)]);
    assert!(!rig.slot_starts(day).await.contains(&span(day, 10, 11).start()));

    // A booking lands in the Google calendar once, even pushed twice.
    sync::set_calendar_use(&mut rig.db.client, PROVIDER, &id, ACCOUNT, sync::CalendarUse { blocks: true, receives_bookings: true })
        .await
        .unwrap();
    let event = rig.book(span(day, 14, 15), "k1").await;
    rig.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
    rig.settle().await;
    let written = ours(&rig, &event.event_id);
    assert_eq!(written.len(), 1, "{written:#?}");
    assert_eq!(starts_at(&written[0]), span(day, 14, 15).start());
    // Read back, it is not external busy: only the dentist is.
    assert_eq!(rig.synced_busy().await, vec![span(day, 10, 11)]);

    // Rescheduled: the same item moves. Cancelled: it goes.
    let now = rig.clock.now();
    let hold = create_hold(&rig.db.client, &request(HoldKind::Reschedule, span(day, 16, 17), Some(&event.event_id), "k2"), now).await.unwrap();
    reschedule_event(&mut rig.db.client, &event.event_id, &hold.hold_id, now).await.unwrap();
    rig.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
    rig.settle().await;
    let written = ours(&rig, &event.event_id);
    assert_eq!(written.len(), 1);
    assert_eq!(starts_at(&written[0]), span(day, 16, 17).start());
    cancel_event(&mut rig.db.client, &event.event_id, now).await.unwrap();
    rig.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
    rig.settle().await;
    assert!(ours(&rig, &event.event_id).is_empty());
    assert_eq!(rig.synced_busy().await, vec![span(day, 10, 11)]);
}

#[tokio::test]
async fn a_revoked_grant_needs_reauth_and_keeps_the_last_busy_time() {
    let rig = Rig::new().await;
    let day = monday(rig.clock.now());
    let id = connected(&rig).await;
    rig.google.create(ACCOUNT, google_event(span(day, 9, 10)));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, vec![span(day, 9, 10)]);

    // The user removes our access in their Google account, then changes
    // their calendar: the pull fails, the busy time stays, the status says why.
    rig.google.revoke_all();
    rig.google.create(ACCOUNT, google_event(span(day, 12, 13)));
    rig.clock.advance_secs(3_600); // past the cached access token
    rig.settle().await;
    rig.worker.run(&SyncJob::Pull { connection_id: id.clone(), calendar_id: ACCOUNT.into() }, 1).await.unwrap();
    let c = &sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0];
    assert_eq!(c.status, ConnectionStatus::NeedsReauth, "{c:?}");
    assert!(c.last_error.as_deref().is_some_and(|e| !e.contains("ya29") && !e.is_empty()), "{c:?}");
    assert_eq!(rig.synced_busy().await, vec![span(day, 9, 10)]);
    let reauth = rig.db.count("select count(*) from cal.outbox where event_type = 'cal.sync.reauth_required'").await;
    assert_eq!(reauth, 1);
    // Connecting again mends it and catches up.
    rig.connect(ServiceKind::Google).await;
    rig.settle().await;
    assert_eq!(sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0].status, ConnectionStatus::Connected);
    assert_eq!(rig.synced_busy().await, vec![span(day, 9, 10), span(day, 12, 13)]);
}

#[tokio::test]
async fn a_gone_sync_token_reads_the_calendar_in_full_and_converges() {
    let rig = Rig::new().await;
    let day = monday(rig.clock.now());
    let id = connected(&rig).await;
    let a = rig.google.create(ACCOUNT, google_event(span(day, 9, 10)));
    rig.settle().await;
    // The token goes stale while an event is deleted and another added.
    rig.google.invalidate_sync_tokens(ACCOUNT);
    rig.google.delete(ACCOUNT, &a);
    rig.google.create(ACCOUNT, google_event(span(day, 11, 12)));
    rig.settle().await;
    assert_eq!(rig.synced_busy().await, vec![span(day, 11, 12)]);
    let lists = |rig: &Rig| rig.google.requests().iter().filter(|r| r.path.ends_with("/events") && r.method == "GET").count();
    let before = lists(&rig);
    rig.worker.run(&SyncJob::Pull { connection_id: id, calendar_id: ACCOUNT.into() }, 1).await.unwrap();
    assert_eq!(lists(&rig), before + 1, "the new token works: one incremental read");
}

#[tokio::test]
async fn a_watch_is_renewed_before_it_expires_and_the_old_channel_stopped() {
    let rig = Rig::new().await;
    connected(&rig).await;
    let first = rig.google.channels();
    assert_eq!(first.len(), 1);
    // Nothing is due while the watch has days left.
    let expires = sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0].calendars[0].watch_expires_at.unwrap();
    rig.clock.advance_secs(3 * 86_400);
    let renewed = rig.renew().await;
    assert_eq!(renewed, 1, "only the periodic pull is due");
    assert!(matches!(rig.queue.drain()[..], [SyncJob::Pull { .. }]));
    // Within a day of expiry: the renewer queues a watch, the worker renews.
    rig.clock.advance_secs(expires.unix() - rig.clock.now().unix() - 3_600);
    rig.renew().await;
    rig.settle().await;
    let after = sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0].calendars[0].watch_expires_at.unwrap();
    assert!(after > expires, "{after} > {expires}");
    let channels = rig.google.channels();
    let live: Vec<_> = channels.iter().filter(|c| !c.stopped).collect();
    assert_eq!(live.len(), 1, "the old channel is stopped: {channels:?}");
    assert_ne!(live[0].id, first[0].id);
    assert!(channels.iter().any(|c| c.id == first[0].id && c.stopped));
}

#[tokio::test]
async fn a_forged_notification_changes_nothing() {
    let rig = Rig::new().await;
    let day = monday(rig.clock.now());
    connected(&rig).await;
    rig.google.create(ACCOUNT, google_event(span(day, 9, 10)));
    rig.settle().await;
    let channel_id = sync::list_connections(&rig.db.client, PROVIDER).await.unwrap()[0].connection_id.clone();
    let row = rig.db.client.query_one("select watch_id, watch_resource_id from cal.sync_calendar", &[]).await.unwrap();
    let (watch_id, resource_id): (String, String) = (row.get(0), row.get(1));
    assert!(!channel_id.is_empty());
    // Someone who knows the receiver URL and even the channel id, but not its token.
    let http = reqwest::Client::new();
    for token in ["guess", ""] {
        let answer = http
            .post(format!("{}/", rig.google_receiver.base_url()))
            .header("X-Goog-Channel-ID", &watch_id)
            .header("X-Goog-Channel-Token", token)
            .header("X-Goog-Resource-ID", &resource_id)
            .header("X-Goog-Resource-State", "exists")
            .header("X-Goog-Message-Number", "99")
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }
    let lists = |rig: &Rig| rig.google.requests().iter().filter(|r| r.path.ends_with("/events")).count();
    let before = lists(&rig);
    let version = cal_store::outbox::version(&rig.db.client, PROVIDER).await.unwrap();
    rig.settle().await;
    assert_eq!(lists(&rig), before, "no read of the calendar for a forgery");
    assert_eq!(cal_store::outbox::version(&rig.db.client, PROVIDER).await.unwrap(), version);
    assert_eq!(rig.synced_busy().await, vec![span(day, 9, 10)]);
    // A Graph forgery: a made-up clientState for a subscription id.
    let answer = http
        .post(format!("{}/", rig.graph_receiver.base_url()))
        .body(json!({"value": [{"subscriptionId": watch_id, "clientState": "guess", "changeType": "created", "resource": "x"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    rig.settle().await;
    assert_eq!(lists(&rig), before);
}
