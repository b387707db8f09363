//! The personal ICS feed: token strength, hash-only storage, lookup,
//! rotation, revocation, malformed tokens and two users side by side.

mod common;

use cal_store::{StoreError, create_feed, feed_for_token, outbox, revoke_feed, rotate_feed};
use cal_store::testing::Counting;
use common::{TestDb, at};

async fn event_types(db: &TestDb, user: &str) -> Vec<String> {
    db.client
        .query("select event_type from cal.outbox where user_id = $1 order by outbox_id", &[&user])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Whether `text` appears anywhere in the feed table or the outbox.
async fn stored_anywhere(db: &TestDb, text: &str) -> bool {
    let row = db
        .client
        .query_one(
            "select exists (select 1 from cal.ics_feed f where row_to_json(f)::text like '%' || $1 || '%'
                               or encode(f.token_hash, 'hex') = $1 or encode(f.token_hash, 'base64') = $1)
                 or exists (select 1 from cal.outbox o where row_to_json(o)::text like '%' || $1 || '%')",
            &[&text],
        )
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn a_feed_token_is_long_random_and_stored_only_as_a_hash() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let t = create_feed(&mut db.client, "u1", now).await.unwrap();
    assert!(t.feed_id.starts_with("feed_"), "{}", t.feed_id);
    // 64 hex digits = 256 bits, URL-safe as it is.
    assert_eq!(t.token.len(), 64);
    assert!(t.token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{}", t.token);
    assert!(!format!("{t:?}").contains(&t.token), "Debug hides the token");

    assert!(!stored_anywhere(&db, &t.token).await, "the token is nowhere in the database");
    let by_hash = db
        .client
        .query_one("select count(*) from cal.ics_feed where token_hash = sha256(convert_to($1, 'UTF8'))", &[&t.token])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(by_hash, 1, "its SHA-256 is");

    let owner = feed_for_token(&db.client, &t.token).await.unwrap().expect("the token opens the feed");
    assert_eq!((owner.feed_id.as_str(), owner.user_id.as_str()), (t.feed_id.as_str(), "u1"));
    assert_eq!((owner.created_at, owner.rotated_at), (now, None));
    assert!(!serde_json::to_string(&owner).unwrap().contains(&t.token));

    assert_eq!(event_types(&db, "u1").await, ["cal.feed.created"]);
    let payload: serde_json::Value = db.client.query_one("select payload from cal.outbox", &[]).await.unwrap().get(0);
    assert_eq!(payload, serde_json::json!({ "feed_id": t.feed_id, "user_id": "u1", "version": 1 }));

    // Tokens differ every time.
    let u2 = create_feed(&mut db.client, "u2", now).await.unwrap();
    assert_ne!(u2.token, t.token);
}

#[tokio::test]
async fn rotating_kills_the_old_token_at_once() {
    let mut db = TestDb::new().await;
    let old = create_feed(&mut db.client, "u1", at("2026-03-02T09:00:00Z")).await.unwrap();
    let new = rotate_feed(&mut db.client, "u1", at("2026-03-02T10:00:00Z")).await.unwrap();
    assert_eq!(new.feed_id, old.feed_id, "the same feed");
    assert_ne!(new.token, old.token);
    assert_eq!(feed_for_token(&db.client, &old.token).await.unwrap(), None);
    let owner = feed_for_token(&db.client, &new.token).await.unwrap().unwrap();
    assert_eq!(owner.rotated_at, Some(at("2026-03-02T10:00:00Z")));

    // Creating with an active feed rotates too.
    let third = create_feed(&mut db.client, "u1", at("2026-03-02T11:00:00Z")).await.unwrap();
    assert_eq!(third.feed_id, old.feed_id);
    assert_eq!(feed_for_token(&db.client, &new.token).await.unwrap(), None);
    assert!(feed_for_token(&db.client, &third.token).await.unwrap().is_some());
    assert_eq!(event_types(&db, "u1").await, ["cal.feed.created", "cal.feed.rotated", "cal.feed.rotated"]);
    for t in [&old.token, &new.token, &third.token] {
        assert!(!stored_anywhere(&db, t).await);
    }
    assert_eq!(db.count("select count(*) from cal.ics_feed").await, 1);
}

#[tokio::test]
async fn revoking_stops_the_feed_and_is_idempotent() {
    let mut db = TestDb::new().await;
    let t = create_feed(&mut db.client, "u1", at("2026-03-02T09:00:00Z")).await.unwrap();
    assert!(revoke_feed(&mut db.client, "u1", at("2026-03-02T10:00:00Z")).await.unwrap());
    assert_eq!(feed_for_token(&db.client, &t.token).await.unwrap(), None);
    assert!(!revoke_feed(&mut db.client, "u1", at("2026-03-02T10:05:00Z")).await.unwrap(), "twice is fine");
    assert!(!revoke_feed(&mut db.client, "nobody", at("2026-03-02T10:05:00Z")).await.unwrap());
    assert_eq!(event_types(&db, "u1").await, ["cal.feed.created", "cal.feed.revoked"]);
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), 2, "a no-op revoke leaves no trace");
    assert_eq!(outbox::version(&db.client, "nobody").await.unwrap(), 0);

    // A revoked feed cannot be rotated back to life; creating revives it.
    let err = rotate_feed(&mut db.client, "u1", at("2026-03-02T11:00:00Z")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let again = create_feed(&mut db.client, "u1", at("2026-03-02T12:00:00Z")).await.unwrap();
    assert_eq!(again.feed_id, t.feed_id);
    assert_eq!(feed_for_token(&db.client, &t.token).await.unwrap(), None, "the revoked token stays dead");
    let owner = feed_for_token(&db.client, &again.token).await.unwrap().unwrap();
    assert_eq!((owner.created_at, owner.rotated_at), (at("2026-03-02T12:00:00Z"), None));
    assert_eq!(event_types(&db, "u1").await, ["cal.feed.created", "cal.feed.revoked", "cal.feed.created"]);

    let err = rotate_feed(&mut db.client, "nobody", at("2026-03-02T11:00:00Z")).await.unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::NotFound);
}

#[tokio::test]
async fn malformed_and_unknown_tokens_find_nothing() {
    let mut db = TestDb::new().await;
    let t = create_feed(&mut db.client, "u1", at("2026-03-02T09:00:00Z")).await.unwrap();
    let counting = Counting::new(&db.client);
    let malformed = [
        String::new(),
        "abc".into(),
        t.token.to_uppercase(),
        format!("{}0", t.token),
        t.token[1..].to_owned(),
        format!(" {}", &t.token[1..]),
        format!("{}g", &t.token[1..]),
        format!("{}é", &t.token[2..]),
        "' or 1=1 --".into(),
    ];
    for m in &malformed {
        assert_eq!(feed_for_token(&counting, m).await.unwrap(), None, "{m:?}");
    }
    assert_eq!(counting.take(), 0, "refused without a query");

    // Well-formed but unknown: one query, nothing found.
    let mut unknown = t.token.clone().into_bytes();
    unknown[0] = if unknown[0] == b'0' { b'1' } else { b'0' };
    let unknown = String::from_utf8(unknown).unwrap();
    assert_eq!(feed_for_token(&counting, &unknown).await.unwrap(), None);
    assert_eq!(counting.take(), 1);
    assert!(feed_for_token(&counting, &t.token).await.unwrap().is_some());
}

#[tokio::test]
async fn two_users_feeds_are_independent() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let a = create_feed(&mut db.client, "u1", now).await.unwrap();
    let b = create_feed(&mut db.client, "u2", now).await.unwrap();
    assert_ne!(a.feed_id, b.feed_id);
    assert_eq!(feed_for_token(&db.client, &a.token).await.unwrap().unwrap().user_id, "u1");
    assert_eq!(feed_for_token(&db.client, &b.token).await.unwrap().unwrap().user_id, "u2");

    let a2 = rotate_feed(&mut db.client, "u1", now).await.unwrap();
    assert!(feed_for_token(&db.client, &b.token).await.unwrap().is_some(), "u2 unaffected by u1's rotation");
    assert!(revoke_feed(&mut db.client, "u2", now).await.unwrap());
    assert_eq!(feed_for_token(&db.client, &a2.token).await.unwrap().unwrap().user_id, "u1", "u1 unaffected");
    assert_eq!(feed_for_token(&db.client, &b.token).await.unwrap(), None);
    assert_eq!(event_types(&db, "u1").await, ["cal.feed.created", "cal.feed.rotated"]);
    assert_eq!(event_types(&db, "u2").await, ["cal.feed.created", "cal.feed.revoked"]);
}
