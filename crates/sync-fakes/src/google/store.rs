//! One fake calendar: its Event resources as stored (single events, series
//! masters, and instance exceptions with `recurringEventId` and
//! `originalStartTime`), and the expanded view `singleEvents=true` lists,
//! with a change number per item for sync tokens.
//!
//! After every change the expanded view is computed again and compared with
//! the last one: an item that is new or differs gets the new change number,
//! and an item that no longer exists (an EXDATE added, a series shortened or
//! deleted) stays as a `cancelled` tombstone, as Google lists deleted
//! instances in an increment.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::recur::{self, Start};

/// An API error as Google's error body says it.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, reason, message: message.into() }
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(400, "invalid", message)
    }
}

/// One item of the expanded view and the change that last touched it.
#[derive(Clone, Debug)]
pub struct Row {
    pub event: Value,
    pub seq: u64,
}

/// What the server stamps on a write.
pub struct Stamp {
    pub now: String,
    pub etag: String,
    pub organizer: String,
}

pub struct Calendar {
    pub id: String,
    pub summary: String,
    pub access_role: String,
    pub time_zone: String,
    pub primary: bool,
    pub resource_id: String,
    pub events: BTreeMap<String, Value>,
    pub rows: BTreeMap<String, Row>,
    /// The last change number.
    pub seq: u64,
    /// Bumped to invalidate every sync token issued before.
    pub generation: u64,
}

impl Calendar {
    pub fn new(id: &str, summary: &str, access_role: &str, time_zone: &str, primary: bool, resource_id: String) -> Self {
        Calendar {
            id: id.into(),
            summary: summary.into(),
            access_role: access_role.into(),
            time_zone: time_zone.into(),
            primary,
            resource_id,
            events: BTreeMap::new(),
            rows: BTreeMap::new(),
            seq: 1,
            generation: 0,
        }
    }

    pub fn writable(&self) -> bool {
        matches!(self.access_role.as_str(), "writer" | "owner")
    }

    fn zone(&self) -> Tz {
        self.time_zone.parse().unwrap_or(Tz::UTC)
    }

    /// The event or instance `id` as `events.get` answers (cancelled ones
    /// included).
    pub fn get(&self, id: &str) -> Option<Value> {
        self.events.get(id).or_else(|| self.rows.get(id).map(|r| &r.event)).cloned()
    }

    /// `events.insert`.
    pub fn insert(&mut self, mut body: Value, stamp: &Stamp, auto_id: String) -> Result<Value, ApiError> {
        let id = match body.get("id") {
            Some(Value::String(id)) => {
                check_id(id)?;
                id.clone()
            }
            Some(_) => return Err(ApiError::invalid("Invalid resource id value.")),
            None => auto_id,
        };
        if self.events.contains_key(&id) || self.rows.contains_key(&id) {
            return Err(ApiError::new(409, "duplicate", "The requested identifier already exists."));
        }
        for read_only in ["recurringEventId", "originalStartTime"] {
            if let Some(o) = body.as_object_mut() {
                o.remove(read_only);
            }
        }
        body["id"] = json!(id);
        body["kind"] = json!("calendar#event");
        body["created"] = json!(stamp.now);
        body["iCalUID"] = json!(format!("{id}@google.com"));
        body["sequence"] = json!(0);
        body["organizer"] = json!({"email": stamp.organizer, "self": true});
        body["creator"] = json!({"email": stamp.organizer, "self": true});
        self.store(id, body, None, stamp)
    }

    /// `events.patch`: the given fields replace the stored ones, objects
    /// merged member by member, `null` removing a field.
    pub fn patch(&mut self, id: &str, patch: &Value, stamp: &Stamp) -> Result<Value, ApiError> {
        let before = self.editable(id)?;
        let mut after = before.clone();
        merge(&mut after, patch);
        self.store(id.to_owned(), after, Some(&before), stamp)
    }

    /// `events.update`: the body replaces the event (server fields kept).
    pub fn update(&mut self, id: &str, mut body: Value, stamp: &Stamp) -> Result<Value, ApiError> {
        let before = self.editable(id)?;
        for keep in ["id", "kind", "created", "iCalUID", "organizer", "creator", "recurringEventId", "originalStartTime"] {
            match before.get(keep) {
                Some(v) => body[keep] = v.clone(),
                None => {
                    body.as_object_mut().map(|o| o.remove(keep));
                }
            }
        }
        if body.get("status").is_none() {
            body["status"] = json!("confirmed");
        }
        self.store(id.to_owned(), body, Some(&before), stamp)
    }

    /// `events.delete`: the event (or instance) stays, `cancelled`.
    pub fn delete(&mut self, id: &str, stamp: &Stamp) -> Result<(), ApiError> {
        let before = self.editable(id)?;
        if before.get("status").and_then(Value::as_str) == Some("cancelled") {
            return Err(ApiError::new(410, "deleted", "Resource has been deleted"));
        }
        let mut after = before.clone();
        after["status"] = json!("cancelled");
        self.store(id.to_owned(), after, Some(&before), stamp).map(|_| ())
    }

    /// The stored resource `id`, or a new exception made from the
    /// generated instance `id`.
    fn editable(&self, id: &str) -> Result<Value, ApiError> {
        if let Some(e) = self.events.get(id) {
            return Ok(e.clone());
        }
        match self.rows.get(id) {
            Some(row) if row.event.get("recurringEventId").is_some() && row.event.get("start").is_some() => Ok(row.event.clone()),
            _ => Err(ApiError::new(404, "notFound", "Not Found")),
        }
    }

    fn store(&mut self, id: String, mut event: Value, before: Option<&Value>, stamp: &Stamp) -> Result<Value, ApiError> {
        event["id"] = json!(id);
        event["etag"] = json!(stamp.etag);
        event["updated"] = json!(stamp.now);
        if event.get("status").is_none() {
            event["status"] = json!("confirmed");
        }
        if event.get("eventType").is_none() {
            event["eventType"] = json!("default");
        }
        if let Some(before) = before {
            let moved = ["start", "end", "recurrence", "status"].iter().any(|k| before.get(*k) != event.get(*k));
            let sequence = before.get("sequence").and_then(Value::as_i64).unwrap_or(0);
            event["sequence"] = json!(if moved { sequence + 1 } else { sequence });
        }
        self.validate(&event)?;
        let previous = self.events.insert(id.clone(), event.clone());
        if let Err(e) = self.expand() {
            // A rule this fake cannot expand: refuse the write, keep the calendar.
            match previous {
                Some(p) => self.events.insert(id, p),
                None => self.events.remove(&id),
            };
            return Err(ApiError::invalid(format!("Invalid recurrence rule. ({e})")));
        }
        Ok(event)
    }

    fn validate(&self, event: &Value) -> Result<(), ApiError> {
        if !matches!(event.get("status").and_then(Value::as_str), Some("confirmed" | "tentative" | "cancelled")) {
            return Err(ApiError::invalid("Invalid value for: status"));
        }
        if !matches!(event.get("transparency").and_then(Value::as_str), None | Some("opaque" | "transparent")) {
            return Err(ApiError::invalid("Invalid value for: transparency"));
        }
        let zone = self.zone();
        let start = event.get("start").ok_or_else(|| ApiError::new(400, "required", "Missing start time."))?;
        let end = event.get("end").ok_or_else(|| ApiError::new(400, "required", "Missing end time."))?;
        let (s, e) = (read_time(start, zone)?, read_time(end, zone)?);
        let empty = match (s, e) {
            (Start::Date(a), Start::Date(b)) => b <= a,
            (Start::At(a), Start::At(b)) => b < a,
            _ => return Err(ApiError::invalid("Start and end times must either both be date or both be dateTime.")),
        };
        if empty {
            return Err(ApiError::new(400, "timeRangeEmpty", "The specified time range is empty."));
        }
        let recurring = event.get("recurrence").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
        if recurring && matches!(s, Start::At(_)) && start.get("timeZone").is_none() {
            return Err(ApiError::invalid("Missing time zone definition for start time."));
        }
        Ok(())
    }

    /// Computes the expanded view again; `true` if anything changed (then
    /// under a new change number).
    pub fn refresh(&mut self) -> bool {
        let now = self.expand().expect("stored events were checked on write");
        let next = self.seq + 1;
        let mut changed = false;
        for (id, event) in &now {
            if self.rows.get(id).is_none_or(|r| r.event != *event) {
                self.rows.insert(id.clone(), Row { event: event.clone(), seq: next });
                changed = true;
            }
        }
        let gone: Vec<String> = self.rows.keys().filter(|id| !now.contains_key(*id)).cloned().collect();
        for id in gone {
            let row = &self.rows[&id];
            if is_cancelled(&row.event) {
                continue;
            }
            let mut tomb = json!({"kind": "calendar#event", "id": id, "status": "cancelled"});
            for k in ["recurringEventId", "originalStartTime"] {
                if let Some(v) = row.event.get(k) {
                    tomb[k] = v.clone();
                }
            }
            self.rows.insert(id, Row { event: tomb, seq: next });
            changed = true;
        }
        if changed {
            self.seq = next;
        }
        changed
    }

    /// What `singleEvents=true` lists now, by id.
    fn expand(&self) -> Result<BTreeMap<String, Value>, String> {
        let mut out = BTreeMap::new();
        for (id, event) in &self.events {
            if let Some(master) = event.get("recurringEventId").and_then(Value::as_str) {
                if self.events.contains_key(master) {
                    continue; // listed in its master's place
                }
            }
            let recurrence: Vec<String> = event
                .get("recurrence")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if recurrence.is_empty() {
                out.insert(id.clone(), event.clone());
                continue;
            }
            let zone: Tz = event["start"].get("timeZone").and_then(Value::as_str).and_then(|z| z.parse().ok()).unwrap_or(self.zone());
            let (first, last) =
                (read_time(&event["start"], zone).map_err(|e| e.message)?, read_time(&event["end"], zone).map_err(|e| e.message)?);
            for start in recur::expand(first, zone, &recurrence)? {
                let instance_id = format!("{id}_{}", suffix(start));
                let mut row = match self.events.get(&instance_id) {
                    Some(exception) => exception.clone(),
                    None => {
                        let mut i = event.clone();
                        i.as_object_mut().map(|o| o.remove("recurrence"));
                        i["id"] = json!(instance_id);
                        i["recurringEventId"] = json!(id);
                        i["originalStartTime"] = time_json(start, zone, &event["start"]);
                        i["start"] = time_json(start, zone, &event["start"]);
                        i["end"] = time_json(shift(start, first, last), zone, &event["end"]);
                        i
                    }
                };
                if is_cancelled(event) {
                    row["status"] = json!("cancelled");
                }
                out.insert(instance_id, row);
            }
        }
        Ok(out)
    }

    /// The row's span as instants (all-day dates at UTC midnight), for
    /// `timeMin`/`timeMax`; `None` for a tombstone.
    pub fn span(&self, row: &Value) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let zone = self.zone();
        let at = |v: &Value| match read_time(v, zone).ok()? {
            Start::At(t) => Some(t),
            Start::Date(d) => Some(d.and_hms_opt(0, 0, 0)?.and_utc()),
        };
        Some((at(row.get("start")?)?, at(row.get("end")?)?))
    }
}

pub fn is_cancelled(event: &Value) -> bool {
    event.get("status").and_then(Value::as_str) == Some("cancelled")
}

/// Event.id rules: 5 to 1024 characters of base32hex (`a-v`, `0-9`).
fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = (5..=1024).contains(&id.len()) && id.chars().all(|c| matches!(c, 'a'..='v' | '0'..='9'));
    if ok { Ok(()) } else { Err(ApiError::invalid("Invalid resource id value.")) }
}

/// An EventDateTime: `date`, or `dateTime` with an offset (or without one,
/// in its `timeZone` or else the calendar's).
fn read_time(v: &Value, zone: Tz) -> Result<Start, ApiError> {
    if let Some(d) = v.get("date").and_then(Value::as_str) {
        return NaiveDate::parse_from_str(d, "%Y-%m-%d").map(Start::Date).map_err(|_| ApiError::invalid(format!("Invalid date {d:?}")));
    }
    let text = v.get("dateTime").and_then(Value::as_str).ok_or_else(|| ApiError::new(400, "required", "Missing time."))?;
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Start::At(t.with_timezone(&Utc)));
    }
    let zone: Tz = v.get("timeZone").and_then(Value::as_str).and_then(|z| z.parse().ok()).unwrap_or(zone);
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .map(|local| Start::At(recur::from_local(zone, local)))
        .map_err(|_| ApiError::invalid(format!("Invalid dateTime {text:?}")))
}

/// `start` moved by the series' first instance's length (exact for timed,
/// in days for all-day).
fn shift(start: Start, first: Start, last: Start) -> Start {
    match (start, first, last) {
        (Start::At(s), Start::At(f), Start::At(l)) => Start::At(s + (l - f)),
        (Start::Date(s), Start::Date(f), Start::Date(l)) => Start::Date(s + Duration::days((l - f).num_days())),
        _ => start,
    }
}

fn time_json(t: Start, zone: Tz, like: &Value) -> Value {
    match t {
        Start::Date(d) => json!({"date": d.format("%Y-%m-%d").to_string()}),
        Start::At(t) => {
            let mut v = json!({"dateTime": t.with_timezone(&zone).to_rfc3339()});
            if let Some(z) = like.get("timeZone") {
                v["timeZone"] = z.clone();
            }
            v
        }
    }
}

/// Google's instance id suffix: `20260302T080000Z`, or `20260302` all-day.
fn suffix(t: Start) -> String {
    match t {
        Start::Date(d) => d.format("%Y%m%d").to_string(),
        Start::At(t) => t.format("%Y%m%dT%H%M%SZ").to_string(),
    }
}

fn merge(target: &mut Value, patch: &Value) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        *target = patch.clone();
        return;
    };
    for (k, v) in p {
        if matches!(k.as_str(), "id" | "kind" | "etag" | "created" | "updated" | "iCalUID" | "recurringEventId" | "originalStartTime") {
            continue;
        }
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(_) if t.get(k).is_some_and(Value::is_object) => merge(t.get_mut(k).expect("checked"), v),
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}
