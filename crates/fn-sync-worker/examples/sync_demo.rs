//! Two-way calendar sync, step by step, on one machine (`make sync-demo`).
//!
//! A fresh database on the PostgreSQL of `DATABASE_URL` (the Makefile
//! starts a throwaway one), a fake Google Calendar and our notification
//! receiver on 127.0.0.1, an in-memory queue in place of SQS, and the sync
//! worker polling it as Lambda would. Nothing leaves this machine.
//!
//! Run by hand: `DATABASE_URL=postgres://… cargo run -p fn-sync-worker --example sync_demo`.

use std::time::{Duration, Instant as Timer};

use cal_core::time::Instant;
use cal_store::sync::{self, CalendarUse};
use cal_store::testing::fixture::PROVIDER;
use cal_sync::ServiceKind;
use cal_sync::google::EVENT_ID_PROPERTY;
use chrono::NaiveDate;
use fn_sync_worker::testing::{MemoryQueue, Rig, monday, span, zone};
use serde_json::{Value, json};
use sync_fakes::google::ACCOUNT;

fn step(n: u32, text: &str) {
    println!("\n{n}. {text}");
}

fn local(t: Instant) -> String {
    zone().local_at(t).format("%a %d %b %H:%M").to_string()
}

async fn show_slots(rig: &Rig, day: NaiveDate) {
    let hours: Vec<String> = rig.slot_starts(day).await.iter().map(|t| zone().local_at(*t).format("%H:%M").to_string()).collect();
    println!("   bookable hours of {PROVIDER} on {day} (Europe/Berlin): {}", hours.join(" "));
}

/// The jobs queued since `seen` (their JSON, as SQS would carry it).
fn show_jobs(queue: &MemoryQueue, seen: &mut usize) {
    let sent = queue.sent();
    for job in &sent[*seen..] {
        println!("   queued: {}", serde_json::to_string(job).unwrap_or_default());
    }
    *seen = sent.len();
}

/// Waits (at most 10 s) until `done` holds; the time it took.
async fn until<F: AsyncFnMut() -> bool>(mut done: F) -> Duration {
    let started = Timer::now();
    while !done().await {
        assert!(started.elapsed() < Duration::from_secs(10), "the change did not arrive within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let mut rig = Rig::new().await;
    let day = monday(rig.clock.now());
    let mut seen = 0;
    println!("sync demo: database {} (fresh, migrated); provider {PROVIDER}, photographer, every day 08:00-18:00 Europe/Berlin", rig.db.name);
    println!("   fake Google Calendar: {}   our receiver: {}/", rig.google.base_url(), rig.google_receiver.base_url());

    step(1, "The provider connects her Google calendar (OAuth code with PKCE, through the callback function).");
    let id = rig.connect(ServiceKind::Google).await;
    sync::set_calendar_use(&mut rig.db.client, PROVIDER, &id, ACCOUNT, CalendarUse { blocks: true, receives_bookings: true }).await.unwrap();
    show_jobs(&rig.queue, &mut seen);
    let poller = rig.poll();
    let watched = until(async || rig.google.channels().iter().any(|c| !c.stopped)).await;
    let channel = rig.google.channels().into_iter().find(|c| !c.stopped).unwrap();
    println!("   connection {id}: calendar {ACCOUNT} blocks time and receives bookings");
    println!("   the worker opened push channel {} to {} ({} ms)", channel.id, channel.address, watched.as_millis());
    until(async || rig.db.count("select count(*) from cal.sync_calendar where sync_token is not null").await == 1).await;
    show_jobs(&rig.queue, &mut seen);

    step(2, "Before anything happens in Google Calendar:");
    show_slots(&rig, day).await;

    step(3, "The provider adds an appointment in Google Calendar, 10:00-11:00.");
    let dentist = span(day, 10, 11);
    rig.google.create(
        ACCOUNT,
        json!({"summary": "Dentist", "start": {"dateTime": dentist.start().rfc3339()}, "end": {"dateTime": dentist.end().rfc3339()}}),
    );
    let took = until(async || !rig.slot_starts(day).await.contains(&dentist.start())).await;
    for d in rig.google.deliveries().iter().filter(|d| d.state == "exists") {
        let status = d.status.map_or("unreachable".to_owned(), |s| format!("HTTP {s}"));
        println!("   Google POSTed notification #{} (channel {}, {}) to the receiver: {status}", d.message_number, d.channel_id, d.state);
    }
    show_jobs(&rig.queue, &mut seen);
    println!("   the worker checked the notification's proof, read the calendar's changes and stored the busy time: {} ms", took.as_millis());
    show_slots(&rig, day).await;

    step(4, "A customer books 14:00-15:00 (hold, confirm; the bus's rule queues a push).");
    let booked = span(day, 14, 15);
    let event = rig.book(booked, "demo-booking").await;
    println!("   booking {} confirmed", event.event_id);
    let took = until(async || !rig.google.visible_with_property(ACCOUNT, EVENT_ID_PROPERTY, &event.event_id).is_empty()).await;
    show_jobs(&rig.queue, &mut seen);
    println!("   written to Google Calendar in {} ms:", took.as_millis());
    let item = rig.google.visible_with_property(ACCOUNT, EVENT_ID_PROPERTY, &event.event_id).remove(0);
    let at = |k: &str| item[k]["dateTime"].as_str().and_then(|t| Instant::parse(t).ok()).map(local).unwrap_or_default();
    println!("   title        {}", item["summary"].as_str().unwrap_or(""));
    println!("   time         {} - {} (Europe/Berlin)", at("start"), at("end"));
    println!("   {EVENT_ID_PROPERTY}   {} (extendedProperties.private: how a read knows it is ours)", item["extendedProperties"]["private"][EVENT_ID_PROPERTY].as_str().unwrap_or(""));
    println!("   google id    {}", item["id"].as_str().unwrap_or(""));
    // Google notified that change too; reading it back never makes it external busy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy: Vec<Value> = rig.synced_busy().await.iter().map(|iv| json!(format!("{} - {}", local(iv.start()), local(iv.end())))).collect();
    println!("   external busy time now: {} (the dentist only: our booking read back is not counted twice)", Value::Array(busy));
    drop(poller);
    println!("\nsync demo: done (the database is dropped, the throwaway server stopped by make)");
}
