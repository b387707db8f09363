//! In-memory stand-ins for the sync queue and the token vault, for tests
//! and local runs (feature `testing`; never in a function's build). The
//! real ones (SQS, KMS envelope encryption) are cal-aws's, tested on moto.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::Secret;
use crate::jobs::{JobQueue, QueueError, Sealed, SyncJob, TokenVault, VaultError};

/// The sync queue's stand-in: jobs in order, shared by every clone. A test
/// drains it and runs the jobs itself, or long-polls it ([`MemoryQueue::receive`])
/// as Lambda's SQS event source does, with receive counts.
#[derive(Clone, Default)]
pub struct MemoryQueue(Arc<QueueInner>);

#[derive(Default)]
struct QueueInner {
    /// Each job with how often it was handed out before.
    jobs: Mutex<VecDeque<(SyncJob, i64)>>,
    /// Every job ever queued, in order (what a demo shows).
    sent: Mutex<Vec<SyncJob>>,
    /// Woken by every send: a receiver waiting for the next job.
    ready: tokio::sync::Notify,
}

impl MemoryQueue {
    /// Takes every queued job, oldest first.
    pub fn drain(&self) -> Vec<SyncJob> {
        self.0.jobs.lock().expect("queue").drain(..).map(|(job, _)| job).collect()
    }

    /// Queues a job as another sender would (e.g. the bus's push rule).
    pub fn push(&self, job: SyncJob) {
        self.redeliver(job, 0);
    }

    /// Queues a job again after `deliveries` deliveries (a visibility
    /// timeout's end).
    pub fn redeliver(&self, job: SyncJob, deliveries: i64) {
        self.0.sent.lock().expect("queue").push(job.clone());
        self.0.jobs.lock().expect("queue").push_back((job, deliveries));
        self.0.ready.notify_one();
    }

    /// Every job queued so far, run or not.
    pub fn sent(&self) -> Vec<SyncJob> {
        self.0.sent.lock().expect("queue").clone()
    }

    pub fn len(&self) -> usize {
        self.0.jobs.lock().expect("queue").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `max` jobs with their receive counts, waiting at most `wait`
    /// for the first (SQS long polling); none when the wait ran out.
    pub async fn receive(&self, max: usize, wait: Duration) -> Vec<(SyncJob, i64)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            {
                let mut jobs = self.0.jobs.lock().expect("queue");
                if !jobs.is_empty() {
                    let n = max.min(jobs.len());
                    return jobs.drain(..n).map(|(job, before)| (job, before + 1)).collect();
                }
            }
            // A send between the check and here left a permit: no lost wake-up.
            if tokio::time::timeout_at(deadline, self.0.ready.notified()).await.is_err() {
                return Vec::new();
            }
        }
    }
}

impl JobQueue for MemoryQueue {
    async fn send(&self, job: &SyncJob) -> Result<(), QueueError> {
        self.push(job.clone());
        Ok(())
    }
}

/// The vault's stand-in: the token is kept as it is, bound to its
/// connection (opening it for another connection fails, as KMS's
/// encryption context makes it fail).
#[derive(Clone, Copy, Default)]
pub struct MemoryVault;

fn binding(connection_id: &str) -> Vec<u8> {
    Sha256::digest(connection_id.as_bytes()).to_vec()
}

impl TokenVault for MemoryVault {
    async fn seal(&self, connection_id: &str, secret: &Secret) -> Result<Sealed, VaultError> {
        Ok(Sealed { ciphertext: secret.expose().as_bytes().to_vec(), nonce: binding(connection_id), wrapped_key: vec![0; 8] })
    }

    async fn open(&self, connection_id: &str, sealed: &Sealed) -> Result<Secret, VaultError> {
        if sealed.nonce != binding(connection_id) {
            return Err(VaultError::Corrupt);
        }
        String::from_utf8(sealed.ciphertext.clone()).map(Secret::new).map_err(|_| VaultError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::jobs::AnyQueue;

    #[tokio::test]
    async fn a_queue_behind_a_trait_object_sends_once_and_does_not_call_itself() {
        let memory = MemoryQueue::default();
        let queue: Arc<dyn AnyQueue> = Arc::new(memory.clone());
        queue.send(&SyncJob::Push { event_id: "ev_1".into() }).await.unwrap();
        assert_eq!(memory.drain(), vec![SyncJob::Push { event_id: "ev_1".into() }]);
        let vault: Arc<dyn crate::jobs::AnyVault> = Arc::new(MemoryVault);
        let sealed = vault.seal("con_1", &Secret::new("t")).await.unwrap();
        assert_eq!(vault.open("con_1", &sealed).await.unwrap().expose(), "t");
        assert_eq!(vault.open("con_2", &sealed).await.unwrap_err(), VaultError::Corrupt);
    }
}
