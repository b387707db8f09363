//! The personal ICS feed (SEMANTICS.md §7): a provider's bookings, reached by
//! a long random token in the feed URL.
//!
//! The token is 32 bytes from the operating system's generator (256 bits),
//! written as 64 lower-case hex digits. Only its SHA-256 is stored
//! (`cal.ics_feed.token_hash`), so a database leak does not reveal feed
//! URLs; the token itself is seen once, in the [`FeedToken`] that creates or
//! rotates it. A provider has at most one feed (`user_id` is unique): its
//! `feed_id` stays, its token changes.
//!
//! Serving a feed (`fn-feed`) takes [`feed_for_token`], then
//! [`feed_version`] (enough to answer `304`), then [`feed_events`].

use cal_core::time::Instant;
use chrono::{DateTime, Utc};
use rand::TryRngCore;
use rand::rngs::OsRng;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::booking::{EVENT_RECORD, EventRecord};
use crate::db::{Begin, Executor};
use crate::error::{StoreError, ValidationProblem};
use crate::outbox;

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;
/// Characters in a token (hex).
pub const TOKEN_CHARS: usize = TOKEN_BYTES * 2;

/// A feed was created (or re-created after a revoke).
pub const FEED_CREATED: &str = "cal.feed.created";
/// A feed's token was replaced; the old one no longer answers.
pub const FEED_ROTATED: &str = "cal.feed.rotated";
/// A feed was revoked; it no longer answers.
pub const FEED_REVOKED: &str = "cal.feed.revoked";

/// A feed's new token: the only time it is seen. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct FeedToken {
    /// `feed_…`, stable across rotations.
    pub feed_id: String,
    /// The secret for the feed URL.
    pub token: String,
}

impl std::fmt::Debug for FeedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedToken").field("feed_id", &self.feed_id).field("token", &"<redacted>").finish()
    }
}

/// Whose feed a token opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedOwner {
    /// `feed_…`.
    pub feed_id: String,
    /// The provider.
    pub user_id: String,
    /// When the feed was created.
    pub created_at: Instant,
    /// When its token was last replaced.
    pub rotated_at: Option<Instant>,
}

fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; TOKEN_BYTES];
    // Without the OS generator no secret can be made; nothing sensible to
    // return but a crash (rand's own thread generator does the same).
    OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random generator works");
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    (token, hash)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Tokens are exactly what [`new_token`] makes: anything else is refused
/// before it costs a query.
fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS && token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Compares without an early exit, so the time taken does not tell how much
/// of a hash matched.
fn constant_time_eq(stored: &[u8], computed: &[u8; 32]) -> bool {
    if stored.len() != computed.len() {
        return false;
    }
    let diff = stored.iter().zip(computed).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

fn non_empty_user(user_id: &str) -> Result<(), StoreError> {
    if user_id.trim().is_empty() { Err(StoreError::validation("user_id", ValidationProblem::Empty)) } else { Ok(()) }
}

fn not_found(user_id: &str) -> StoreError {
    StoreError::NotFound { entity: "ics_feed", id: user_id.to_owned() }
}

/// Gives `user_id` a feed and returns its token.
///
/// With no feed, or a revoked one, this creates it (`cal.feed.created`; a
/// revoked feed keeps its `feed_id` and counts as new from `now`). With an
/// active feed, creating again rotates it (`cal.feed.rotated`): "get me a
/// feed URL" must always succeed, and the old token cannot be shown again
/// since only its hash is kept.
pub async fn create_feed(db: &mut impl Begin, user_id: &str, now: Instant) -> Result<FeedToken, StoreError> {
    non_empty_user(user_id)?;
    let tx = db.begin().await?;
    // Locks the provider's counter: concurrent creates of one user run one
    // after the other instead of racing on `user_id`'s unique constraint.
    let version = outbox::bump_version(&tx, user_id).await?;
    let existing = tx.query("select revoked_at is null from cal.ics_feed where user_id = $1", &[&user_id]).await?;
    let active = existing.first().is_some_and(|r| r.get::<_, bool>(0));
    let (token, hash) = new_token();
    let now_utc = now.to_chrono();
    let rows = if active {
        tx.query(
            "update cal.ics_feed set token_hash = $2, rotated_at = $3 where user_id = $1 returning feed_id",
            &[&user_id, &&hash[..], &now_utc],
        )
        .await?
    } else {
        tx.query(
            "insert into cal.ics_feed (feed_id, user_id, token_hash, created_at)
             values ('feed_' || replace(gen_random_uuid()::text, '-', ''), $1, $2, $3)
             on conflict (user_id) do update
                set token_hash = excluded.token_hash, created_at = excluded.created_at,
                    rotated_at = null, revoked_at = null
             returning feed_id",
            &[&user_id, &&hash[..], &now_utc],
        )
        .await?
    };
    let feed_id: String = rows[0].get(0);
    let event = if active { FEED_ROTATED } else { FEED_CREATED };
    outbox::enqueue(&tx, event, user_id, &json!({ "feed_id": feed_id, "user_id": user_id, "version": version }))
        .await?;
    tx.commit().await?;
    Ok(FeedToken { feed_id, token })
}

/// Replaces the token of `user_id`'s active feed; the old token stops
/// answering when this commits. No active feed (none, or revoked) is
/// [`StoreError::NotFound`]: use [`create_feed`] to revive one.
pub async fn rotate_feed(db: &mut impl Begin, user_id: &str, now: Instant) -> Result<FeedToken, StoreError> {
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    let (token, hash) = new_token();
    let rows = tx
        .query(
            "update cal.ics_feed set token_hash = $2, rotated_at = $3
              where user_id = $1 and revoked_at is null returning feed_id",
            &[&user_id, &&hash[..], &now.to_chrono()],
        )
        .await?;
    let Some(row) = rows.first() else { return Err(not_found(user_id)) };
    let feed_id: String = row.get(0);
    outbox::enqueue(&tx, FEED_ROTATED, user_id, &json!({ "feed_id": feed_id, "user_id": user_id, "version": version }))
        .await?;
    tx.commit().await?;
    Ok(FeedToken { feed_id, token })
}

/// Revokes `user_id`'s feed: it stops answering when this commits. Returns
/// whether there was an active feed; revoking again, or with no feed, is
/// `Ok(false)` and writes nothing.
pub async fn revoke_feed(db: &mut impl Begin, user_id: &str, now: Instant) -> Result<bool, StoreError> {
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    let rows = tx
        .query(
            "update cal.ics_feed set revoked_at = $2 where user_id = $1 and revoked_at is null returning feed_id",
            &[&user_id, &now.to_chrono()],
        )
        .await?;
    // Dropping `tx` rolls the version bump back.
    let Some(row) = rows.first() else { return Ok(false) };
    let feed_id: String = row.get(0);
    outbox::enqueue(&tx, FEED_REVOKED, user_id, &json!({ "feed_id": feed_id, "user_id": user_id, "version": version }))
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// The owner of the active feed `token` opens, or `None` — for a malformed
/// token (without a query), an unknown one and a revoked one alike, so a
/// caller cannot tell which.
pub async fn feed_for_token(db: &impl Executor, token: &str) -> Result<Option<FeedOwner>, StoreError> {
    if !well_formed(token) {
        return Ok(None);
    }
    let hash = token_hash(token);
    let rows = db
        .query(
            "select feed_id, user_id, token_hash, created_at, rotated_at, revoked_at
               from cal.ics_feed where token_hash = $1",
            &[&&hash[..]],
        )
        .await?;
    let Some(row) = rows.first() else { return Ok(None) };
    let stored: Vec<u8> = row.get("token_hash");
    let revoked: Option<DateTime<Utc>> = row.get("revoked_at");
    // The index lookup already matched; the constant-time check keeps the
    // decision itself free of a data-dependent shortcut.
    if !constant_time_eq(&stored, &hash) || revoked.is_some() {
        return Ok(None);
    }
    Ok(Some(FeedOwner {
        feed_id: row.get("feed_id"),
        user_id: row.get("user_id"),
        created_at: Instant::from_chrono(row.get("created_at")),
        rotated_at: row.get::<_, Option<DateTime<Utc>>>("rotated_at").map(Instant::from_chrono),
    }))
}

/// What a feed's validator and `DTSTAMP` are made from: the provider's
/// version (bumped by every `cal.*` change in the changing transaction, see
/// [`outbox::bump_version`]) and when it last moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeedVersion {
    /// `cal.provider_version.version` (0 if the provider never wrote).
    pub version: i64,
    /// When it was last bumped (`None` with version 0).
    pub changed_at: Option<Instant>,
}

/// `user_id`'s [`FeedVersion`], in one indexed statement: all a conditional
/// request that turns out unchanged (`304`) costs after the token lookup.
pub async fn feed_version(db: &impl Executor, user_id: &str) -> Result<FeedVersion, StoreError> {
    let rows =
        db.query("select version, updated_at from cal.provider_version where user_id = $1", &[&user_id]).await?;
    Ok(rows.first().map_or(FeedVersion { version: 0, changed_at: None }, |r| FeedVersion {
        version: r.get(0),
        changed_at: Some(Instant::from_chrono(r.get(1))),
    }))
}


/// `user_id`'s confirmed events overlapping `[from, to)`, by start (then id),
/// in one statement.
///
/// Cancelled events are left out on purpose. A feed is a snapshot that a
/// subscribed client replaces on each refresh, so an event that is no longer
/// there is removed by its absence; the cancellation itself (`METHOD:CANCEL`,
/// the next SEQUENCE) travels in the e-mail attachment, the iTIP channel made
/// for it. A `STATUS:CANCELLED` VEVENT in a published feed is not read
/// the same way everywhere (some clients show it, some keep it as busy), and
/// it would only repeat what the absence already says.
///
/// The predicate is the one of the `event_no_overlap_ex` exclusion constraint
/// (`user_id`, `tstzrange(start_at, end_at, '[)')`, confirmed only), so its
/// GiST index serves it.
pub async fn feed_events(
    db: &impl Executor,
    user_id: &str,
    from: Instant,
    to: Instant,
) -> Result<Vec<EventRecord>, StoreError> {
    let rows = db
        .query(
            &format!(
                "select {EVENT_RECORD} from cal.event
                  where user_id = $1 and status = 'confirmed'
                    and tstzrange(start_at, end_at, '[)') && tstzrange($2, $3, '[)')
                  order by start_at, event_id"
            ),
            &[&user_id, &from.to_chrono(), &to.to_chrono()],
        )
        .await?;
    rows.iter().map(EventRecord::from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_distinct() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert_eq!(ha, token_hash(&a));
        assert!(!well_formed(&a.to_uppercase()));
        assert!(!well_formed(&a[1..]));
    }

    #[test]
    fn debug_hides_the_token() {
        let t = FeedToken { feed_id: "feed_1".into(), token: "ab".repeat(32) };
        assert!(!format!("{t:?}").contains(&t.token));
    }

    #[test]
    fn constant_time_eq_compares_whole_hashes() {
        let h = token_hash("x");
        assert!(constant_time_eq(&h, &h));
        let mut other = h;
        other[31] ^= 1;
        assert!(!constant_time_eq(&other, &h));
        assert!(!constant_time_eq(&h[..31], &h));
    }
}
