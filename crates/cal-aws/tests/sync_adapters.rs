//! The calendar sync's AWS adapters against moto (AWS_ENDPOINT_URL; see
//! cal_aws::testing): the KMS token vault, the SQS job queue and the
//! sync's Secrets Manager secret.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use base64::Engine;
use cal_aws::config::Env;
use cal_aws::testing::{create_kms_key, create_queue, create_secret, drain_queue, moto};
use cal_aws::{KmsTokenVault, SqsJobQueue, SyncSecrets};
use cal_sync::Secret;
use cal_sync::jobs::{JobQueue, SyncJob, TokenVault, VaultError};
use serde_json::json;

const TOKEN: &str = "1//0refresh-token-of-ana-Xy9_kq";

async fn vault() -> KmsTokenVault {
    let sdk = moto().await;
    let key = create_kms_key(&sdk).await;
    KmsTokenVault::new(aws_sdk_kms::Client::new(&sdk), key)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_sealed_token_opens_for_its_connection_and_holds_no_plaintext() {
    let vault = vault().await;
    let sealed = vault.seal("con_1", &Secret::new(TOKEN)).await.unwrap();
    assert_eq!(vault.open("con_1", &sealed).await.unwrap().expose(), TOKEN);

    // AES-GCM: the token's length plus a 16-byte tag, under a 96-bit nonce.
    assert_eq!(sealed.ciphertext.len(), TOKEN.len() + 16);
    assert_eq!(sealed.nonce.len(), 12);
    for part in [&sealed.ciphertext, &sealed.nonce, &sealed.wrapped_key] {
        assert!(!contains(part, TOKEN.as_bytes()), "plaintext in a stored part");
        assert!(!contains(part, &TOKEN.as_bytes()[..8]), "a piece of the plaintext in a stored part");
    }
    assert!(!format!("{sealed:?}").contains(TOKEN));

    // Each seal has its own data key and nonce.
    let again = vault.seal("con_1", &Secret::new(TOKEN)).await.unwrap();
    assert_ne!((&again.ciphertext, &again.nonce, &again.wrapped_key), (&sealed.ciphertext, &sealed.nonce, &sealed.wrapped_key));
    assert_eq!(vault.open("con_1", &again).await.unwrap().expose(), TOKEN);
}

#[tokio::test]
async fn another_connection_or_a_changed_byte_does_not_open() {
    let vault = vault().await;
    let sealed = vault.seal("con_1", &Secret::new(TOKEN)).await.unwrap();

    // Another connection's context: KMS will not unwrap the key.
    assert_eq!(vault.open("con_2", &sealed).await.unwrap_err(), VaultError::Corrupt);

    let mut flipped = sealed.clone();
    flipped.ciphertext[3] ^= 0x01;
    assert_eq!(vault.open("con_1", &flipped).await.unwrap_err(), VaultError::Corrupt);
    let mut flipped = sealed.clone();
    flipped.nonce[0] ^= 0x80;
    assert_eq!(vault.open("con_1", &flipped).await.unwrap_err(), VaultError::Corrupt);
    let mut flipped = sealed.clone();
    let last = flipped.wrapped_key.len() - 1;
    flipped.wrapped_key[last] ^= 0x01;
    assert_eq!(vault.open("con_1", &flipped).await.unwrap_err(), VaultError::Corrupt);
    let mut short = sealed.clone();
    short.nonce.pop();
    assert_eq!(vault.open("con_1", &short).await.unwrap_err(), VaultError::Corrupt);

    // Another seal's data key (same connection) does not open this
    // ciphertext either: the GCM tag is checked under the key.
    let other = vault.seal("con_1", &Secret::new(TOKEN)).await.unwrap();
    let mixed = cal_sync::jobs::Sealed { wrapped_key: other.wrapped_key, ..sealed.clone() };
    assert_eq!(vault.open("con_1", &mixed).await.unwrap_err(), VaultError::Corrupt);

    // The original still opens: nothing above changed it.
    assert_eq!(vault.open("con_1", &sealed).await.unwrap().expose(), TOKEN);
}

#[tokio::test]
async fn an_unreachable_key_service_is_a_kms_error_without_the_token() {
    let sdk = moto().await;
    let key = create_kms_key(&sdk).await;
    let sealed = KmsTokenVault::new(aws_sdk_kms::Client::new(&sdk), &key).seal("con_1", &Secret::new(TOKEN)).await.unwrap();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let config = aws_sdk_kms::config::Builder::from(&sdk)
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    let down = KmsTokenVault::new(aws_sdk_kms::Client::from_conf(config), &key);
    for err in [down.seal("con_1", &Secret::new(TOKEN)).await.unwrap_err(), down.open("con_1", &sealed).await.unwrap_err()] {
        let VaultError::Kms(message) = &err else { panic!("{err:?}") };
        assert!(!message.contains(TOKEN) && !format!("{err:?}").contains(TOKEN), "{message}");
    }
    // A key that does not exist is the key service's refusal, not a corrupt token.
    let gone = KmsTokenVault::new(aws_sdk_kms::Client::new(&sdk), "00000000-0000-0000-0000-000000000000");
    assert!(matches!(gone.seal("con_1", &Secret::new(TOKEN)).await, Err(VaultError::Kms(_))));
}

fn pull() -> SyncJob {
    SyncJob::Pull { connection_id: "con_1".into(), calendar_id: "ana@example.com".into() }
}

#[tokio::test]
async fn jobs_reach_a_standard_queue_as_their_json() {
    let sdk = moto().await;
    let url = create_queue(&sdk, false).await;
    let queue = SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), &url);
    assert!(!queue.is_fifo());
    queue.send(&pull()).await.unwrap();
    let messages = drain_queue(&aws_sdk_sqs::Client::new(&sdk), &url).await;
    assert_eq!(messages.len(), 1);
    let body = messages[0].body().unwrap();
    assert_eq!(serde_json::from_str::<SyncJob>(body).unwrap(), pull());
    assert_eq!(serde_json::from_str::<serde_json::Value>(body).unwrap()["job"], "pull");
}

#[tokio::test]
async fn jobs_reach_a_fifo_queue_grouped_by_calendar_and_never_merged() {
    let sdk = moto().await;
    let url = create_queue(&sdk, true).await;
    let queue = SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), &url);
    assert!(queue.is_fifo());
    let push = SyncJob::Push { event_id: "ev_1".into() };
    // The same job twice: both arrive, although the queue deduplicates by
    // content (a notification after the worker's read must not be lost).
    for job in [pull(), push.clone(), pull()] {
        queue.send(&job).await.unwrap();
    }
    let messages = drain_queue(&aws_sdk_sqs::Client::new(&sdk), &url).await;
    let got: Vec<(SyncJob, String)> = messages
        .iter()
        .map(|m| {
            let group = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId)).expect("a group");
            (serde_json::from_str(m.body().unwrap()).unwrap(), group.clone())
        })
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got.iter().filter(|(j, g)| *j == pull() && g == "con_1/ana@example.com").count(), 2, "{got:?}");
    assert!(got.contains(&(push, "event/ev_1".to_owned())), "{got:?}");
}

#[tokio::test]
async fn a_refused_send_is_a_queue_error() {
    let sdk = moto().await;
    let queue = SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), format!("{}/123456789012/no-such-queue", std::env::var("AWS_ENDPOINT_URL").unwrap()));
    let err = queue.send(&pull()).await.unwrap_err();
    assert!(err.0.contains("SendMessage on") && err.0.contains("no-such-queue"), "{err}");
}

fn secret_json() -> serde_json::Value {
    json!({
        "google_client_id": "g-id.apps.googleusercontent.com",
        "google_client_secret": "g-hunter2",
        "microsoft_client_id": "m-id",
        "microsoft_client_secret": "m-hunter2",
        "state_key": base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
    })
}

#[tokio::test]
async fn sync_secrets_load_from_secrets_manager_and_refuse_a_missing_field_by_name() {
    let sdk = moto().await;
    let arn = create_secret(&sdk, &secret_json().to_string()).await;
    let secrets = SyncSecrets::load(&sdk, &Env::from_pairs(&[("SYNC_SECRETS_ARN", &arn)])).await.unwrap();
    assert_eq!(secrets.google_client_id, "g-id.apps.googleusercontent.com");
    assert_eq!(secrets.microsoft_client_secret.expose(), "m-hunter2");
    assert!(!format!("{secrets:?}").contains("hunter2"));

    let mut partial = secret_json();
    partial.as_object_mut().unwrap().remove("google_client_secret");
    let arn = create_secret(&sdk, &partial.to_string()).await;
    let err = SyncSecrets::load(&sdk, &Env::from_pairs(&[("SYNC_SECRETS_ARN", &arn)])).await.unwrap_err();
    assert_eq!(err.to_string(), "the secret in SYNC_SECRETS_ARN lacks google_client_secret (each a non-empty string)");
    assert!(!format!("{err:?}").contains("hunter2"));

    let err = SyncSecrets::load(&sdk, &Env::from_pairs(&[])).await.unwrap_err();
    assert_eq!(err.to_string(), "SYNC_SECRETS_ARN is not set");
}

/// The `SyncPushRule` of template.yaml, read from the file: its
/// detail-types, input paths, input template and message group.
struct PushRule {
    detail_types: Vec<String>,
    paths: Vec<(String, String)>,
    template: String,
    group: String,
}

fn push_rule_of_the_template() -> PushRule {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    // The resource's lines: from its name to the next resource (two spaces in).
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "  SyncPushRule:")
        .skip(1)
        .take_while(|l| !(l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':')))
        .collect();
    let value = |key: &str| lines.iter().find_map(|l| l.trim().strip_prefix(key)).map(str::trim);
    let list = value("detail-type:").expect("detail-type in SyncPushRule");
    let detail_types = list.trim_matches(['[', ']']).split(',').map(|t| t.trim().to_owned()).collect();
    let template = value("InputTemplate:").expect("InputTemplate").trim_matches('\'').to_owned();
    let group = value("SqsParameters:").expect("SqsParameters").trim_matches(['{', '}', ' ']);
    let group = group.strip_prefix("MessageGroupId:").expect("MessageGroupId").trim().to_owned();
    let paths = ["event_id", "cause"]
        .iter()
        .map(|k| ((*k).to_owned(), value(&format!("{k}:")).unwrap_or_else(|| panic!("InputPathsMap {k}")).to_owned()))
        .collect();
    PushRule { detail_types, paths, template, group }
}

/// A booking confirmed, moved and cancelled, relayed from the outbox onto a
/// bus whose rule is the template's SyncPushRule: three push jobs of that
/// booking reach the FIFO queue (the queue deduplicates by content, so this
/// fails if the rule's bodies were alike), and nothing else does.
#[tokio::test]
async fn the_templates_push_rule_turns_each_booking_change_into_a_push_job() {
    use aws_sdk_eventbridge::types::{InputTransformer, SqsParameters, Target};
    use cal_aws::testing::fixture::{NOW, TestDb, at, seed_fixture};

    let rule = push_rule_of_the_template();
    assert_eq!(rule.detail_types, [cal_store::booking::EVENT_CONFIRMED, cal_store::booking::EVENT_RESCHEDULED, cal_store::booking::EVENT_CANCELLED]);
    let sdk = moto().await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = create_queue(&sdk, true).await;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap();
    let bus = cal_aws::testing::unique("bus");
    events.create_event_bus().name(&bus).send().await.unwrap();
    events
        .put_rule()
        .name("sync-push")
        .event_bus_name(&bus)
        .event_pattern(json!({ "detail-type": rule.detail_types }).to_string())
        .send()
        .await
        .unwrap();
    let mut transformer = InputTransformer::builder().input_template(&rule.template);
    for (k, v) in &rule.paths {
        transformer = transformer.input_paths_map(k, v);
    }
    let target = Target::builder()
        .id("sync-queue")
        .arn(arn)
        .sqs_parameters(SqsParameters::builder().message_group_id(&rule.group).build())
        .input_transformer(transformer.build().unwrap())
        .build()
        .unwrap();
    events.put_targets().rule("sync-push").event_bus_name(&bus).targets(target).send().await.unwrap();

    // Confirmed (the fixture), rescheduled, cancelled; relayed to the bus.
    let mut db = TestDb::new().await;
    let fx = seed_fixture(&mut db).await;
    cal_store::confirm_hold(&mut db.client, &fx.reschedule_hold_id, at(NOW)).await.unwrap();
    cal_store::cancel_event(&mut db.client, &fx.event_id, at(NOW)).await.unwrap();
    let publisher = cal_aws::EventBridgePublisher::new(events.clone(), &bus, "cal");
    let opts = cal_store::RelayOptions { backoff: std::time::Duration::from_millis(10), ..Default::default() };
    cal_store::relay_outbox(&mut db.client, &publisher, opts).await.unwrap();

    let messages = drain_queue(&sqs, &url).await;
    let jobs: Vec<SyncJob> = messages.iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()).collect();
    assert_eq!(jobs, vec![SyncJob::Push { event_id: fx.event_id.clone() }; 3], "{messages:?}");
    for m in &messages {
        assert_eq!(m.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId], rule.group);
    }
}
