//! Holds and bookings (`calctl hold …`, `calctl event …`): each command
//! builds the same request the resolvers build and calls the same
//! `cal-store` service, then prints the record.

use cal_core::{BookingError, HoldRequest, HoldRequestInput, Instant, Zone};
use cal_store::{EventRecord, HoldRecord, StoreError};

use crate::db::connect;
use crate::{CliError, HoldCreateArgs, render};

/// The command-line flag a request field comes from, so a refusal names
/// what the operator typed.
fn flag(field: &str) -> &str {
    match field {
        "user_id" => "--user",
        "role_code" => "--role",
        "customer_id" => "--customer",
        "start" => "--start",
        "end" => "--end",
        "kind" => "--kind",
        "mode" => "--mode",
        "event_id" => "--event",
        "ttl_min" => "--ttl-min",
        "step_min" => "--step-min",
        "idempotency_key" => "--idempotency-key",
        other => other,
    }
}

fn store_with_flag_names(e: StoreError) -> StoreError {
    match e {
        StoreError::Validation { field, problem } => StoreError::Validation { field: flag(&field).to_owned(), problem },
        other => other,
    }
}

/// `calctl hold create …`
pub async fn create_hold(url: Option<&str>, args: &HoldCreateArgs, now: Instant, json_out: bool) -> Result<(), CliError> {
    let instant = |field: &'static str, text: &str| {
        Instant::parse(text).map_err(|e| StoreError::from(BookingError::Validation { field, reason: e.to_string() }))
    };
    let input = HoldRequestInput {
        user_id: args.user.clone(),
        role_code: args.role.clone(),
        customer_id: args.customer.clone(),
        start: instant("--start", &args.start)?,
        end: instant("--end", &args.end)?,
        kind: Some(args.kind.into()),
        mode: args.mode.map(Into::into),
        event_id: args.event.clone(),
        ttl_min: args.ttl_min,
        step_min: args.step_min,
        idempotency_key: args.idempotency_key.clone(),
    };
    // Refused before a connection is opened: bad input never needs the database.
    let req = HoldRequest::new(input).map_err(|e| store_with_flag_names(e.into()))?;
    let db = connect(url).await?;
    let hold = cal_store::create_hold(&db, &req, now).await.map_err(store_with_flag_names)?;
    print_hold(&db, &hold, now, json_out).await
}

/// `calctl hold confirm HOLD_ID`
pub async fn confirm_hold(url: Option<&str>, hold_id: &str, now: Instant, json_out: bool) -> Result<(), CliError> {
    let mut db = connect(url).await?;
    let event = cal_store::confirm_hold(&mut db, hold_id, now).await?;
    print_event(&event, json_out)
}

/// `calctl hold release HOLD_ID`
pub async fn release_hold(url: Option<&str>, hold_id: &str, now: Instant, json_out: bool) -> Result<(), CliError> {
    let mut db = connect(url).await?;
    let hold = cal_store::release_hold(&mut db, hold_id, now).await?;
    print_hold(&db, &hold, now, json_out).await
}

/// `calctl event reschedule EVENT_ID --hold HOLD_ID`
pub async fn reschedule_event(url: Option<&str>, event_id: &str, hold_id: &str, now: Instant, json_out: bool) -> Result<(), CliError> {
    let mut db = connect(url).await?;
    let event = cal_store::reschedule_event(&mut db, event_id, hold_id, now).await?;
    print_event(&event, json_out)
}

/// `calctl event cancel EVENT_ID`
pub async fn cancel_event(url: Option<&str>, event_id: &str, now: Instant, json_out: bool) -> Result<(), CliError> {
    let mut db = connect(url).await?;
    let event = cal_store::cancel_event(&mut db, event_id, now).await?;
    print_event(&event, json_out)
}

/// `calctl event ics EVENT_ID`: the attachment as text (with --json, inside
/// `{"event_id", "method", "ics"}`).
pub async fn event_ics(url: Option<&str>, event_id: &str, now: Instant, json_out: bool) -> Result<(), CliError> {
    let db = connect(url).await?;
    let event = cal_store::get_event(&db, event_id).await?;
    let invite = event.invite();
    let text = cal_core::ics_out::attachment(&invite, now);
    if json_out {
        let doc = serde_json::json!({"event_id": event.event_id, "method": invite.method().as_str(), "ics": text});
        println!("{doc}");
    } else {
        print!("{text}");
    }
    Ok(())
}

async fn print_hold(db: &tokio_postgres::Client, hold: &HoldRecord, now: Instant, json_out: bool) -> Result<(), CliError> {
    if json_out {
        // The record, with the status in effect at `now`: an active hold past
        // its expiry reads `expired` even before the sweeper marks it.
        let mut doc = serde_json::to_value(hold).map_err(anyhow::Error::from)?;
        doc["status"] = hold.status_at(now).as_str().into();
        println!("{}", serde_json::to_string_pretty(&doc).map_err(anyhow::Error::from)?);
        return Ok(());
    }
    // A hold stores no zone: render it in the provider's (that of its first
    // active rule of the role), as `slots` and the booked event do.
    let rules = cal_store::list_rules(db, &hold.user_id, Some(&hold.role_code)).await?;
    let zone = rules.iter().find(|r| r.active).map_or(Zone::UTC, |r| r.timezone);
    print!("{}", render::hold(hold, zone, now));
    Ok(())
}

fn print_event(event: &EventRecord, json_out: bool) -> Result<(), CliError> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(event).map_err(anyhow::Error::from)?);
    } else {
        print!("{}", render::event(event));
    }
    Ok(())
}
