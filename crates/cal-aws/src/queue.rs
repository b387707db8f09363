//! [`cal_sync::jobs::JobQueue`] on SQS SendMessage: the receivers, the
//! renewer, the callback and the API put sync jobs on the sync queue; the
//! worker gets them as Lambda SQS events (no receive side here).
//!
//! The body is the job's JSON (`{"job": "pull", ...}`). On a FIFO queue (its
//! URL ends in `.fifo`) the message group is [`SyncJob::group`], so one
//! calendar's jobs run one at a time (a group SQS would refuse, too long
//! or with other than printable ASCII, goes as its SHA-256: a Graph
//! calendar id alone can pass 128 characters), and each send has a deduplication id
//! of its own (a random UUID, made once per send, so the SDK's retries of
//! that send carry the same one and SQS keeps a single copy).
//!
//! Deliberately *not* content-based or time-bucketed: FIFO deduplication
//! drops an identical body for five minutes after the first was *sent*,
//! even when the worker has already read it. A notification that arrives
//! after the worker read the calendar but inside that window would be
//! dropped, and its change would wait for the next periodic sync. Jobs are
//! state-based, so an extra one costs one incremental read and nothing else.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use cal_sync::jobs::{JobQueue, QueueError, SyncJob};
use sha2::{Digest, Sha256};

/// Sends sync jobs to one SQS queue (standard or FIFO).
#[derive(Clone, Debug)]
pub struct SqsJobQueue {
    client: Client,
    queue_url: String,
    fifo: bool,
}

impl SqsJobQueue {
    /// Sends to `queue_url` (`SYNC_QUEUE_URL`); a URL ending in `.fifo` is a
    /// FIFO queue.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        let fifo = queue_url.ends_with(".fifo");
        SqsJobQueue { client, queue_url, fifo }
    }

    /// Whether messages carry a group and a deduplication id.
    pub fn is_fifo(&self) -> bool {
        self.fifo
    }
}

impl JobQueue for SqsJobQueue {
    async fn send(&self, job: &SyncJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).map_err(|e| QueueError(format!("a job that does not serialize: {e}")))?;
        let mut request = self.client.send_message().queue_url(&self.queue_url).message_body(body);
        if self.fifo {
            request = request
                .message_group_id(message_group(&job.group()))
                .message_deduplication_id(uuid::Uuid::new_v4().simple().to_string());
        }
        request
            .send()
            .await
            .map_err(|e| QueueError(format!("SendMessage on {}: {}", self.queue_url, DisplayErrorContext(&e))))?;
        Ok(())
    }
}

/// The longest `MessageGroupId` SQS takes.
const MAX_GROUP_CHARS: usize = 128;

/// `group` as a `MessageGroupId`: itself when SQS takes it (at most 128
/// printable ASCII characters), else its SHA-256 in hex. Either way the
/// same group always maps to the same id.
pub fn message_group(group: &str) -> String {
    if !group.is_empty() && group.len() <= MAX_GROUP_CHARS && group.bytes().all(|b| b.is_ascii_graphic()) {
        return group.to_owned();
    }
    let digest = Sha256::digest(group.as_bytes());
    format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_sqs_would_refuse_is_hashed_the_same_way_each_time() {
        assert_eq!(message_group("con_1/primary"), "con_1/primary");
        assert_eq!(message_group("con_1/ana@example.com"), "con_1/ana@example.com");
        let long = format!("con_1/AAMkAGI2{}=", "x".repeat(140));
        let hashed = message_group(&long);
        assert!(hashed.starts_with("sha256:") && hashed.len() == 7 + 64, "{hashed}");
        assert_eq!(hashed, message_group(&long));
        assert_ne!(hashed, message_group(&format!("{long}y")));
        // A space or a non-ASCII letter is not allowed in a group id.
        assert!(message_group("con_1/My Calendar").starts_with("sha256:"));
        assert!(message_group("con_1/kalender-för-jobb").starts_with("sha256:"));
    }
}
