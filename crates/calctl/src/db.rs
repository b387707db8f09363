//! The commands that run against a database (`DATABASE_URL` or
//! `--database-url`), each a thin call into `cal-store`.

use cal_core::{Instant, SlotQuery, SlotRange, StepMinutes, Zone};
use serde_json::json;

use crate::render;
use crate::{CliError, SlotsArgs};

/// Opens one connection; the URL itself is never printed (it may hold a password).
pub async fn connect(url: Option<&str>) -> Result<tokio_postgres::Client, CliError> {
    let url = url.ok_or_else(|| CliError::Usage("set DATABASE_URL or pass --database-url URL".into()))?;
    Ok(cal_store::connect(url).await?)
}

pub async fn migrate(url: Option<&str>, json_out: bool) -> Result<(), CliError> {
    let mut db = connect(url).await?;
    let report = cal_store::migrate(&mut db).await?;
    if json_out {
        println!("{}", json!({"applied": report.applied, "already_applied": report.already_applied}));
    } else {
        println!("migrations applied: {:?}; already applied: {:?}", report.applied, report.already_applied);
    }
    Ok(())
}

pub async fn seed_demo(url: Option<&str>, now: Instant, json_out: bool) -> Result<(), CliError> {
    let mut db = connect(url).await?;
    let s = cal_store::seed_demo(&mut db, now).await?;
    if json_out {
        let events: Vec<_> = s.events.iter().map(|(id, iv)| json!({"event_id": id, "start": iv.start(), "end": iv.end()})).collect();
        println!(
            "{}",
            json!({
                "user_id": s.user_id, "role_code": s.role_code, "timezone": s.timezone,
                "week_start": s.week_start.to_string(), "rule_ids": s.rule_ids,
                "vacation": [s.vacation.0.to_string(), s.vacation.1.to_string()],
                "override_date": s.override_date.to_string(), "events": events,
                "hold": {"hold_id": s.hold.0, "start": s.hold.1.start(), "end": s.hold.1.end()},
                "sample_week": s.sample_week.to_string(), "version": s.version,
            })
        );
    } else {
        println!(
            "seeded {} ({}) in {}: rules Mon–Fri 09:00–17:00 and Sat 10:00–14:00; vacation {} to {}; {} open 12:00–18:00; {} events and one hold in the week of {}; the bookings the events/appsync samples name in the week of {}",
            s.user_id,
            s.role_code,
            s.timezone,
            s.vacation.0,
            s.vacation.1,
            s.override_date.format("%a %F"),
            s.events.len(),
            s.week_start,
            s.sample_week
        );
    }
    Ok(())
}

/// `calctl slots --user … --role … --from … --to …`: JSON, or a week view in
/// the provider's zone (that of its first active rule of the role).
pub async fn slots(url: Option<&str>, args: &SlotsArgs, now: Instant, json_out: bool) -> Result<(), CliError> {
    let field = |name: &'static str, v: &Option<String>| {
        v.clone().ok_or_else(|| CliError::Usage(format!("--{name} is required")))
    };
    let (user, role) = (field("user", &args.user)?, field("role", &args.role)?);
    let instant = |name: &'static str, v: &Option<String>| -> Result<Instant, CliError> {
        let text = field(name, v)?;
        Instant::parse(&text).map_err(|e| CliError::Usage(format!("--{name}: {e}")))
    };
    let (from, to) = (instant("from", &args.from)?, instant("to", &args.to)?);
    let step = match args.step_min {
        Some(s) => StepMinutes::new(s).map_err(|e| CliError::Usage(format!("--step-min: {e}")))?,
        None => StepMinutes::default(),
    };
    let range = SlotRange::new(from, to, args.duration_min, step).map_err(|e| {
        let flag = if e.field() == "to" { "to" } else { "duration-min" };
        CliError::Usage(format!("--{flag}: {e}"))
    })?;
    let query = SlotQuery { user_id: user.clone(), role_code: role.clone(), range };
    let db = connect(url).await?;
    let answer = cal_store::slots(&db, &query, now).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&answer).map_err(anyhow::Error::from)?);
        return Ok(());
    }
    let rules = cal_store::list_rules(&db, &user, Some(&role)).await?;
    let zone = rules.iter().find(|r| r.active).map_or(Zone::UTC, |r| r.timezone);
    let title = format!("{user} · {role} · {} → {}", zone.local_at(from).format("%a %F %H:%M"), zone.local_at(to).format("%a %F %H:%M"));
    print!("{}", render::week_view(&title, zone, from, to, &answer));
    Ok(())
}


/// Prints connections: JSON (no token, no secret), or one block each.
fn print_connections(list: &[cal_store::sync::Connection], json_out: bool) {
    if json_out {
        println!("{}", json!(list));
        return;
    }
    for c in list {
        let last = c.last_sync_at.map_or("never".to_owned(), |t| t.rfc3339());
        println!("{}  {}  {}  {}  last sync {last}", c.connection_id, c.service.as_str(), c.account, c.status.as_str());
        if let Some(e) = &c.last_error {
            println!("  last error: {e}");
        }
        for k in &c.calendars {
            let uses = [(k.blocks, "blocks"), (k.receives_bookings, "receives bookings")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, w)| *w)
                .collect::<Vec<_>>()
                .join(", ");
            let watch = k.watch_expires_at.map_or("no watch".to_owned(), |t| format!("watch until {}", t.rfc3339()));
            println!("  {} ({}): {}; {watch}", k.calendar_id, k.name, if uses.is_empty() { "unused" } else { &uses });
        }
    }
}

/// `calctl sync list --user U`.
pub async fn sync_list(url: Option<&str>, user: &str, json_out: bool) -> Result<(), CliError> {
    let db = connect(url).await?;
    print_connections(&cal_store::sync::list_connections(&db, user).await?, json_out);
    Ok(())
}

/// `calctl sync show CONNECTION_ID`.
pub async fn sync_show(url: Option<&str>, connection_id: &str, json_out: bool) -> Result<(), CliError> {
    let db = connect(url).await?;
    print_connections(&[cal_store::sync::get_connection(&db, connection_id).await?], json_out);
    Ok(())
}

/// `calctl sync resync CONNECTION_ID`: its blocking calendars' tokens are
/// forgotten and their pulls due now; the renewer queues them.
pub async fn sync_resync(url: Option<&str>, connection_id: &str, json_out: bool) -> Result<(), CliError> {
    let db = connect(url).await?;
    let c = cal_store::sync::get_connection(&db, connection_id).await?;
    let due = cal_store::sync::request_resync(&db, &c.user_id, connection_id).await?;
    let ids: Vec<&str> = due.iter().map(|r| r.calendar_id.as_str()).collect();
    if json_out {
        println!("{}", json!({"connection_id": connection_id, "resync": ids}));
    } else {
        println!("{connection_id}: a full read of {} calendar(s) is due now: {}", ids.len(), ids.join(", "));
    }
    Ok(())
}
