//! The messages of the sync queue and the seams the functions share: the
//! receivers and the renewer send [`SyncJob`]s, the worker runs them; the
//! refresh tokens are sealed by a [`TokenVault`] (KMS envelope encryption in
//! cal-aws) and jobs travel through a [`JobQueue`] (SQS in cal-aws).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// One unit of work for the sync worker. Jobs say *what* to bring up to
/// date, never *what changed*: the worker reads the current state (the
/// service's calendar, our event row), so a duplicated, late or reordered
/// job is harmless.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum SyncJob {
    /// Read one calendar from its stored token (a notification came, or the
    /// periodic sync is due).
    Pull { connection_id: String, calendar_id: String },
    /// Read one calendar in full (410 Gone, a `missed` lifecycle event, a
    /// resync asked for by the provider or an operator).
    Resync { connection_id: String, calendar_id: String },
    /// Bring our booking `event_id` into the provider's booking calendar as
    /// it is now (confirmed: written; cancelled: removed).
    Push { event_id: String },
    /// Set up or renew the calendar's push channel / subscription.
    Watch { connection_id: String, calendar_id: String },
    /// A notification as a receiver got it: which channel / subscription
    /// it names, the SHA-256 (hex) of the secret it presented, and what it
    /// says. The receivers hold no database and no key: the worker checks
    /// the proof against the stored hash and drops a forgery.
    Notify {
        watch_id: String,
        proof: String,
        /// Google's `X-Goog-Resource-ID`, checked against the stored one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource_id: Option<String>,
        event: NotifyEvent,
    },
}

/// What a notification says, once believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// The calendar's events changed: pull.
    Changed,
    /// Notifications were lost (Graph `missed`): read in full.
    Missed,
    /// The subscription must be renewed or made anew (Graph
    /// `reauthorizationRequired`, `subscriptionRemoved`).
    Resubscribe,
}

/// The proof a notification carries: the SHA-256 (hex) of its secret.
pub fn proof(secret: &str) -> String {
    crate::oauth::secret_hash(secret).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `proof` is the hex of `stored_hash`, compared in constant time.
pub fn proof_matches(proof: &str, stored_hash: &[u8]) -> bool {
    let expected: String = stored_hash.iter().map(|b| format!("{b:02x}")).collect();
    !stored_hash.is_empty()
        && proof.len() == expected.len()
        && proof.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

impl SyncJob {
    /// Jobs for one calendar share a group, so a FIFO queue runs them one
    /// at a time; a push job is grouped by its event.
    pub fn group(&self) -> String {
        match self {
            SyncJob::Pull { connection_id, calendar_id }
            | SyncJob::Resync { connection_id, calendar_id }
            | SyncJob::Watch { connection_id, calendar_id } => format!("{connection_id}/{calendar_id}"),
            SyncJob::Push { event_id } => format!("event/{event_id}"),
            SyncJob::Notify { watch_id, .. } => format!("watch/{watch_id}"),
        }
    }
}

/// Where jobs go (SQS in production).
pub trait JobQueue: Send + Sync {
    fn send(&self, job: &SyncJob) -> impl Future<Output = Result<(), QueueError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sync queue refused a job: {0}")]
pub struct QueueError(pub String);

/// A refresh token sealed by envelope encryption: `ciphertext` is the token
/// under a one-time data key (AES-256-GCM, `nonce`), and `wrapped_key` is
/// that data key encrypted by the KMS key. The encryption context binds it
/// to its connection: a row copied to another connection does not open.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub wrapped_key: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

/// Seals and opens secrets for one connection.
pub trait TokenVault: Send + Sync {
    fn seal(&self, connection_id: &str, secret: &Secret) -> impl Future<Output = Result<Sealed, VaultError>> + Send;
    fn open(&self, connection_id: &str, sealed: &Sealed) -> impl Future<Output = Result<Secret, VaultError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// KMS (or the network to it) failed; the message names no secret.
    #[error("the key service failed: {0}")]
    Kms(String),
    /// The sealed value does not open (tampered, or another connection's).
    #[error("a sealed token does not open for this connection")]
    Corrupt,
}

/// A boxed future, for the object-safe forms below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`JobQueue`] as a trait object (`Arc<dyn AnyQueue>`), for holders that
/// cannot be generic (fn-api's `Deps`). Every `JobQueue` is one.
pub trait AnyQueue: Send + Sync {
    fn send_boxed<'a>(&'a self, job: &'a SyncJob) -> BoxFuture<'a, Result<(), QueueError>>;
}

impl<Q: JobQueue> AnyQueue for Q {
    fn send_boxed<'a>(&'a self, job: &'a SyncJob) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(self.send(job))
    }
}

impl JobQueue for Arc<dyn AnyQueue> {
    async fn send(&self, job: &SyncJob) -> Result<(), QueueError> {
        // `**self`: the object itself (the Arc is an `AnyQueue` too, through
        // this very impl, and would call itself).
        (**self).send_boxed(job).await
    }
}

/// [`TokenVault`] as a trait object; every `TokenVault` is one.
pub trait AnyVault: Send + Sync {
    fn seal_boxed<'a>(&'a self, connection_id: &'a str, secret: &'a Secret) -> BoxFuture<'a, Result<Sealed, VaultError>>;
    fn open_boxed<'a>(&'a self, connection_id: &'a str, sealed: &'a Sealed) -> BoxFuture<'a, Result<Secret, VaultError>>;
}

impl<V: TokenVault> AnyVault for V {
    fn seal_boxed<'a>(&'a self, connection_id: &'a str, secret: &'a Secret) -> BoxFuture<'a, Result<Sealed, VaultError>> {
        Box::pin(self.seal(connection_id, secret))
    }

    fn open_boxed<'a>(&'a self, connection_id: &'a str, sealed: &'a Sealed) -> BoxFuture<'a, Result<Secret, VaultError>> {
        Box::pin(self.open(connection_id, sealed))
    }
}

impl TokenVault for Arc<dyn AnyVault> {
    async fn seal(&self, connection_id: &str, secret: &Secret) -> Result<Sealed, VaultError> {
        (**self).seal_boxed(connection_id, secret).await
    }

    async fn open(&self, connection_id: &str, sealed: &Sealed) -> Result<Secret, VaultError> {
        (**self).open_boxed(connection_id, sealed).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_tagged_json_and_grouped_per_calendar() {
        let job = SyncJob::Pull { connection_id: "con_1".into(), calendar_id: "primary".into() };
        let text = serde_json::to_string(&job).unwrap();
        assert_eq!(text, r#"{"job":"pull","connection_id":"con_1","calendar_id":"primary"}"#);
        assert_eq!(serde_json::from_str::<SyncJob>(&text).unwrap(), job);
        assert_eq!(job.group(), "con_1/primary");
        assert_eq!(SyncJob::Push { event_id: "ev_1".into() }.group(), "event/ev_1");
        assert!(proof_matches(&proof("s3cret"), &crate::oauth::secret_hash("s3cret")));
        assert!(!proof_matches(&proof("s3cret"), &crate::oauth::secret_hash("other")));
        assert!(!proof_matches("", &[]));
        assert!(format!("{:?}", Sealed { ciphertext: vec![1, 2], nonce: vec![], wrapped_key: vec![] }).contains("2 bytes"));
    }
}
