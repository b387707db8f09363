//! [`cal_sync::jobs::TokenVault`] on KMS: envelope encryption of the sync's
//! refresh tokens.
//!
//! Sealing asks KMS for a fresh AES-256 data key (GenerateDataKey), encrypts
//! the token with it under AES-256-GCM (a random 96-bit nonce, the
//! connection id as associated data) and keeps only the data key as KMS
//! wrapped it; the plaintext key is wiped as soon as the token is
//! encrypted. Opening has KMS unwrap the key (Decrypt) and decrypts.
//!
//! Both KMS calls carry the encryption context
//! `{"connection_id": <id>, "purpose": "calendar-sync-token"}`: KMS will not
//! unwrap a key under another connection's context, the IAM policy allows
//! the key's use only with `purpose` set so (template.yaml), and CloudTrail
//! records which connection's token was opened. The connection id is also
//! the GCM associated data, so a ciphertext moved to another row fails
//! even with its own wrapped key beside it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use cal_sync::Secret;
use cal_sync::jobs::{Sealed, TokenVault, VaultError};
use rand::RngCore;
use zeroize::Zeroizing;

/// The `purpose` of every encryption context this vault uses; the IAM
/// policies of template.yaml require it.
pub const PURPOSE: &str = "calendar-sync-token";

/// Bytes of an AES-GCM nonce (96 bits, the size GCM is defined for).
const NONCE_BYTES: usize = 12;
/// Bytes of an AES-256 key.
const KEY_BYTES: usize = 32;

/// Seals and opens refresh tokens under one KMS key (`TOKEN_KMS_KEY_ID`).
#[derive(Clone, Debug)]
pub struct KmsTokenVault {
    client: Client,
    key_id: String,
}

impl KmsTokenVault {
    /// Uses the KMS key `key_id` (id, ARN or alias).
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        KmsTokenVault { client, key_id: key_id.into() }
    }
}

impl TokenVault for KmsTokenVault {
    async fn seal(&self, connection_id: &str, secret: &Secret) -> Result<Sealed, VaultError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("connection_id", connection_id)
            .encryption_context("purpose", PURPOSE)
            .send()
            .await
            .map_err(|e| VaultError::Kms(format!("GenerateDataKey with {}: {}", self.key_id, DisplayErrorContext(&e))))?;
        let wrapped_key = out.ciphertext_blob.map(Blob::into_inner).filter(|k| !k.is_empty());
        // Moved out of the answer, not copied, and wiped when dropped.
        let key = Zeroizing::new(out.plaintext.map(Blob::into_inner).unwrap_or_default());
        let (Some(wrapped_key), KEY_BYTES) = (wrapped_key, key.len()) else {
            return Err(VaultError::Kms("GenerateDataKey answered without a 256-bit key".into()));
        };
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = {
            // The cipher's key schedule is wiped on drop too (aes/zeroize).
            let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| VaultError::Kms("unusable data key".into()))?;
            let payload = Payload { msg: secret.expose().as_bytes(), aad: connection_id.as_bytes() };
            cipher.encrypt(Nonce::from_slice(&nonce), payload).map_err(|_| VaultError::Kms("encryption failed".into()))?
        };
        drop(key);
        Ok(Sealed { ciphertext, nonce: nonce.to_vec(), wrapped_key })
    }

    async fn open(&self, connection_id: &str, sealed: &Sealed) -> Result<Secret, VaultError> {
        // A nonce of another length would not be ours (and from_slice panics on it).
        if sealed.nonce.len() != NONCE_BYTES || sealed.wrapped_key.is_empty() {
            return Err(VaultError::Corrupt);
        }
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(sealed.wrapped_key.clone()))
            .encryption_context("connection_id", connection_id)
            .encryption_context("purpose", PURPOSE)
            .send()
            .await
            .map_err(|e| decrypt_error(&self.key_id, e))?;
        let key = Zeroizing::new(out.plaintext.map(Blob::into_inner).unwrap_or_default());
        if key.len() != KEY_BYTES {
            return Err(VaultError::Corrupt);
        }
        let plaintext = {
            let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| VaultError::Corrupt)?;
            let payload = Payload { msg: &sealed.ciphertext, aad: connection_id.as_bytes() };
            cipher.decrypt(Nonce::from_slice(&sealed.nonce), payload).map_err(|_| VaultError::Corrupt)?
        };
        drop(key);
        String::from_utf8(plaintext).map(Secret::new).map_err(|_| VaultError::Corrupt)
    }
}

/// KMS refusing to unwrap *this* wrapped key under *this* context is a
/// sealed value that is not ours ([`VaultError::Corrupt`]); anything else
/// (throttling, a disabled key, the network) is the key service failing.
fn decrypt_error(key_id: &str, e: SdkError<DecryptError>) -> VaultError {
    match e.as_service_error() {
        Some(DecryptError::InvalidCiphertextException(_) | DecryptError::IncorrectKeyException(_)) => VaultError::Corrupt,
        _ => VaultError::Kms(format!("Decrypt with {key_id}: {}", DisplayErrorContext(&e))),
    }
}
