//! [`cal_store::EventPublisher`] on EventBridge PutEvents.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use cal_store::{EntryFailure, EventPublisher, OutboundEvent, PublishError};

/// Puts outbox events on one event bus, with one `source`.
#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
    source: String,
}

impl EventBridgePublisher {
    /// Publishes to `bus` (name or ARN) as `source` (e.g. `cal`).
    pub fn new(client: Client, bus: impl Into<String>, source: impl Into<String>) -> Self {
        EventBridgePublisher { client, bus: bus.into(), source: source.into() }
    }
}

impl EventPublisher for EventBridgePublisher {
    fn source(&self) -> &str {
        &self.source
    }

    async fn put(&self, events: &[OutboundEvent]) -> Result<Vec<Result<(), EntryFailure>>, PublishError> {
        let entries = events
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(&self.source)
                    .detail_type(&e.event_type)
                    .detail(&e.detail)
                    .time(DateTime::from_secs(e.created_at.timestamp()))
                    .build()
            })
            .collect();
        let out = self.client.put_events().set_entries(Some(entries)).send().await.map_err(|e| PublishError {
            message: format!("PutEvents on {}: {}", self.bus, aws_sdk_eventbridge::error::DisplayErrorContext(&e)),
            source: Some(Box::new(e)),
        })?;
        // The result entries are in request order: an entry with an error
        // code was refused, one with an event id was accepted.
        let results: Vec<Result<(), EntryFailure>> = out
            .entries()
            .iter()
            .map(|r| match r.error_code() {
                Some(code) => Err(EntryFailure { code: code.to_owned(), message: r.error_message().unwrap_or_default().to_owned() }),
                None => Ok(()),
            })
            .collect();
        let refused = results.iter().filter(|r| r.is_err()).count();
        if refused != out.failed_entry_count() as usize {
            tracing::warn!(refused, failed_entry_count = out.failed_entry_count(), "FailedEntryCount disagrees with the entries");
        }
        Ok(results)
    }
}
