//! `fn-feed`: the personal ICS feed (SEMANTICS.md §7) behind a Lambda
//! Function URL, `GET /feeds/{token}.ics`.
//!
//! * A token that is malformed, unknown or revoked gets one and the same
//!   `404`, byte for byte: the answer never tells which.
//! * A found feed answers `200` with the provider's confirmed events over a
//!   horizon around today, as `text/calendar`, with an `ETag` made of the
//!   provider's version, the feed id, the horizon's day and the settings that
//!   shape the body. The version is bumped in the same transaction as every
//!   `cal.*` change, so the tag changes when anything changes, and daily as
//!   the horizon moves.
//! * A request whose `If-None-Match` names the current tag gets `304` after
//!   two indexed lookups (token, version): no event is loaded and no body is
//!   built. `HEAD` answers the headers of `GET` just as cheaply.
//! * The body is written in one pass into one `String` allocated at its final
//!   size ([`cal_core::ics_out::feed_body`]), and that string is the
//!   response's body: it is never copied on our side.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;

use aws_lambda_events::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use aws_lambda_events::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use cal_core::ics_out::{self, EventInvite};
use cal_core::time::Instant;
use cal_store::feeds::{self, FeedVersion};
use cal_aws::{ConfigError, Env};
use cal_store::{FeedOwner, StoreError};
use chrono::NaiveDate;
use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};

/// Where feeds live: `/feeds/{token}.ics`.
pub const PATH_PREFIX: &str = "/feeds/";
/// The feed's file extension in its URL.
pub const PATH_SUFFIX: &str = ".ics";
/// `Cache-Control` of a feed (`200`, `304`): one subscriber's private data,
/// fresh for five minutes, then revalidated with `If-None-Match`.
pub const CACHE_FEED: &str = "private, max-age=300";
/// `Content-Type` of a feed.
pub const CALENDAR_TYPE: &str = "text/calendar; charset=utf-8";
/// Bumped when the body's format changes, so every tag changes with it.
const FORMAT: u32 = 1;
const SECS_PER_DAY: i64 = 86_400;
/// A `Cache-Control` for answers nobody should keep.
const NO_STORE: &str = "no-store";

/// The feed's settings: everything that shapes a body (and so its tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSettings {
    /// Whole days before today the feed reaches back (`FEED_PAST_DAYS`, 30).
    pub past_days: u16,
    /// Whole days after today it reaches forward (`FEED_FUTURE_DAYS`, 365).
    pub future_days: u16,
    /// The calendar's name in subscribers' lists (`FEED_CALENDAR_NAME`, "Bookings").
    pub calendar_name: String,
}

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings { past_days: 30, future_days: 365, calendar_name: "Bookings".into() }
    }
}

/// The horizon's bound on either side: ten years is beyond any booking window.
const MAX_DAYS: u16 = 3660;

impl FeedSettings {
    /// The days `[from, to)` a feed served on the UTC day of `now` covers:
    /// from the start of the day `past_days` ago to the end of the day
    /// `future_days` ahead. It moves at UTC midnight, when the tag changes.
    pub fn horizon(&self, now: Instant) -> Horizon {
        let day_start = now.unix().div_euclid(SECS_PER_DAY) * SECS_PER_DAY;
        Horizon {
            day: Instant::from_unix(day_start).to_chrono().date_naive(),
            from: Instant::from_unix(day_start - i64::from(self.past_days) * SECS_PER_DAY),
            to: Instant::from_unix(day_start + (i64::from(self.future_days) + 1) * SECS_PER_DAY),
        }
    }
}

/// The span one day's feed covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    /// The UTC day it was computed for.
    pub day: NaiveDate,
    /// First instant covered.
    pub from: Instant,
    /// First instant no longer covered.
    pub to: Instant,
}

/// Configuration from the environment, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `DB_POOL_SIZE` (default 2). The database itself is `DATABASE_URL` or
    /// the secret in `DATABASE_SECRET_ARN` (`cal_aws::database::pool`).
    pub pool_size: usize,
    /// The feed's settings.
    pub feed: FeedSettings,
}

impl Config {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let defaults = FeedSettings::default();
        let name = |n: &str| {
            if plain_name(n) {
                Ok(n.to_owned())
            } else {
                Err("a non-empty name without \\ ; , or control characters".to_owned())
            }
        };
        Ok(Config {
            pool_size: cal_aws::config::db_pool_size(env)?,
            feed: FeedSettings {
                past_days: env.in_range("FEED_PAST_DAYS", defaults.past_days, 0..=MAX_DAYS)?,
                future_days: env.in_range("FEED_FUTURE_DAYS", defaults.future_days, 0..=MAX_DAYS)?,
                calendar_name: env.parse_with("FEED_CALENDAR_NAME", defaults.calendar_name, name)?,
            },
        })
    }
}

/// A calendar name every reader shows as written. RFC 5545 §3.8.8.2 makes an
/// X- property's value TEXT, so `X-WR-CALNAME` is escaped like any text; but
/// readers take it raw (Python icalendar and ical.js both return `a\\, b` for
/// `a, b`), so the characters escaping would touch are refused up front.
pub fn plain_name(name: &str) -> bool {
    !name.trim().is_empty() && !name.chars().any(|c| matches!(c, '\\' | ';' | ',') || c.is_control())
}

/// What the handler runs with: built once per process, borrowed per request.
pub struct Deps {
    /// The database.
    pub pool: Pool,
    /// The feed's settings.
    pub feed: FeedSettings,
    /// The current time (tests move it).
    pub clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

/// The system clock, in whole seconds.
pub fn system_clock() -> Instant {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    Instant::from_unix(secs)
}

/// The token in a feed path (`/feeds/{token}.ics`), or `None` for any other
/// path. Whether it is a well-formed token is the store's call
/// ([`feeds::feed_for_token`]), so there is one definition of a token.
pub fn token_from_path(path: &str) -> Option<&str> {
    path.strip_prefix(PATH_PREFIX)?.strip_suffix(PATH_SUFFIX).filter(|t| !t.is_empty() && !t.contains('/'))
}

/// The strong validator of one feed's body: a function of everything the
/// body depends on — the provider's version (so any change of theirs), the
/// feed, the horizon's day and the settings — and nothing else. 128 bits of
/// SHA-256, quoted (RFC 9110 §8.8.3).
pub fn etag(feed_id: &str, version: i64, day: NaiveDate, settings: &FeedSettings) -> String {
    let mut h = Sha256::new();
    for part in [
        FORMAT.to_string().as_bytes(),
        feed_id.as_bytes(),
        version.to_string().as_bytes(),
        day.to_string().as_bytes(),
        settings.past_days.to_string().as_bytes(),
        settings.future_days.to_string().as_bytes(),
        settings.calendar_name.as_bytes(),
    ] {
        // Length-prefixed, so no two different inputs hash the same bytes.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for b in &digest[..16] {
        tag.push(char::from_digit(u32::from(b >> 4), 16).expect("a nibble"));
        tag.push(char::from_digit(u32::from(b & 0xf), 16).expect("a nibble"));
    }
    tag.push('"');
    tag
}

/// Whether `If-None-Match` names `tag` (RFC 9110 §13.1.2: weak comparison,
/// `*` matches any current representation, several headers or a list).
pub fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag
    })
}

/// Why a request got what it got, for the log only (never the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Feed,
    NotModified,
    Head,
    NotFound,
    MethodNotAllowed,
    Unavailable,
}

/// Handles one Function URL request. Every outcome is an HTTP answer, so
/// this cannot fail: a database that is down is a `503` (logged here, never
/// described to the caller).
pub async fn handle(deps: &Deps, req: LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
    let started = std::time::Instant::now();
    let method = req.request_context.http.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let head = method == "HEAD";
    let (outcome, mut response, detail) = if method != "GET" && !head {
        (Outcome::MethodNotAllowed, method_not_allowed(), Detail::default())
    } else {
        let path = req.raw_path.as_deref().or(req.request_context.http.path.as_deref()).unwrap_or("");
        match token_from_path(path) {
            None => (Outcome::NotFound, not_found(), Detail::default()),
            Some(token) => match serve(deps, token, &req.headers, head).await {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::error!(error = %e, "feed unavailable");
                    (Outcome::Unavailable, unavailable(), Detail::default())
                }
            },
        }
    };
    if head {
        response.body = None;
    }
    // The path holds the secret: it is never logged, the feed id is.
    tracing::info!(
        outcome = ?outcome,
        status = response.status_code,
        feed_id = detail.feed_id.as_deref(),
        events = detail.events,
        bytes = detail.bytes,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "feed request"
    );
    response
}

/// What the log line says about a found feed.
#[derive(Default)]
struct Detail {
    feed_id: Option<String>,
    events: Option<usize>,
    bytes: Option<usize>,
}

async fn serve(
    deps: &Deps,
    token: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<(Outcome, LambdaFunctionUrlResponse, Detail), StoreError> {
    let conn = deps.pool.get().await.map_err(StoreError::from)?;
    let Some(owner) = feeds::feed_for_token(&conn, token).await? else {
        return Ok((Outcome::NotFound, not_found(), Detail::default()));
    };
    // The version is read before the events: a change committed in between
    // can only make the body newer than its tag, and the next revalidation
    // then gets a 200 — never an old body under a new tag.
    let version = feeds::feed_version(&conn, &owner.user_id).await?;
    let horizon = deps.feed.horizon((deps.clock)());
    let tag = etag(&owner.feed_id, version.version, horizon.day, &deps.feed);
    let mut detail = Detail { feed_id: Some(owner.feed_id.clone()), ..Detail::default() };
    if none_match(headers, &tag) {
        return Ok((Outcome::NotModified, feed_response(304, &tag, None), detail));
    }
    if head {
        return Ok((Outcome::Head, feed_response(200, &tag, None), detail));
    }
    let records = feeds::feed_events(&conn, &owner.user_id, horizon.from, horizon.to).await?;
    drop(conn);
    let invites: Vec<EventInvite> = records.iter().map(|r| r.invite()).collect();
    drop(records);
    let body = ics_out::feed_body(&deps.feed.calendar_name, &invites, dtstamp(&owner, version));
    detail.events = Some(invites.len());
    detail.bytes = Some(body.len());
    Ok((Outcome::Feed, feed_response(200, &tag, Some(body)), detail))
}

/// Every VEVENT's DTSTAMP: when the provider's data last changed (or the
/// feed was created, if it never did). With `METHOD` present DTSTAMP is when
/// the calendar object was created (RFC 5545 §3.8.7.2), and this body came to
/// be at that change; taking it rather than the request's time keeps the
/// body a function of its tag, as a strong validator requires.
fn dtstamp(owner: &FeedOwner, version: FeedVersion) -> Instant {
    version.changed_at.unwrap_or(owner.created_at)
}

fn response(status: i64, headers: &[(HeaderName, &'static str)], body: Option<String>) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status;
    for (name, value) in headers {
        r.headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    r.headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r.body = body;
    r.is_base64_encoded = false;
    r
}

/// `200` or `304` of a found feed: the tag and caching on both (RFC 9110
/// §15.4.5: a 304 carries the ETag and Cache-Control a 200 would).
fn feed_response(status: i64, tag: &str, body: Option<String>) -> LambdaFunctionUrlResponse {
    let mut r = response(status, &[(CACHE_CONTROL, CACHE_FEED)], body);
    r.headers.insert(ETAG, HeaderValue::from_str(tag).expect("a quoted hex tag is a header value"));
    if status == 200 {
        r.headers.insert(CONTENT_TYPE, HeaderValue::from_static(CALENDAR_TYPE));
    }
    r
}

/// The one `404`: malformed, unknown and revoked tokens and foreign paths
/// alike.
pub fn not_found() -> LambdaFunctionUrlResponse {
    response(
        404,
        &[(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, NO_STORE)],
        Some("Not Found\n".to_owned()),
    )
}

fn method_not_allowed() -> LambdaFunctionUrlResponse {
    response(
        405,
        &[(ALLOW, "GET, HEAD"), (CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, NO_STORE)],
        Some("Method Not Allowed\n".to_owned()),
    )
}

fn unavailable() -> LambdaFunctionUrlResponse {
    let mut r = response(
        503,
        &[(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, NO_STORE)],
        Some("Service Unavailable\n".to_owned()),
    );
    r.headers.insert(HeaderName::from_static("retry-after"), HeaderValue::from_static("30"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_only_from_feed_paths() {
        let t = "ab".repeat(32);
        assert_eq!(token_from_path(&format!("/feeds/{t}.ics")), Some(t.as_str()));
        for other in ["/feeds/.ics", "/feeds/x", "/feed/x.ics", "/feeds/a/b.ics", "/", ""] {
            assert_eq!(token_from_path(other), None, "{other}");
        }
    }

    #[test]
    fn config_defaults_and_named_errors() {
        let env = Env::from_pairs;
        let c = Config::from_env(&env(&[])).unwrap();
        assert_eq!((c.feed.past_days, c.feed.future_days, c.pool_size), (30, 365, 2));
        let e = Config::from_env(&env(&[("DATABASE_URL", "x"), ("FEED_FUTURE_DAYS", "-1")])).unwrap_err();
        assert!(e.to_string().starts_with("FEED_FUTURE_DAYS must be"), "{e}");
        let c = Config::from_env(&env(&[("DATABASE_URL", "x"), ("FEED_PAST_DAYS", "0"), ("FEED_FUTURE_DAYS", "7")]))
            .unwrap();
        assert_eq!((c.feed.past_days, c.feed.future_days), (0, 7));
        let e = Config::from_env(&env(&[("DATABASE_URL", "x"), ("FEED_CALENDAR_NAME", "Ana, studio")])).unwrap_err();
        assert!(e.to_string().starts_with("FEED_CALENDAR_NAME must be"), "{e}");
        assert!(plain_name("Ana's bookings (studio)") && !plain_name(" ") && !plain_name("a;b"));
    }

    #[test]
    fn the_horizon_is_whole_utc_days_around_today() {
        let s = FeedSettings { past_days: 1, future_days: 2, ..FeedSettings::default() };
        let h = s.horizon(Instant::parse("2030-03-01T23:59:59Z").unwrap());
        assert_eq!(h.day.to_string(), "2030-03-01");
        assert_eq!((h.from.rfc3339(), h.to.rfc3339()), ("2030-02-28T00:00:00Z".into(), "2030-03-04T00:00:00Z".into()));
    }

    #[test]
    fn the_tag_changes_with_each_input_and_matches_weakly() {
        let s = FeedSettings::default();
        let day = NaiveDate::from_ymd_opt(2030, 3, 1).unwrap();
        let tag = etag("feed_1", 3, day, &s);
        assert_eq!(tag.len(), 34);
        assert_eq!(tag, etag("feed_1", 3, day, &s));
        assert_ne!(tag, etag("feed_1", 4, day, &s));
        assert_ne!(tag, etag("feed_2", 3, day, &s));
        assert_ne!(tag, etag("feed_1", 3, day.succ_opt().unwrap(), &s));
        assert_ne!(tag, etag("feed_1", 3, day, &FeedSettings { future_days: 30, ..s.clone() }));
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(none_match(&headers(&tag), &tag));
        assert!(none_match(&headers(&format!("\"x\", W/{tag}")), &tag));
        assert!(none_match(&headers("*"), &tag));
        assert!(!none_match(&headers("\"x\""), &tag));
        assert!(!none_match(&HeaderMap::new(), &tag));
    }
}
