//! The convergence property of two-way sync (SEMANTICS.md §11), against
//! the Google protocol fake: random interleavings of remote changes
//! (create, move, delete; a daily series with moved and cancelled
//! instances; all-day, transparent and declined events; edits and
//! deletions of the items we wrote) and our bookings, reschedules and
//! cancellations — with the queue dropping, duplicating and reordering
//! notifications, and duplicating and reordering pushes — end, after the
//! periodic pull, with
//!
//! * our synced busy time equal to the remote calendar's busy time, item
//!   for item, and
//! * the remote calendar holding exactly our confirmed bookings, each once,
//!   at its current time.

use std::collections::BTreeMap;

use cal_core::holds::HoldKind;
use cal_core::time::{Instant, Interval};
use cal_store::sync::{self, CalendarUse};
use cal_store::testing::fixture::PROVIDER;
use cal_store::{cancel_event, confirm_hold, create_hold, reschedule_event};
use cal_sync::ServiceKind;
use cal_sync::google::EVENT_ID_PROPERTY;
use cal_sync::jobs::SyncJob;
use chrono::{Duration, NaiveDate};
use fn_sync_worker::testing::{Rig, hold_request, monday, zone};
use proptest::prelude::*;
use serde_json::{Value, json};
use sync_fakes::google::ACCOUNT;

fn at_local(day: NaiveDate, h: u32, m: u32) -> Instant {
    zone().point(day.and_hms_opt(h, m, 0).unwrap())
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Busy,
    AllDay,
    Transparent,
    Declined,
}

#[derive(Clone, Debug)]
enum Op {
    Create { day: u8, hour: u8, kind: Kind },
    Move { which: usize, hour: u8 },
    Delete { which: usize },
    MoveInstance { day: u8, hour: u8 },
    CancelInstance { day: u8 },
    Book { day: u8, hour: u8 },
    Reschedule { which: usize, day: u8, hour: u8 },
    Cancel { which: usize },
    Tamper { which: usize, delete: bool },
    Deliver { drop: bool, dup: bool, reverse: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![Just(Kind::Busy), Just(Kind::AllDay), Just(Kind::Transparent), Just(Kind::Declined)];
    prop_oneof![
        3 => (0..5u8, 8..17u8, kind).prop_map(|(day, hour, kind)| Op::Create { day, hour, kind }),
        1 => (any::<usize>(), 8..17u8).prop_map(|(which, hour)| Op::Move { which, hour }),
        1 => any::<usize>().prop_map(|which| Op::Delete { which }),
        1 => (0..5u8, 6..8u8).prop_map(|(day, hour)| Op::MoveInstance { day, hour }),
        1 => (0..5u8).prop_map(|day| Op::CancelInstance { day }),
        3 => (0..5u8, 8..17u8).prop_map(|(day, hour)| Op::Book { day, hour }),
        1 => (any::<usize>(), 0..5u8, 8..17u8).prop_map(|(which, day, hour)| Op::Reschedule { which, day, hour }),
        1 => any::<usize>().prop_map(|which| Op::Cancel { which }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(which, delete)| Op::Tamper { which, delete }),
        3 => (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(drop, dup, reverse)| Op::Deliver { drop, dup, reverse }),
    ]
}

/// The remote calendar as the test made it (not counting our items).
#[derive(Default)]
struct Model {
    /// Single events: id → (kind, busy span if it blocks).
    events: Vec<(String, Kind, Interval)>,
    /// The series' instances: original day → its span, or cancelled.
    instances: BTreeMap<NaiveDate, Option<Interval>>,
    series: String,
}

impl Model {
    fn busy(&self) -> Vec<Interval> {
        let mut busy: Vec<Interval> = self
            .events
            .iter()
            .filter_map(|(_, kind, iv)| match kind {
                Kind::Busy | Kind::AllDay => Some(*iv),
                Kind::Transparent | Kind::Declined => None,
            })
            .chain(self.instances.values().flatten().copied())
            .collect();
        busy.sort();
        busy
    }
}

fn google_event(kind: Kind, day: NaiveDate, hour: u32) -> (Value, Interval) {
    let iv = Interval::new(at_local(day, hour, 0), at_local(day, hour + 1, 0)).unwrap();
    let timed = json!({"summary": "x", "start": {"dateTime": iv.start().rfc3339()}, "end": {"dateTime": iv.end().rfc3339()}});
    match kind {
        Kind::Busy => (timed, iv),
        Kind::AllDay => {
            let next = day.succ_opt().unwrap();
            let body = json!({"summary": "off", "start": {"date": day.to_string()}, "end": {"date": next.to_string()}});
            (body, zone().day(day).unwrap())
        }
        Kind::Transparent => {
            let mut v = timed;
            v["transparency"] = json!("transparent");
            (v, iv)
        }
        Kind::Declined => {
            let mut v = timed;
            v["attendees"] = json!([{"email": ACCOUNT, "self": true, "responseStatus": "declined"}, {"email": "boss@example.com"}]);
            (v, iv)
        }
    }
}

/// The hour from `start`.
fn hour_from(start: Instant) -> Interval {
    Interval::new(start, start.plus_minutes(60)).unwrap()
}

fn instance_id(series: &str, day: NaiveDate) -> String {
    let start = at_local(day, 7, 0).to_chrono();
    format!("{series}_{}", start.format("%Y%m%dT%H%M%SZ"))
}

/// Runs what is queued, after the queue had its way with it.
async fn deliver(rig: &Rig, drop: bool, dup: bool, reverse: bool) {
    rig.google.settle().await;
    let mut jobs = rig.queue.drain();
    if drop {
        let mut n = 0;
        jobs.retain(|j| {
            n += 1;
            !(matches!(j, SyncJob::Notify { .. }) && n % 2 == 0)
        });
    }
    if dup {
        jobs = jobs.iter().flat_map(|j| [j.clone(), j.clone()]).collect();
    }
    if reverse {
        jobs.reverse();
    }
    for job in jobs {
        if rig.worker.run(&job, 1).await.is_err() {
            rig.worker.run(&job, 2).await.ok();
        }
    }
}

async fn run(ops: Vec<Op>) {
    let mut rig = Rig::new().await;
    let id = rig.connect(ServiceKind::Google).await;
    sync::set_calendar_use(&mut rig.db.client, PROVIDER, &id, ACCOUNT, CalendarUse { blocks: true, receives_bookings: true })
        .await
        .unwrap();
    rig.settle().await;
    let monday = monday(rig.clock.now());
    let days: Vec<NaiveDate> = (0..5).map(|i| monday + Duration::days(i)).collect();
    // A daily series, 07:00–07:30 Berlin, Monday to Friday.
    let series = rig.google.create(
        ACCOUNT,
        json!({"summary": "standup", "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
               "start": {"dateTime": at_local(monday, 7, 0).rfc3339(), "timeZone": "Europe/Berlin"},
               "end": {"dateTime": at_local(monday, 7, 30).rfc3339(), "timeZone": "Europe/Berlin"}}),
    );
    let mut model = Model { series, ..Model::default() };
    for d in &days {
        model.instances.insert(*d, Some(Interval::new(at_local(*d, 7, 0), at_local(*d, 7, 30)).unwrap()));
    }
    let mut bookings: Vec<String> = Vec::new();
    let mut key = 0;
    for op in ops {
        let now = rig.clock.now();
        match op {
            Op::Create { day, hour, kind } => {
                let (body, iv) = google_event(kind, days[day as usize], hour as u32);
                let id = rig.google.create(ACCOUNT, body);
                model.events.push((id, kind, iv));
            }
            Op::Move { which, hour } if !model.events.is_empty() => {
                let i = which % model.events.len();
                let (id, kind, iv) = model.events[i].clone();
                if matches!(kind, Kind::AllDay) {
                    continue;
                }
                let day = zone().date_at(iv.start());
                let moved = Interval::new(at_local(day, hour as u32, 0), at_local(day, hour as u32 + 1, 0)).unwrap();
                rig.google.patch(ACCOUNT, &id, json!({"start": {"dateTime": moved.start().rfc3339()}, "end": {"dateTime": moved.end().rfc3339()}}));
                model.events[i].2 = moved;
            }
            Op::Delete { which } if !model.events.is_empty() => {
                let (id, _, _) = model.events.remove(which % model.events.len());
                rig.google.delete(ACCOUNT, &id);
            }
            Op::MoveInstance { day, hour } => {
                let d = days[day as usize];
                if model.instances[&d].is_none() {
                    continue;
                }
                let moved = Interval::new(at_local(d, hour as u32, 15), at_local(d, hour as u32, 45)).unwrap();
                rig.google.patch(
                    ACCOUNT,
                    &instance_id(&model.series, d),
                    json!({"start": {"dateTime": moved.start().rfc3339()}, "end": {"dateTime": moved.end().rfc3339()}}),
                );
                model.instances.insert(d, Some(moved));
            }
            Op::CancelInstance { day } => {
                let d = days[day as usize];
                if model.instances[&d].is_some() {
                    rig.google.delete(ACCOUNT, &instance_id(&model.series, d));
                    model.instances.insert(d, None);
                }
            }
            Op::Book { day, hour } => {
                key += 1;
                let start = at_local(days[day as usize], hour as u32, 0);
                let Ok(hold) = create_hold(&rig.db.client, &hold_request(HoldKind::Checkout, hour_from(start), None, &format!("k{key}")), now).await
                else {
                    continue;
                };
                let event = confirm_hold(&mut rig.db.client, &hold.hold_id, now).await.unwrap();
                rig.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
                bookings.push(event.event_id);
            }
            Op::Reschedule { which, day, hour } if !bookings.is_empty() => {
                key += 1;
                let event_id = bookings[which % bookings.len()].clone();
                let start = at_local(days[day as usize], hour as u32, 0);
                let req = hold_request(HoldKind::Reschedule, hour_from(start), Some(&event_id), &format!("k{key}"));
                let Ok(hold) = create_hold(&rig.db.client, &req, now).await else { continue };
                if reschedule_event(&mut rig.db.client, &event_id, &hold.hold_id, now).await.is_ok() {
                    rig.queue.push(SyncJob::Push { event_id });
                }
            }
            Op::Cancel { which } if !bookings.is_empty() => {
                let event_id = bookings[which % bookings.len()].clone();
                cancel_event(&mut rig.db.client, &event_id, now).await.unwrap();
                rig.queue.push(SyncJob::Push { event_id });
            }
            Op::Tamper { which, delete } if !bookings.is_empty() => {
                let event_id = &bookings[which % bookings.len()];
                let Some(item) = rig.google.visible_with_property(ACCOUNT, EVENT_ID_PROPERTY, event_id).into_iter().next() else {
                    continue;
                };
                let item_id = item["id"].as_str().unwrap().to_owned();
                if delete {
                    rig.google.delete(ACCOUNT, &item_id);
                } else {
                    let start = Instant::parse(item["start"]["dateTime"].as_str().unwrap()).unwrap().plus_minutes(120);
                    rig.google.patch(
                        ACCOUNT,
                        &item_id,
                        json!({"start": {"dateTime": start.rfc3339()}, "end": {"dateTime": start.plus_minutes(60).rfc3339()}}),
                    );
                }
            }
            Op::Deliver { drop, dup, reverse } => deliver(&rig, drop, dup, reverse).await,
            _ => {}
        }
    }

    // Whatever was lost is caught by the periodic pull.
    rig.settle().await;
    rig.clock.advance_secs(rig.worker.settings.periodic_secs + 60);
    rig.renew().await;
    rig.settle().await;

    assert_eq!(rig.synced_busy().await, model.busy(), "synced busy time equals the remote calendar's");
    let confirmed = rig
        .db
        .client
        .query("select event_id, start_at, end_at from cal.event where user_id = $1 and status = 'confirmed'", &[&PROVIDER])
        .await
        .unwrap();
    for row in &confirmed {
        let event_id: String = row.get(0);
        let items = rig.google.visible_with_property(ACCOUNT, EVENT_ID_PROPERTY, &event_id);
        assert_eq!(items.len(), 1, "booking {event_id} is in the calendar exactly once: {items:#?}");
        let start = Instant::parse(items[0]["start"]["dateTime"].as_str().unwrap()).unwrap();
        let end = Instant::parse(items[0]["end"]["dateTime"].as_str().unwrap()).unwrap();
        assert_eq!((start, end), (Instant::from_chrono(row.get(1)), Instant::from_chrono(row.get(2))), "booking {event_id} at its time");
    }
    let ours = rig.google.visible(ACCOUNT).into_iter().filter(|e| e.pointer(&format!("/extendedProperties/private/{EVENT_ID_PROPERTY}")).is_some()).count();
    assert_eq!(ours, confirmed.len(), "no item of a cancelled booking, no duplicate");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn remote_calendar_and_our_bookings_converge(ops in prop::collection::vec(op(), 1..24)) {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run(ops));
    }
}
