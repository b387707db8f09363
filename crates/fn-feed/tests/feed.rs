//! `fn_feed::handle` on a real PostgreSQL, driven by the payloads of
//! events/feed: 200, 304, the one 404 whatever the reason, HEAD and 405;
//! rotation and revocation; the tag moving with bookings and with the day;
//! the horizon; UID and SEQUENCE through reschedule and cancel. Every feed and
//! attachment produced is read back by our importer and by two independent
//! readers (Python icalendar, Node ical.js).

mod common;

use std::time::Duration;

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlResponse;
use common::{Fixture, PROVIDER, event_files, header, payload};
use fn_feed::{FeedSettings, handle, not_found};

fn status(r: &LambdaFunctionUrlResponse) -> i64 {
    r.status_code
}

/// Two answers that must not be told apart: status, every header, body.
fn assert_same(a: &LambdaFunctionUrlResponse, b: &LambdaFunctionUrlResponse, what: &str) {
    assert_eq!((a.status_code, &a.headers, &a.body, a.is_base64_encoded), (b.status_code, &b.headers, &b.body, b.is_base64_encoded), "{what}");
}

#[tokio::test]
async fn every_payload_in_events_feed_gets_its_answer() {
    let mut fx = Fixture::new().await;
    let a = fx.book("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z").await;
    let b = fx.book("2030-03-02T09:00:00Z", "2030-03-02T10:30:00Z").await;
    let feed = fx.create_feed(PROVIDER).await;
    let revoked = fx.create_feed("prov-cara").await;
    assert!(cal_store::revoke_feed(&mut fx.db.client, "prov-cara", fx.clock.now()).await.unwrap());

    // The 200 first: the 304 payload names its tag.
    let ok = handle(&fx.deps, payload("get", &[("token", &feed.token)])).await;
    let tag = fx.expect_feed("get", &ok, &[&b, &a]);
    let values = [("token", feed.token.as_str()), ("etag", tag.as_str()), ("revokedToken", revoked.token.as_str())];

    let files = event_files();
    assert!(files.len() >= 7, "{files:?}");
    for file in &files {
        let r = handle(&fx.deps, payload(file, &values)).await;
        match file.as_str() {
            "get" => assert_eq!((status(&r), header(&r.headers, "etag")), (200, Some(tag.as_str()))),
            "get.if-none-match" => {
                assert_eq!(status(&r), 304, "{r:?}");
                assert_eq!(header(&r.headers, "etag"), Some(tag.as_str()));
                assert_eq!(header(&r.headers, "cache-control"), Some("private, max-age=300"));
                assert_eq!(r.body, None);
            }
            "head" => {
                assert_eq!(status(&r), 200, "{r:?}");
                assert_eq!(header(&r.headers, "etag"), Some(tag.as_str()));
                assert_eq!(header(&r.headers, "content-type"), Some("text/calendar; charset=utf-8"));
                assert_eq!(r.body, None);
            }
            "get.unknown-token" | "get.malformed-token" | "get.revoked-token" => {
                assert_same(&r, &not_found(), file);
                assert_eq!(status(&r), 404);
                assert_eq!(header(&r.headers, "cache-control"), Some("no-store"));
                assert!(header(&r.headers, "etag").is_none());
            }
            "post" => {
                assert_eq!(status(&r), 405, "{r:?}");
                assert_eq!(header(&r.headers, "allow"), Some("GET, HEAD"));
            }
            other => panic!("events/feed/{other}.json has no expected outcome here: add one"),
        }
    }
    // A path that is not a feed's is the same 404 again.
    let mut elsewhere = payload("get", &values);
    elsewhere.raw_path = Some("/feeds/".into());
    assert_same(&handle(&fx.deps, elsewhere).await, &not_found(), "a foreign path");
    fx.readers.check();
}

#[tokio::test]
async fn a_304_and_a_head_never_read_events() {
    let mut fx = Fixture::new().await;
    let a = fx.book("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z").await;
    let feed = fx.create_feed(PROVIDER).await;
    let tag = fx.expect_feed("before-lock", &fx.get(&feed.token, None).await, &[&a]);

    // While another transaction holds cal.event exclusively, any statement
    // that reads it waits: what still answers at once never read it.
    let mut locker = fx.db.connect().await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("lock table cal.event in access exclusive mode").await.unwrap();

    let quick = Duration::from_secs(5);
    let r = tokio::time::timeout(quick, fx.get(&feed.token, Some(&tag))).await.expect("a 304 does not touch cal.event");
    assert_eq!(status(&r), 304);
    let head = handle(&fx.deps, payload("head", &[("token", &feed.token)]));
    assert_eq!(status(&tokio::time::timeout(quick, head).await.expect("HEAD does not touch cal.event")), 200);
    // The check has teeth: a 200 does read the events, so it waits.
    let full = tokio::time::timeout(Duration::from_millis(800), fx.get(&feed.token, Some("\"other\""))).await;
    assert!(full.is_err(), "a 200 must have loaded the events (and so waited for the lock)");
    tx.rollback().await.unwrap();

    let r = fx.get(&feed.token, Some("\"other\"")).await;
    assert_eq!(fx.expect_feed("after-lock", &r, &[&a]), tag);
    fx.readers.check();
}

#[tokio::test]
async fn the_tag_changes_with_a_booking_and_with_the_day_and_only_then() {
    let mut fx = Fixture::new().await;
    let a = fx.book("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z").await;
    let feed = fx.create_feed(PROVIDER).await;
    let t1 = fx.expect_feed("one", &fx.get(&feed.token, None).await, &[&a]);
    // Unchanged: 304, also later the same day; the body is the same bytes.
    let first_body = fx.get(&feed.token, None).await.body;
    fx.clock.advance_minutes(60 * 23);
    assert_eq!(status(&fx.get(&feed.token, Some(&t1)).await), 304);
    assert_eq!(fx.get(&feed.token, None).await.body, first_body, "a strong tag: same tag, same bytes");

    // A booking: the old tag no longer matches.
    fx.clock.advance_minutes(-60 * 23);
    let b = fx.book("2030-03-05T08:00:00Z", "2030-03-05T09:00:00Z").await;
    let r = fx.get(&feed.token, Some(&t1)).await;
    let t2 = fx.expect_feed("two", &r, &[&a, &b]);
    assert_ne!(t1, t2);
    assert_eq!(status(&fx.get(&feed.token, Some(&t2)).await), 304);

    // Next UTC day, nothing changed: the horizon moved, so the tag did.
    fx.clock.advance_minutes(24 * 60);
    let r = fx.get(&feed.token, Some(&t2)).await;
    let t3 = fx.expect_feed("next-day", &r, &[&a, &b]);
    assert_ne!(t2, t3);
    fx.readers.check();
}

#[tokio::test]
async fn rotate_and_revoke_close_the_old_url_at_once() {
    let mut fx = Fixture::new().await;
    let a = fx.book("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z").await;
    let first = fx.create_feed(PROVIDER).await;
    let t1 = fx.expect_feed("first", &fx.get(&first.token, None).await, &[&a]);

    let second = cal_store::rotate_feed(&mut fx.db.client, PROVIDER, fx.clock.now()).await.unwrap();
    assert_eq!(second.feed_id, first.feed_id);
    assert_same(&fx.get(&first.token, None).await, &not_found(), "the rotated-out token");
    assert_same(&fx.get(&first.token, Some(&t1)).await, &not_found(), "the rotated-out token, conditional");
    let t2 = fx.expect_feed("second", &fx.get(&second.token, None).await, &[&a]);
    assert_ne!(t1, t2, "rotation bumps the version");

    assert!(cal_store::revoke_feed(&mut fx.db.client, PROVIDER, fx.clock.now()).await.unwrap());
    assert_same(&fx.get(&second.token, None).await, &not_found(), "the revoked token");
    assert_same(&fx.get(&second.token, Some(&t2)).await, &not_found(), "the revoked token, conditional");

    // Asking for a feed again revives it with a new token; the old ones stay dead.
    let third = fx.create_feed(PROVIDER).await;
    fx.expect_feed("third", &fx.get(&third.token, None).await, &[&a]);
    for old in [&first.token, &second.token] {
        assert_same(&fx.get(old, None).await, &not_found(), "an old token after revival");
    }
    fx.readers.check();
}

#[tokio::test]
async fn the_feed_holds_confirmed_events_within_the_horizon() {
    let settings = FeedSettings { past_days: 2, future_days: 10, calendar_name: "Ana's bookings (studio)".into() };
    let mut fx = Fixture::with_settings(settings).await;
    let soon = fx.book("2030-03-02T09:00:00Z", "2030-03-02T10:00:00Z").await;
    let later = fx.book("2030-03-11T20:00:00Z", "2030-03-11T23:00:00Z").await; // the last day in
    let beyond = fx.book("2030-03-20T09:00:00Z", "2030-03-20T10:00:00Z").await;
    let moved = fx.book("2030-03-03T09:00:00Z", "2030-03-03T10:00:00Z").await;
    let moved = fx.reschedule(&moved, "2030-03-03T15:00:00Z", "2030-03-03T16:30:00Z").await;
    let gone = fx.book("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z").await;
    let _gone = fx.cancel(&gone).await;
    let feed = fx.create_feed(PROVIDER).await;

    // Horizon on 2030-03-01: [02-27, 03-12). Cancelled and beyond are out.
    let r = fx.get(&feed.token, None).await;
    fx.expect_feed("horizon", &r, &[&soon, &moved, &later]);
    let body = r.body.unwrap();
    assert!(body.contains("X-WR-CALNAME:Ana's bookings (studio)\r\n"), "{body}");
    assert!(body.contains(&format!("UID:{}\r\nSEQUENCE:1\r\n", moved.ics_uid)), "{body}");
    assert!(!body.contains(&beyond.ics_uid) && !body.contains(&gone.ics_uid));

    // Ten days on, [03-09, 03-22): the early ones are past, `beyond` is in.
    fx.clock.advance_minutes(10 * 24 * 60);
    let r = fx.get(&feed.token, None).await;
    fx.expect_feed("horizon-later", &r, &[&later, &beyond]);
    fx.readers.check();
}

#[tokio::test]
async fn reschedule_then_cancel_keeps_one_uid_with_sequence_0_1_2() {
    let mut fx = Fixture::new().await;
    let feed = fx.create_feed(PROVIDER).await;
    let booked = fx.book("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z").await;
    let r = fx.get(&feed.token, None).await;
    fx.expect_feed("booked", &r, &[&booked]);
    let moved = fx.reschedule(&booked, "2030-03-05T10:00:00Z", "2030-03-05T11:00:00Z").await;
    let r = fx.get(&feed.token, None).await;
    fx.expect_feed("moved", &r, &[&moved]);
    let cancelled = fx.cancel(&moved).await;

    let steps = [(&booked, "REQUEST", 0), (&moved, "REQUEST", 1), (&cancelled, "CANCEL", 2)];
    for (i, (event, method, sequence)) in steps.into_iter().enumerate() {
        assert_eq!(event.ics_uid, booked.ics_uid);
        assert_eq!(event.sequence, sequence);
        let text = fx.attachment(&format!("attachment-{i}"), event);
        assert!(text.contains(&format!("METHOD:{method}\r\n")), "{text}");
        assert!(text.contains(&format!("UID:{}\r\nSEQUENCE:{sequence}\r\n", booked.ics_uid)), "{text}");
    }
    assert!(fx.attachment("attachment-cancel-status", &cancelled).contains("STATUS:CANCELLED\r\n"));

    // The feed drops the cancelled event: its absence removes it.
    let r = fx.get(&feed.token, None).await;
    fx.expect_feed("after-cancel", &r, &[]);
    fx.readers.check();
}
