//! The rebuilder with its events/ payloads, end to end against real
//! Postgres and moto.

use cal_aws::DynamoCache;
use cal_aws::cache::{Source, cached_slots};
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
    let (_, src) = cached_slots(&db.client, &cache, monday, now).await.unwrap();
    assert_eq!(src, Source::Cache);
    // An order event finds the provider through its hold.
    let out = rebuild_cache(&pool, &cache, opts, now, event("cache-rebuilder/fn-cache-rebuilder.order-booked.json", Some(&fx))).await.unwrap();
    assert_eq!(out["user_id"], PROVIDER);
}
