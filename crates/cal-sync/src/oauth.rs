//! The OAuth 2.0 authorization code flow with PKCE (RFC 7636, S256), and the
//! `state` that carries who started it.
//!
//! `state` is signed, bound to the user and the service, and lives ten
//! minutes: `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`.
//! It carries a random nonce; the callback records the nonce as used, which
//! makes the state single-use. The PKCE verifier is not stored anywhere: it
//! is derived from the nonce with the same key (HMAC of `"pkce:" nonce`),
//! so only our key's holder can present it at the token endpoint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cal_core::time::Instant;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Secret, ServiceKind};

/// How long a consent may take, from `startCalendarConnect` to the callback.
pub const STATE_LIFETIME_SECS: i64 = 600;

/// The key that signs states and derives verifiers (from Secrets Manager;
/// at least 32 bytes).
#[derive(Clone)]
pub struct StateKey(Vec<u8>);

impl StateKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, StateError> {
        let bytes = bytes.into();
        if bytes.len() < 32 {
            return Err(StateError::WeakKey);
        }
        Ok(StateKey(bytes))
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for p in parts {
            mac.update(p);
        }
        mac
    }
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(***)")
    }
}

/// What a state says once its signature is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectState {
    /// The provider (our user) who asked to connect.
    #[serde(rename = "u")]
    pub user_id: String,
    #[serde(rename = "k")]
    pub service: ServiceKind,
    /// Random, base64url; recorded as used by the callback.
    #[serde(rename = "n")]
    pub nonce: String,
    /// Unix seconds after which the state is refused.
    #[serde(rename = "e")]
    pub expires: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state signing key must be at least 32 bytes")]
    WeakKey,
    #[error("state: not one of ours")]
    Forged,
    #[error("state: expired")]
    Expired,
}

/// A started connect: the signed state and the verifier's challenge.
#[derive(Debug)]
pub struct Started {
    pub state: String,
    pub code_challenge: String,
    pub nonce: String,
}

/// Starts a connect for `user_id` at `now`.
pub fn start(key: &StateKey, user_id: &str, service: ServiceKind, now: Instant) -> Started {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let nonce = URL_SAFE_NO_PAD.encode(raw);
    let state = ConnectState { user_id: user_id.to_owned(), service, nonce: nonce.clone(), expires: now.unix() + STATE_LIFETIME_SECS };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&state).expect("state serializes"));
    let sig = URL_SAFE_NO_PAD.encode(key.mac(&[payload.as_bytes()]).finalize().into_bytes());
    let code_challenge = challenge(&verifier(key, &nonce));
    Started { state: format!("{payload}.{sig}"), code_challenge, nonce }
}

/// Checks a state's signature and age (not its single use: the caller
/// records the nonce).
pub fn verify(key: &StateKey, state: &str, now: Instant) -> Result<ConnectState, StateError> {
    let (payload, sig) = state.split_once('.').ok_or(StateError::Forged)?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| StateError::Forged)?;
    key.mac(&[payload.as_bytes()]).verify_slice(&sig).map_err(|_| StateError::Forged)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| StateError::Forged)?;
    let state: ConnectState = serde_json::from_slice(&bytes).map_err(|_| StateError::Forged)?;
    if now.unix() >= state.expires {
        return Err(StateError::Expired);
    }
    Ok(state)
}

/// The PKCE verifier of a nonce: 43 base64url characters (RFC 7636 §4.1).
pub fn verifier(key: &StateKey, nonce: &str) -> Secret {
    Secret::new(URL_SAFE_NO_PAD.encode(key.mac(&[b"pkce:", nonce.as_bytes()]).finalize().into_bytes()))
}

/// `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2, S256).
pub fn challenge(verifier: &Secret) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()))
}

/// A random secret for a channel token or a `clientState` (128 bits).
pub fn random_secret() -> Secret {
    let mut raw = [0u8; 24];
    rand::rng().fill_bytes(&mut raw);
    Secret::new(URL_SAFE_NO_PAD.encode(raw))
}

/// The SHA-256 of a secret, the only form stored.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StateKey {
        StateKey::new(vec![7u8; 32]).unwrap()
    }

    fn at(s: &str) -> Instant {
        Instant::parse(s).unwrap()
    }

    #[test]
    fn a_state_round_trips_and_is_bound_to_user_service_and_time() {
        let now = at("2026-03-01T12:00:00Z");
        let s = start(&key(), "u_ana", ServiceKind::Google, now);
        let back = verify(&key(), &s.state, now).unwrap();
        assert_eq!((back.user_id.as_str(), back.service, back.nonce.as_str()), ("u_ana", ServiceKind::Google, s.nonce.as_str()));
        assert_eq!(challenge(&verifier(&key(), &s.nonce)), s.code_challenge);
        // Ten minutes, not a second more.
        assert!(verify(&key(), &s.state, at("2026-03-01T12:09:59Z")).is_ok());
        assert_eq!(verify(&key(), &s.state, at("2026-03-01T12:10:00Z")), Err(StateError::Expired));
        // Another key, or a changed payload, is a forgery.
        let other = StateKey::new(vec![8u8; 32]).unwrap();
        assert_eq!(verify(&other, &s.state, now), Err(StateError::Forged));
        let (payload, sig) = s.state.split_once('.').unwrap();
        let evil = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap().replace("u_ana", "u_eve"),
        );
        assert_eq!(verify(&key(), &format!("{evil}.{sig}"), now), Err(StateError::Forged));
        assert_eq!(verify(&key(), "garbage", now), Err(StateError::Forged));
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s_example() {
        // RFC 7636 Appendix B.
        let v = Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge(&v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(verifier(&key(), "n").expose().len(), 43);
    }

    #[test]
    fn a_short_key_is_refused() {
        assert_eq!(StateKey::new(vec![1u8; 31]).unwrap_err(), StateError::WeakKey);
    }
}
