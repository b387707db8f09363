//! The adapters against moto (AWS_ENDPOINT_URL; see cal_aws::testing) and
//! real Postgres: EventBridge delivery counted through an SQS target,
//! idempotency races and semantics, the versioned cache and its TTL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use cal_aws::cache::{CacheKey, Source};
use cal_aws::testing::slots_through;
use cal_aws::idempotency::{Claim, ClaimTimes, payload_hash};
use cal_aws::testing::{create_table, moto};
use cal_aws::{DynamoCache, DynamoIdempotencyStore, VersionedCache, IdempotencyError, IdempotencyStore, Idempotent, RunError};
use cal_core::{SlotQuery, SlotRange, StepMinutes};
use cal_store::{RelayOptions, relay_outbox};
use cal_aws::testing::fixture::*;
use serde_json::json;

#[tokio::test]
async fn eventbridge_receives_each_event_exactly_once_per_successful_relay() {
    let (bus, publisher) = moto_bus().await;
    let mut db = TestDb::new().await;
    let mut ids = enqueue(&mut db, "prov-a", 13, json!({"k": "v"})).await;
    ids.extend(enqueue(&mut db, "prov-b", 10, json!({})).await);
    let opts = RelayOptions { backoff: Duration::from_millis(10), ..RelayOptions::default() };
    let report = relay_outbox(&mut db.client, &publisher, opts).await.unwrap();
    assert_eq!(report.published, 23);

    let messages = bus.drain().await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        assert_eq!(m["source"], "cal");
        assert_eq!(m["detail-type"], "cal.rule.updated");
        *seen.entry(m["detail"]["event_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(messages.len(), 23, "{messages:?}");
    assert!(ids.iter().all(|id| seen.get(id) == Some(&1)), "each event once: {seen:?}");

    // A second run has nothing to send; the queue stays empty.
    assert_eq!(relay_outbox(&mut db.client, &publisher, opts).await.unwrap().published, 0);
    assert!(bus.drain().await.is_empty());
}

fn times(now_ms: i64, in_progress_ms: i64) -> ClaimTimes {
    ClaimTimes { now_ms, in_progress_until_ms: now_ms + in_progress_ms, expires_at: now_ms / 1000 + 3600 }
}

#[tokio::test]
async fn idempotency_conditional_put_has_one_winner() {
    let sdk = moto().await;
    let table = create_table(&sdk, "idem").await;
    let store = Arc::new(DynamoIdempotencyStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table));
    let now_ms = 1_900_000_000_000;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.claim("race-key", "hash-1", times(now_ms, 30_000)).await }));
    }
    let mut won = 0;
    let mut in_progress = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Claim::Claimed) => won += 1,
            Err(IdempotencyError::InProgress) => in_progress += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, in_progress), (1, 15));

    // A different payload under the key: mismatch.
    assert!(matches!(store.claim("race-key", "hash-2", times(now_ms, 30_000)).await, Err(IdempotencyError::Mismatch)));
    // After the in-progress deadline the record may be taken over.
    assert_eq!(store.claim("race-key", "hash-1", times(now_ms + 31_000, 30_000)).await.unwrap(), Claim::Claimed);
    // Completed: the response comes back.
    store.complete("race-key", "hash-1", &json!({"ok": 1}), now_ms / 1000 + 3600).await.unwrap();
    assert_eq!(store.claim("race-key", "hash-1", times(now_ms + 32_000, 30_000)).await.unwrap(), Claim::Completed(json!({"ok": 1})));

    // The TTL attribute is written, in epoch seconds, and TTL is on.
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let item = ddb.get_item().table_name(&table).key("id", AttributeValue::S("race-key".into())).send().await.unwrap().item.unwrap();
    assert_eq!(item["expires_at"].as_n().unwrap(), &(now_ms / 1000 + 3600).to_string());
    let ttl = ddb.describe_time_to_live().table_name(&table).send().await.unwrap().time_to_live_description.unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[derive(Debug, thiserror::Error)]
#[error("handler failed")]
struct Boom;

#[tokio::test]
async fn idempotent_run_stores_replays_and_releases_on_failure() {
    let sdk = moto().await;
    let table = create_table(&sdk, "idem").await;
    let store = DynamoIdempotencyStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let guard = Idempotent { expires_after: Duration::from_secs(3600), now_ms: 1_900_000_000_000, remaining: Duration::from_secs(10) };
    let payload = json!({"b": 2, "a": 1});

    // A failing handler leaves no record: the retry runs.
    let r = guard.run(&store, "k", &payload, || async { Err::<serde_json::Value, _>(Boom) }).await;
    assert!(matches!(r, Err(RunError::Handler(Boom))));
    let runs = std::sync::atomic::AtomicU32::new(0);
    let handler = || async {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, Boom>(json!({"done": true}))
    };
    assert_eq!(guard.run(&store, "k", &payload, handler).await.unwrap(), json!({"done": true}));
    // Same request again (keys in another order): stored answer, no run.
    let same = json!({"a": 1, "b": 2});
    assert_eq!(payload_hash(&same), payload_hash(&payload));
    assert_eq!(guard.run(&store, "k", &same, handler).await.unwrap(), json!({"done": true}));
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Different request, same key.
    let err = guard.run(&store, "k", &json!({"a": 9}), handler).await.unwrap_err();
    match err {
        RunError::Idempotency(e) => assert_eq!(e.error_type(), cal_core::ErrorType::IdempotencyMismatch),
        other => panic!("{other:?}"),
    }
}

fn monday_query() -> SlotQuery {
    let range = SlotRange::new(at("2030-03-04T00:00:00Z"), at("2030-03-05T00:00:00Z"), Some(60), StepMinutes::default()).unwrap();
    SlotQuery { user_id: PROVIDER.into(), role_code: ROLE.into(), range }
}

#[tokio::test]
async fn feasibility_cache_never_serves_a_stale_version() {
    let sdk = moto().await;
    let table = create_table(&sdk, "feas").await;
    let cache = DynamoCache::new(aws_sdk_dynamodb::Client::new(&sdk), &table, 300);
    let mut db = TestDb::new().await;
    seed_rules(&mut db).await;
    let now = at(NOW);
    let q = monday_query();

    let (first, src) = slots_through(&db.client, &cache, &q, now).await;
    assert_eq!(src, Source::Engine);
    assert!(first.contains("2030-03-04T08:00:00Z"), "Monday 09:00 Berlin is a slot: {first}");
    let (again, src) = slots_through(&db.client, &cache, &q, now).await;
    assert_eq!((again.as_str(), src), (first.as_str(), Source::Cache));
    let stored = VersionedCache::get(&cache, &CacheKey::slots(&q)).await.unwrap().unwrap();
    assert_eq!(stored.expires_at, now.plus_secs(300), "TTL attribute written");
    assert_eq!(stored.version, cal_store::outbox::version(&db.client, PROVIDER).await.unwrap());

    // A change (a hold on Monday 09:00 Berlin) bumps the version: the old
    // entry is not served, the answer reflects the hold.
    let hold = hold_request("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", cal_core::HoldKind::Checkout, None, "k1");
    cal_store::create_hold(&db.client, &hold, now).await.unwrap();
    let (after, src) = slots_through(&db.client, &cache, &q, now).await;
    assert_eq!(src, Source::Engine);
    assert!(!after.contains("\"start\":\"2030-03-04T08:00:00Z\""), "{after}");

    // An entry past its expiry is not served even if DynamoDB kept it.
    let (_, src) = slots_through(&db.client, &cache, &q, now.plus_secs(301)).await;
    assert_eq!(src, Source::Engine);
}
