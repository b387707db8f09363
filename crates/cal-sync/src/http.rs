//! What both service clients do with an HTTP answer that is not a success:
//! read `Retry-After`, and turn a status (and the error body) into the
//! [`SyncError`] that says what the caller should do.
//!
//! Shared by [`crate::google`] and [`crate::microsoft`]; service-specific
//! answers (Google's `409 duplicate` on an idempotent insert, Graph's
//! `syncStateNotFound`) are read by the client before it falls back here.

use std::time::Duration;

use cal_core::time::Instant;
use chrono::DateTime;

use crate::SyncError;

/// The wait when a service rate-limits without saying for how long
/// (Google's `403 rateLimitExceeded` carries no `Retry-After`).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The longest wait taken from a `Retry-After`: a larger value (or a date
/// far ahead) is read as this, so one odd header cannot park a calendar
/// for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How long to wait from `now`, per a `Retry-After` header (RFC 9110
/// §10.2.3): delay-seconds or an HTTP date. Absent or unreadable:
/// [`DEFAULT_RETRY_AFTER`]; a date already past: one second; anything
/// beyond [`MAX_RETRY_AFTER`]: that.
pub fn retry_after(value: Option<&str>, now: Instant) -> Duration {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return DEFAULT_RETRY_AFTER;
    };
    let secs = if let Ok(secs) = value.parse::<u64>() {
        secs
    } else if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is RFC 2822 syntax.
        u64::try_from(date.timestamp() - now.unix()).unwrap_or(0).max(1)
    } else {
        return DEFAULT_RETRY_AFTER;
    };
    Duration::from_secs(secs).min(MAX_RETRY_AFTER)
}

/// The error for a non-success answer:
///
/// * `401`: [`SyncError::Unauthorized`] — the access token was refused
///   (expired or revoked; the caller refreshes once and retries).
/// * `400` with `invalid_grant` (an OAuth token endpoint): [`SyncError::Reauth`].
/// * `403` whose body names a rate limit (Google `rateLimitExceeded`,
///   `userRateLimitExceeded`, `quotaExceeded`, `RESOURCE_EXHAUSTED`) or
///   `429`: [`SyncError::RateLimited`] after `retry_after`.
/// * any other `403`: [`SyncError::Reauth`] (access revoked, a scope or a
///   calendar role missing: the provider must act).
/// * `404`: [`SyncError::NotFound`]; `410`: [`SyncError::Gone`].
/// * `408` and `5xx`: [`SyncError::Transient`]; any other status:
///   [`SyncError::Permanent`].
pub fn classify(status: u16, body: &str, retry_after: Duration) -> SyncError {
    let said = summary(status, body);
    match status {
        401 => SyncError::Unauthorized(said),
        400 if body.contains("invalid_grant") => SyncError::Reauth(said),
        403 if names_rate_limit(body) => SyncError::RateLimited(retry_after),
        429 => SyncError::RateLimited(retry_after),
        403 => SyncError::Reauth(said),
        404 => SyncError::NotFound,
        410 => SyncError::Gone,
        408 | 500..=599 => SyncError::Transient(said),
        _ => SyncError::Permanent(said),
    }
}

/// A transport failure (connection refused, reset, timeout): it may pass.
pub fn transport(err: &reqwest::Error) -> SyncError {
    // reqwest's Display names the URL but never headers or bodies, so no
    // token reaches the message.
    SyncError::Transient(format!("request failed: {err}"))
}

fn names_rate_limit(body: &str) -> bool {
    ["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "RATE_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"]
        .iter()
        .any(|reason| body.contains(reason))
}

/// `"<status>: <message>"`, the message read from the usual error shapes
/// (Google `{"error": {"message"}}`, Graph `{"error": {"code", "message"}}`,
/// OAuth `{"error", "error_description"}`), else the body's start.
fn summary(status: u16, body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = json.as_ref().and_then(|j| {
        let error = j.get("error")?;
        match error {
            serde_json::Value::String(code) => {
                let description = j.get("error_description").and_then(|d| d.as_str()).unwrap_or("");
                Some(format!("{code} {description}").trim().to_owned())
            }
            _ => error.get("message").and_then(|m| m.as_str()).map(str::to_owned),
        }
    });
    let message = message.unwrap_or_else(|| body.chars().take(200).collect());
    format!("{status}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Instant {
        Instant::parse(s).unwrap()
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = at("2026-03-01T12:00:00Z");
        assert_eq!(retry_after(Some("120"), now), Duration::from_secs(120));
        assert_eq!(retry_after(Some(" 7 "), now), Duration::from_secs(7));
        assert_eq!(retry_after(Some("Sun, 01 Mar 2026 12:01:30 GMT"), now), Duration::from_secs(90));
        // A date already past: retry at once, but not in a busy loop.
        assert_eq!(retry_after(Some("Sun, 01 Mar 2026 11:00:00 GMT"), now), Duration::from_secs(1));
        assert_eq!(retry_after(None, now), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(Some("soon"), now), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(Some("-5"), now), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(Some("999999"), now), MAX_RETRY_AFTER);
    }

    #[test]
    fn statuses_become_what_the_caller_should_do() {
        let wait = Duration::from_secs(9);
        let google_rate = r#"{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":403,"message":"Rate Limit Exceeded"}}"#;
        let google_forbidden =
            r#"{"error":{"errors":[{"domain":"global","reason":"forbidden","message":"Forbidden"}],"code":403,"message":"Forbidden"}}"#;
        assert_eq!(classify(403, google_rate, wait), SyncError::RateLimited(wait));
        assert_eq!(classify(429, "", wait), SyncError::RateLimited(wait));
        assert_eq!(classify(403, google_forbidden, wait), SyncError::Reauth("403: Forbidden".into()));
        assert_eq!(
            classify(401, r#"{"error":{"code":401,"message":"Invalid Credentials"}}"#, wait),
            SyncError::Unauthorized("401: Invalid Credentials".into())
        );
        assert_eq!(
            classify(400, r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#, wait),
            SyncError::Reauth("400: invalid_grant Token has been expired or revoked.".into())
        );
        assert_eq!(classify(404, "", wait), SyncError::NotFound);
        assert_eq!(classify(410, "", wait), SyncError::Gone);
        assert_eq!(classify(503, "<html>busy</html>", wait), SyncError::Transient("503: <html>busy</html>".into()));
        assert_eq!(classify(400, r#"{"error":{"message":"Bad Request"}}"#, wait), SyncError::Permanent("400: Bad Request".into()));
    }
}
