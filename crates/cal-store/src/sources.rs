//! A provider's external ICS calendars: read-only imports whose busy time
//! blocks slots (SEMANTICS.md §6). This module connects, lists, resyncs and
//! disconnects them; polling and parsing are the poller's.
//!
//! A private ICS URL is a bearer credential (Google's "secret address",
//! Outlook's published link): it is stored once, used by the poller, and
//! never returned, logged or put into an event after [`connect_ics`] —
//! callers see only [`ExternalSource::url_hint`]. Duplicates are found by
//! `url_hash`, the SHA-256 of the normalized URL.

use cal_core::time::Instant;
use cal_core::url_guard::{self, UrlError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use url::Url;

use crate::db::{Begin, Executor};
use crate::error::{RowProblem, StoreError, ValidationProblem};
use crate::outbox;

/// Most external calendars one provider may connect.
pub const MAX_SOURCES_PER_USER: i64 = 10;
/// Longest URL accepted, in characters (before and after normalization).
pub const MAX_URL_CHARS: usize = 2048;
/// Longest label accepted, in characters.
pub const MAX_LABEL_CHARS: usize = 200;

/// An external calendar was connected (payload without the URL).
pub const SOURCE_CONNECTED: &str = "cal.ics.source.connected";
/// An external calendar was disconnected; its busy time is gone.
pub const SOURCE_DISCONNECTED: &str = "cal.ics.source.disconnected";

const TABLE: &str = "cal.external_source";

const SOURCE_COLUMNS: &str = "source_id, user_id, label, url, status, last_polled_at, last_success_at, last_error,
     next_poll_at, consecutive_failures, warning_count, created_at";

/// Why a calendar URL was refused. The texts never quote the URL: it may
/// carry its secret anywhere after the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    /// Not an absolute URL at all.
    #[error("is not an absolute URL")]
    NotAUrl,
    /// A scheme other than `https`, `http`, `webcal` or `webcals`.
    #[error("must start with https://, http:// or webcal://, not {scheme}:")]
    Scheme {
        /// The scheme given, lower-cased.
        scheme: String,
    },
    /// No host to fetch from.
    #[error("must name a host")]
    NoHost,
    /// `user:password@` in the URL. Calendar services put their secret in
    /// the path or query; credentials in the authority would be one more
    /// place a secret hides, and are refused rather than half-supported.
    #[error("must not contain a user name or password")]
    Credentials,
    /// A local name or an IP address outside the public Internet
    /// (`cal_core::url_guard`, the poller's own policy): the poller fetches
    /// from inside our network, so such a URL could reach internal services
    /// (SSRF). This is the early, friendly refusal; the poller checks the
    /// same again, and the addresses a name resolves to.
    #[error("must not point to a local or private network address")]
    PrivateHost,
}

impl From<UrlError> for UrlProblem {
    fn from(e: UrlError) -> Self {
        match e {
            UrlError::NotAUrl => UrlProblem::NotAUrl,
            UrlError::Scheme { scheme } => UrlProblem::Scheme { scheme },
            UrlError::NoHost => UrlProblem::NoHost,
            UrlError::Credentials => UrlProblem::Credentials,
            UrlError::LocalName { .. } | UrlError::PrivateAddress { .. } => UrlProblem::PrivateHost,
        }
    }
}

/// A calendar URL as stored: normalized, so that the same calendar given
/// twice hashes the same.
#[derive(Clone, PartialEq, Eq)]
pub struct CalendarUrl(Url);

impl std::fmt::Debug for CalendarUrl {
    /// Only the hint: a `{:?}` in a log line must not leak the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CalendarUrl").field(&url_hint(&self.0)).finish()
    }
}

impl CalendarUrl {
    /// Validates user input: `https`, `http` or `webcal(s)` (stored as
    /// `https`, which is what a calendar app fetches for `webcal://`), then
    /// the poller's policy (`cal_core::url_guard::check_url`: no
    /// credentials, a public host), at most [`MAX_URL_CHARS`]. The fragment
    /// is dropped (it is never sent); scheme and host are lower-cased and a
    /// default port removed by the WHATWG parser the HTTP client uses too.
    pub fn parse(input: &str) -> Result<Self, ValidationProblem> {
        let input = input.trim();
        if input.is_empty() {
            return Err(ValidationProblem::Empty);
        }
        let len = input.chars().count();
        if len > MAX_URL_CHARS {
            return Err(ValidationProblem::TooManyChars { len, max: MAX_URL_CHARS });
        }
        let rewritten;
        let input = match strip_prefix_ignore_case(input, "webcal://")
            .or_else(|| strip_prefix_ignore_case(input, "webcals://"))
        {
            Some(rest) => {
                rewritten = format!("https://{rest}");
                rewritten.as_str()
            }
            None => input,
        };
        let mut url = url_guard::check_url(input).map_err(UrlProblem::from)?.into_url();
        url.set_fragment(None);
        // Percent-encoding can lengthen it.
        let len = url.as_str().chars().count();
        if len > MAX_URL_CHARS {
            return Err(ValidationProblem::TooManyChars { len, max: MAX_URL_CHARS });
        }
        Ok(CalendarUrl(url))
    }

    /// The normalized URL: the secret. For the poller and the database only.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// SHA-256 of [`Self::expose`]: `cal.external_source.url_hash`.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_str().as_bytes()).into()
    }

    /// `https://calendar.google.com/…`: safe to show and log.
    pub fn hint(&self) -> String {
        url_hint(&self.0)
    }

    /// The host, lower-cased.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn url_hint(url: &Url) -> String {
    format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or_default())
}

/// How the poller treats a source (`cal.external_source.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    /// Polled when due. A new source is `active` and never polled
    /// (`last_polled_at` is `None`) until the poller first gets to it.
    Active,
    /// Not polled.
    Paused,
    /// Failing; still polled with backoff, its last good data kept.
    Error,
}

impl SourceStatus {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(SourceStatus::Active),
            "paused" => Some(SourceStatus::Paused),
            "error" => Some(SourceStatus::Error),
            _ => None,
        }
    }
}

/// An external calendar as callers see it: everything but the URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalSource {
    /// `src_…`.
    pub source_id: String,
    /// The provider.
    pub user_id: String,
    /// The provider's name for it.
    pub label: Option<String>,
    /// Scheme and host only, e.g. `https://calendar.google.com/…`.
    pub url_hint: String,
    /// See [`SourceStatus`].
    pub status: SourceStatus,
    /// When the poller last tried.
    pub last_polled_at: Option<Instant>,
    /// When a poll last succeeded.
    pub last_success_at: Option<Instant>,
    /// The last poll's error, fit for the provider.
    pub last_error: Option<String>,
    /// When it is due next.
    pub next_poll_at: Instant,
    /// Failed polls since the last success (drives the backoff).
    pub consecutive_failures: i32,
    /// Warnings of the last successful poll (SEMANTICS.md §6).
    pub warning_count: i32,
    /// When it was connected.
    pub created_at: Instant,
}

fn source(row: &Row) -> Result<ExternalSource, StoreError> {
    let id: String = row.try_get("source_id").map_err(|e| StoreError::InvalidRow {
        table: TABLE,
        id: String::new(),
        column: "source_id",
        problem: RowProblem::Decode(e),
    })?;
    let fail = |column: &'static str, problem: RowProblem| StoreError::InvalidRow {
        table: TABLE,
        id: id.clone(),
        column,
        problem,
    };
    macro_rules! get {
        ($col:literal) => {
            row.try_get($col).map_err(|e| fail($col, RowProblem::Decode(e)))?
        };
        ($col:literal as $ty:ty) => {
            row.try_get::<_, $ty>($col).map_err(|e| fail($col, RowProblem::Decode(e)))?
        };
    }
    let instant = |t: DateTime<Utc>| Instant::from_chrono(t);
    let status: String = get!("status");
    let url: String = get!("url");
    // The stored URL was normalized on the way in; parse it only for the hint.
    let url_hint = match Url::parse(&url) {
        Ok(u) if u.host_str().is_some() => url_hint(&u),
        _ => return Err(StoreError::corrupt(TABLE, &id, "url")),
    };
    Ok(ExternalSource {
        user_id: get!("user_id"),
        label: get!("label"),
        url_hint,
        status: SourceStatus::parse(&status).ok_or_else(|| {
            fail("status", RowProblem::NotOneOf { allowed: "active, paused, error", got: status.clone() })
        })?,
        last_polled_at: get!("last_polled_at" as Option<DateTime<Utc>>).map(instant),
        last_success_at: get!("last_success_at" as Option<DateTime<Utc>>).map(instant),
        last_error: get!("last_error"),
        next_poll_at: instant(get!("next_poll_at")),
        consecutive_failures: get!("consecutive_failures"),
        warning_count: get!("warning_count"),
        created_at: instant(get!("created_at")),
        source_id: id.clone(),
    })
}

fn not_found(source_id: &str) -> StoreError {
    StoreError::NotFound { entity: "external_source", id: source_id.to_owned() }
}

fn check_label(label: Option<&str>) -> Result<Option<&str>, StoreError> {
    let Some(label) = label.map(str::trim).filter(|l| !l.is_empty()) else { return Ok(None) };
    let len = label.chars().count();
    if len > MAX_LABEL_CHARS {
        return Err(StoreError::validation("label", ValidationProblem::TooManyChars { len, max: MAX_LABEL_CHARS }));
    }
    Ok(Some(label))
}

/// Connects the ICS calendar at `url` for `user_id`, due for its first poll
/// at `now`.
///
/// `url` is user input (see [`CalendarUrl::parse`]); a refusal is
/// [`StoreError::Validation`] on field `url` (or `label`, over
/// [`MAX_LABEL_CHARS`]; an empty label is none). Connecting a URL the user
/// already has returns that source unchanged (same normalized URL, so
/// `webcal://` and `https://` are one); a new one past
/// [`MAX_SOURCES_PER_USER`] is [`StoreError::Limit`] (`RATE_LIMITED`).
/// A new source writes `cal.ics.source.connected` (no URL, only its host)
/// and bumps the provider's version.
pub async fn connect_ics(
    db: &mut impl Begin,
    user_id: &str,
    url: &str,
    label: Option<&str>,
    now: Instant,
) -> Result<ExternalSource, StoreError> {
    if user_id.trim().is_empty() {
        return Err(StoreError::validation("user_id", ValidationProblem::Empty));
    }
    let url = CalendarUrl::parse(url).map_err(|p| StoreError::validation("url", p))?;
    let label = check_label(label)?;
    let hash = url.hash();
    let now_utc = now.to_chrono();

    let tx = db.begin().await?;
    // First: it locks the provider's counter, so the duplicate check and the
    // count below cannot race another connect of the same provider. An early
    // return drops `tx`, which rolls the bump back.
    let version = outbox::bump_version(&tx, user_id).await?;
    let existing = tx
        .query(
            &format!("select {SOURCE_COLUMNS} from cal.external_source where user_id = $1 and url_hash = $2"),
            &[&user_id, &&hash[..]],
        )
        .await?;
    if let Some(row) = existing.first() {
        return source(row);
    }
    let count: i64 =
        tx.query("select count(*) from cal.external_source where user_id = $1", &[&user_id]).await?[0].get(0);
    if count >= MAX_SOURCES_PER_USER {
        return Err(StoreError::Limit { what: "external calendars", max: MAX_SOURCES_PER_USER });
    }
    let rows = tx
        .query(
            &format!(
                "insert into cal.external_source (source_id, user_id, url, url_hash, label, status,
                                                  next_poll_at, created_at, updated_at)
                 values ('src_' || replace(gen_random_uuid()::text, '-', ''), $1, $2, $3, $4, 'active', $5, $5, $5)
                 returning {SOURCE_COLUMNS}"
            ),
            &[&user_id, &url.expose(), &&hash[..], &label, &now_utc],
        )
        .await?;
    let stored = source(&rows[0])?;
    // The label is the provider's free text: consumers read it by id.
    let payload = json!({
        "source_id": stored.source_id,
        "user_id": user_id,
        "host": url.host(),
        "version": version,
    });
    outbox::enqueue(&tx, SOURCE_CONNECTED, user_id, &payload).await?;
    tx.commit().await?;
    tracing::info!(source_id = %stored.source_id, user_id, host = url.host(), "external calendar connected");
    Ok(stored)
}

/// Disconnects a source of `user_id`: the row and its imported busy time go
/// (`external_event` rows cascade), `cal.ics.source.disconnected` is
/// written and the version bumped, since free time changed. Another user's
/// source, or none, is [`StoreError::NotFound`].
pub async fn disconnect_ics(db: &mut impl Begin, user_id: &str, source_id: &str) -> Result<(), StoreError> {
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    let rows = tx
        .query(
            "delete from cal.external_source where source_id = $1 and user_id = $2 returning source_id",
            &[&source_id, &user_id],
        )
        .await?;
    if rows.is_empty() {
        return Err(not_found(source_id));
    }
    let payload = json!({ "source_id": source_id, "user_id": user_id, "version": version });
    outbox::enqueue(&tx, SOURCE_DISCONNECTED, user_id, &payload).await?;
    tx.commit().await?;
    tracing::info!(source_id, user_id, "external calendar disconnected");
    Ok(())
}

/// Makes a source of `user_id` due at `now` and returns it: the backoff is
/// reset (`consecutive_failures` 0, `error` back to `active`) and the
/// conditional-GET state and content hash are cleared, so the next poll
/// fetches and parses the body in full — what a provider asking for a
/// resync expects. A `paused` source stays paused. Busy time does not change
/// until the poll, so no event and no version bump. Another user's source is
/// [`StoreError::NotFound`].
pub async fn resync_ics(
    db: &impl Executor,
    user_id: &str,
    source_id: &str,
    now: Instant,
) -> Result<ExternalSource, StoreError> {
    let rows = db
        .query(
            &format!(
                "update cal.external_source
                    set next_poll_at = $3, consecutive_failures = 0,
                        status = case when status = 'error' then 'active' else status end,
                        etag = null, last_modified = null, content_hash = null, updated_at = $3
                  where source_id = $1 and user_id = $2
                 returning {SOURCE_COLUMNS}"
            ),
            &[&source_id, &user_id, &now.to_chrono()],
        )
        .await?;
    rows.first().map(source).unwrap_or_else(|| Err(not_found(source_id)))
}

/// The sources of `user_id`, oldest first.
pub async fn list_ics(db: &impl Executor, user_id: &str) -> Result<Vec<ExternalSource>, StoreError> {
    db.query(
        &format!("select {SOURCE_COLUMNS} from cal.external_source where user_id = $1 order by created_at, source_id"),
        &[&user_id],
    )
    .await?
    .iter()
    .map(source)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_hint() {
        let url = CalendarUrl::parse("https://calendar.example.com/private-s3cr3t/basic.ics").unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("https://calendar.example.com/…"), "{shown}");
    }

    #[test]
    fn equivalent_spellings_hash_the_same() {
        let a = CalendarUrl::parse("webcal://Calendar.Example.com/x.ics#frag").unwrap();
        let b = CalendarUrl::parse("  https://calendar.example.com:443/x.ics ").unwrap();
        assert_eq!(a.expose(), "https://calendar.example.com/x.ics");
        assert_eq!(a.hash(), b.hash());
    }
}
