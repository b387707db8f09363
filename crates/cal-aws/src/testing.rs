//! Test support: moto (local AWS) resources, one set per test. Compiled
//! only with the `testing` feature.
//!
//! The tests need a moto server: `make test` starts one with
//! `scripts/moto.sh`; by hand, `eval "$(scripts/moto.sh start "$(mktemp -d)")"`.

pub mod fixture;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::cache::{KEY_ATTRIBUTE, TTL_ATTRIBUTE};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The SDK configuration for moto. Fails (never skips) when
/// `AWS_ENDPOINT_URL` is unset, saying how to start moto.
pub async fn moto() -> SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "AWS_ENDPOINT_URL is not set. These tests need a local moto server: run `make test`, or \
         `eval \"$(scripts/moto.sh start \"$(mktemp -d)\")\"` (it prints AWS_ENDPOINT_URL, dummy \
         credentials and AWS_REGION) and run the tests in that shell; stop it with `scripts/moto.sh stop DIR`"
    );
    assert!(
        endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
        "AWS_ENDPOINT_URL={endpoint} is not a local server: these tests never call real AWS"
    );
    crate::sdk::load().await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A table as the infra declares them: `id` string key, on-demand, TTL on
/// `expires_at`.
pub async fn create_table(sdk: &SdkConfig, prefix: &str) -> String {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let name = unique(prefix);
    client
        .create_table()
        .table_name(&name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name(KEY_ATTRIBUTE).key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().enabled(true).attribute_name(TTL_ATTRIBUTE).build().unwrap(),
        )
        .send()
        .await
        .expect("enable TTL");
    name
}

/// A custom bus whose rule (`source` = `source`) targets an SQS queue, so a
/// test can count what the bus delivered.
pub struct BusWithQueue {
    /// The bus name.
    pub bus: String,
    /// The queue.
    pub queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl BusWithQueue {
    /// Creates bus, queue, rule and target.
    pub async fn create(sdk: &SdkConfig, source: &str) -> Self {
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let bus = unique("bus");
        events.create_event_bus().name(&bus).send().await.expect("create bus");
        let queue_url =
            sqs.create_queue().queue_name(unique("q")).send().await.expect("create queue").queue_url.expect("queue url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("queue arn");
        let rule = unique("rule");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(serde_json::json!({ "source": [source] }).to_string())
            .send()
            .await
            .expect("put rule");
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(Target::builder().id("queue").arn(arn).build().unwrap())
            .send()
            .await
            .expect("put targets");
        BusWithQueue { bus, queue_url, sqs }
    }

    /// Every message delivered so far (received and deleted), as the
    /// EventBridge envelopes they carry.
    pub async fn drain(&self) -> Vec<serde_json::Value> {
        drain_queue(&self.sqs, &self.queue_url)
            .await
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap_or("null")).expect("message body is JSON"))
            .collect()
    }
}

/// Every message in `queue_url` now (received and deleted, in the order
/// received), with its attributes (`MessageGroupId` on a FIFO queue).
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut out = Vec::new();
    let mut empty_polls = 0;
    while empty_polls < 2 {
        let resp = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = resp.messages.unwrap_or_default();
        if messages.is_empty() {
            empty_polls += 1;
            continue;
        }
        for m in messages {
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await.expect("delete");
            }
            out.push(m);
        }
    }
    out
}

/// A new queue: FIFO (the sync queue's kind, content-based deduplication
/// on, as template.yaml has it) or standard. Returns its URL.
pub async fn create_queue(sdk: &SdkConfig, fifo: bool) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut request = sqs.create_queue();
    if fifo {
        request = request
            .queue_name(format!("{}.fifo", unique("sync")))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "true");
    } else {
        request = request.queue_name(unique("sync"));
    }
    request.send().await.expect("create queue").queue_url.expect("queue url")
}

/// A new symmetric KMS key (the sync's token key). Returns its id.
pub async fn create_kms_key(sdk: &SdkConfig) -> String {
    let kms = aws_sdk_kms::Client::new(sdk);
    let out = kms.create_key().description(unique("sync-token-key")).send().await.expect("create key");
    out.key_metadata.expect("key metadata").key_id
}

/// A new Secrets Manager secret holding `value`. Returns its ARN.
pub async fn create_secret(sdk: &SdkConfig, value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client.create_secret().name(unique("sync-secrets")).secret_string(value).send().await.expect("create secret");
    out.arn.expect("secret arn")
}

/// A state machine on moto that does nothing (one Pass state), for tests
/// that start executions. Returns its ARN.
pub async fn create_state_machine(sdk: &SdkConfig) -> String {
    let client = aws_sdk_sfn::Client::new(sdk);
    let definition = serde_json::json!({ "StartAt": "Done", "States": { "Done": { "Type": "Pass", "End": true } } });
    client
        .create_state_machine()
        .name(unique("ics-poll"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/ics-poll")
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn
}

/// Slots of `query` read through `cache` the way the API reads them (the
/// provider's version first, then [`crate::cache::read_through`]), with
/// the engine's own JSON as the stored body: for tests and benches of the
/// cache's versioning, which do not care about the API's shape.
pub async fn slots_through(
    db: &impl cal_store::Executor,
    cache: &impl crate::cache::VersionedCache,
    query: &cal_core::SlotQuery,
    now: cal_core::Instant,
) -> (String, crate::cache::Source) {
    let version = cal_store::outbox::version(db, &query.user_id).await.expect("provider version");
    crate::cache::read_through(cache, &crate::cache::CacheKey::slots(query), version, now, || async {
        Ok::<_, cal_store::StoreError>(serde_json::to_string(&cal_store::slots(db, query, now).await?).expect("answers serialize"))
    })
    .await
    .expect("slots")
}
