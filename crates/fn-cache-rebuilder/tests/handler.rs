//! The rebuilder with its events/ payloads, end to end against real
//! Postgres and moto.

use cal_aws::DynamoCache;
use cal_aws::cache::{CacheKey, Source, read_through};
use cal_aws::testing::fixture::*;
use cal_aws::testing::{create_table, moto};
use fn_cache_rebuilder::{RebuildOptions, near_term_queries, rebuild_cache};

#[tokio::test]
async fn cache_rebuilder_warms_the_near_term_cache() {
    let sdk = moto().await;
    let table = create_table(&sdk, "feas").await;
    let cache = DynamoCache::new(aws_sdk_dynamodb::Client::new(&sdk), &table, 300);
    let mut db = TestDb::new().await;
    let fx = seed_fixture(&mut db).await;
    let pool = pool(&db);
    let now = at(NOW);
    let opts = RebuildOptions { days: 7 };
    let out = rebuild_cache(&pool, &cache, opts, now, event("cache-rebuilder/fn-cache-rebuilder.cal-rule-updated.json", None)).await.unwrap();
    assert_eq!((out["user_id"].as_str(), out["entries"].as_u64()), (Some(PROVIDER), Some(7)));
    // Reads of those windows now hit the cache.
    let monday = &near_term_queries(PROVIDER, ROLE, now, 7)[3];
    let version = cal_store::outbox::version(&db.client, PROVIDER).await.unwrap();
    let (body, src) = read_through(&cache, &CacheKey::slots(monday), version, now, || async {
        Err::<String, _>("a warmed window must not be computed again")
    })
    .await
    .unwrap();
    assert_eq!(src, Source::Cache);
    // Stored in the API's response shape: served as it is.
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let computed = fn_api::out::slot_page(&cal_store::slots(&db.client, monday, now).await.unwrap());
    assert_eq!(page, computed);
    assert!(page["slots"][0].get("startLocal").is_some(), "{page}");
    // An order event finds the provider through its hold.
    let out = rebuild_cache(&pool, &cache, opts, now, event("cache-rebuilder/fn-cache-rebuilder.order-booked.json", Some(&fx))).await.unwrap();
    assert_eq!(out["user_id"], PROVIDER);
}
