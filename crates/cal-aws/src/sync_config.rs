//! What the calendar-sync functions read at cold start: the names of their
//! variables and [`SyncSecrets`], the one Secrets Manager secret that holds
//! the OAuth clients of both services and the key that signs `state`.

use aws_config::SdkConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cal_sync::Secret;
use cal_sync::oauth::StateKey;
use serde_json::{Map, Value};

use crate::config::{ConfigError, Env};

/// The ARN of the secret [`SyncSecrets`] reads.
pub const SYNC_SECRETS_ARN: &str = "SYNC_SECRETS_ARN";
/// The sync queue's URL (a FIFO queue in template.yaml).
pub const SYNC_QUEUE_URL: &str = "SYNC_QUEUE_URL";
/// The KMS key that wraps the data keys of sealed refresh tokens.
pub const TOKEN_KMS_KEY_ID: &str = "TOKEN_KMS_KEY_ID";

/// `SYNC_QUEUE_URL` (required).
pub fn sync_queue_url(env: &Env) -> Result<String, ConfigError> {
    env.required(SYNC_QUEUE_URL)
}

/// `TOKEN_KMS_KEY_ID` (required): a key id, ARN or alias.
pub fn token_kms_key_id(env: &Env) -> Result<String, ConfigError> {
    env.required(TOKEN_KMS_KEY_ID)
}

/// The fields of the secret, in the order a refusal lists them.
const FIELDS: [&str; 5] =
    ["google_client_id", "google_client_secret", "microsoft_client_id", "microsoft_client_secret", "state_key"];

/// The sync's secret: both services' OAuth clients and the state key.
/// Debug shows the client ids only (they are public: they travel in the
/// browser's consent URL); the rest prints as `***`.
#[derive(Clone, Debug)]
pub struct SyncSecrets {
    pub google_client_id: String,
    pub google_client_secret: Secret,
    pub microsoft_client_id: String,
    pub microsoft_client_secret: Secret,
    /// Signs `state` and derives PKCE verifiers (base64 in the secret, at
    /// least 32 bytes once decoded).
    pub state_key: StateKey,
}

/// Why [`SyncSecrets`] could not be read. Messages name the variable or
/// the secret's fields, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SyncSecretsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the secret in SYNC_SECRETS_ARN could not be read")]
    Fetch(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the secret in SYNC_SECRETS_ARN {0}")]
    Shape(String),
}

impl SyncSecrets {
    /// Both services' clients on their public endpoints, with
    /// `redirect_uri` (the callback's URL) for the code flow; functions that
    /// only refresh tokens may pass `""`.
    pub fn services(&self, redirect_uri: &str) -> cal_sync::Services<cal_sync::google::Google, cal_sync::microsoft::Graph> {
        let credentials = |client_id: &str, client_secret: &Secret| cal_sync::ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret: client_secret.clone(),
            redirect_uri: redirect_uri.to_owned(),
        };
        cal_sync::Services {
            google: cal_sync::google::Google::new(
                cal_sync::google::Google::public_endpoints(),
                credentials(&self.google_client_id, &self.google_client_secret),
            ),
            graph: cal_sync::microsoft::Graph::new(
                cal_sync::microsoft::Graph::public_endpoints(),
                credentials(&self.microsoft_client_id, &self.microsoft_client_secret),
            ),
        }
    }

    /// Fetches the secret named by `SYNC_SECRETS_ARN`, once (cold start).
    pub async fn load(sdk: &SdkConfig, env: &Env) -> Result<SyncSecrets, SyncSecretsError> {
        let arn: String = env.required(SYNC_SECRETS_ARN)?;
        let client = aws_sdk_secretsmanager::Client::new(sdk);
        let out = client.get_secret_value().secret_id(arn).send().await.map_err(|e| SyncSecretsError::Fetch(Box::new(e)))?;
        let text = out.secret_string().ok_or_else(|| SyncSecretsError::Shape("has no SecretString".into()))?;
        SyncSecrets::parse(text)
    }

    /// The secret's JSON: an object with every field of [`FIELDS`] a
    /// non-empty string (empty is how the template's placeholder says "not
    /// filled in yet"). Other fields are ignored.
    pub fn parse(text: &str) -> Result<SyncSecrets, SyncSecretsError> {
        // Read field by field, not through serde's derive: its messages can
        // quote a value ("invalid type: string \"hunter2\"").
        let object: Map<String, Value> =
            serde_json::from_str(text).map_err(|_| SyncSecretsError::Shape("is not a JSON object".into()))?;
        let missing: Vec<&str> = FIELDS
            .into_iter()
            .filter(|f| !matches!(object.get(*f), Some(Value::String(v)) if !v.trim().is_empty()))
            .collect();
        if !missing.is_empty() {
            return Err(SyncSecretsError::Shape(format!("lacks {} (each a non-empty string)", missing.join(", "))));
        }
        let field = |name: &str| object[name].as_str().unwrap_or_default().trim().to_owned();
        let key_bytes = STANDARD
            .decode(field("state_key"))
            .map_err(|_| SyncSecretsError::Shape("has a state_key that is not base64".into()))?;
        let state_key = StateKey::new(key_bytes)
            .map_err(|_| SyncSecretsError::Shape("has a state_key shorter than 32 bytes (decoded)".into()))?;
        Ok(SyncSecrets {
            google_client_id: field("google_client_id"),
            google_client_secret: Secret::new(field("google_client_secret")),
            microsoft_client_id: field("microsoft_client_id"),
            microsoft_client_secret: Secret::new(field("microsoft_client_secret")),
            state_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({
            "google_client_id": "g-id.apps.googleusercontent.com",
            "google_client_secret": "g-hunter2",
            "microsoft_client_id": "m-id",
            "microsoft_client_secret": "m-hunter2",
            "state_key": STANDARD.encode([7u8; 32]),
        })
    }

    #[test]
    fn a_complete_secret_reads_and_never_prints_its_secrets() {
        let s = SyncSecrets::parse(&full().to_string()).unwrap();
        assert_eq!((s.google_client_id.as_str(), s.microsoft_client_id.as_str()), ("g-id.apps.googleusercontent.com", "m-id"));
        assert_eq!((s.google_client_secret.expose(), s.microsoft_client_secret.expose()), ("g-hunter2", "m-hunter2"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains(&STANDARD.encode([7u8; 32])), "{shown}");
    }

    #[test]
    fn missing_or_empty_fields_are_refused_by_name() {
        let mut v = full();
        v.as_object_mut().unwrap().remove("microsoft_client_secret");
        v["state_key"] = json!("");
        let err = SyncSecrets::parse(&v.to_string()).unwrap_err().to_string();
        assert_eq!(err, "the secret in SYNC_SECRETS_ARN lacks microsoft_client_secret, state_key (each a non-empty string)");
        // A number where a string belongs is refused without quoting it.
        let mut v = full();
        v["google_client_secret"] = json!(424242);
        let err = SyncSecrets::parse(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains("lacks google_client_secret") && !err.contains("424242"), "{err}");
        let err = SyncSecrets::parse("not json, hunter2").unwrap_err().to_string();
        assert_eq!(err, "the secret in SYNC_SECRETS_ARN is not a JSON object");
    }

    #[test]
    fn the_state_key_must_be_base64_of_32_bytes_or_more() {
        let mut v = full();
        v["state_key"] = json!("not base64!");
        let err = SyncSecrets::parse(&v.to_string()).unwrap_err().to_string();
        assert_eq!(err, "the secret in SYNC_SECRETS_ARN has a state_key that is not base64");
        v["state_key"] = json!(STANDARD.encode([7u8; 31]));
        let err = SyncSecrets::parse(&v.to_string()).unwrap_err().to_string();
        assert_eq!(err, "the secret in SYNC_SECRETS_ARN has a state_key shorter than 32 bytes (decoded)");
        // What the template's GenerateSecretString makes: 64 letters and
        // digits, which is base64 of 48 bytes.
        v["state_key"] = json!("Abcdefghij0123456789Abcdefghij0123456789Abcdefghij0123456789Abcd");
        assert!(SyncSecrets::parse(&v.to_string()).is_ok());
    }

    #[test]
    fn the_variables_are_required() {
        let env = Env::from_pairs(&[(SYNC_QUEUE_URL, "https://sqs.eu-west-1.amazonaws.com/1/q.fifo")]);
        assert_eq!(sync_queue_url(&env).unwrap(), "https://sqs.eu-west-1.amazonaws.com/1/q.fifo");
        assert_eq!(token_kms_key_id(&env).unwrap_err().to_string(), "TOKEN_KMS_KEY_ID is not set");
    }
}
