//! Who is calling, read from the resolver event's `identity`.
//!
//! Read from the raw JSON on purpose: `aws_lambda_events`' `AppSyncIdentity`
//! is an untagged enum that tries IAM first, and its IAM struct needs only
//! `sourceIp`, so a Cognito identity deserializes as IAM and loses its `sub`
//! and groups (see the test below). Authorization cannot rest on that.

use serde_json::Value;

/// A signed-in caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A Cognito user: `sub` and the groups it belongs to.
    User { sub: String, groups: Vec<String> },
    /// An IAM principal: a service such as the order service.
    Service { arn: String },
}

impl Caller {
    /// Reads the identity; `None` for anything we do not accept (no
    /// identity, API key, an identity without a subject).
    pub fn from_identity(identity: Option<&Value>) -> Option<Caller> {
        let id = identity?.as_object()?;
        if let Some(sub) = id.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            let groups = id
                .get("claims")
                .and_then(|c| c.get("cognito:groups"))
                .map(|g| match g {
                    Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                    // Some token shapes carry the groups as one string.
                    Value::String(s) => s.split([',', ' ']).filter(|p| !p.is_empty()).map(str::to_owned).collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default();
            return Some(Caller::User { sub: sub.to_owned(), groups });
        }
        let arn = id.get("userArn").and_then(Value::as_str).filter(|s| !s.is_empty())?;
        Some(Caller::Service { arn: arn.to_owned() })
    }

    /// Admins and services may act for anyone.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::User { groups, .. } => groups.iter().any(|g| g == "admin"),
            Caller::Service { .. } => true,
        }
    }

    /// The user's id (`sub`); services have none.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User { sub, .. } => Some(sub),
            Caller::Service { .. } => None,
        }
    }

    /// Whether the caller is `user_id` or an admin.
    pub fn is_or_admin(&self, user_id: &str) -> bool {
        self.is_admin() || self.user_id() == Some(user_id)
    }

    /// For logs: the subject or the ARN, never a token.
    pub fn describe(&self) -> String {
        match self {
            Caller::User { sub, .. } => format!("user:{sub}"),
            Caller::Service { arn } => format!("service:{arn}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cognito() -> Value {
        json!({"sub": "u-123", "issuer": "https://cognito-idp.us-east-1.amazonaws.com/pool", "username": "ana",
               "claims": {"sub": "u-123", "cognito:groups": ["provider"]}, "sourceIp": ["1.2.3.4"],
               "defaultAuthStrategy": "ALLOW"})
    }

    #[test]
    fn cognito_and_iam_identities_are_told_apart() {
        assert_eq!(Caller::from_identity(Some(&cognito())), Some(Caller::User { sub: "u-123".into(), groups: vec!["provider".into()] }));
        let iam = json!({"accountId": "123456789012", "userArn": "arn:aws:sts::123456789012:assumed-role/order-service/x",
                         "sourceIp": ["10.0.0.1"], "username": "AROA…"});
        assert!(matches!(Caller::from_identity(Some(&iam)), Some(Caller::Service { .. })));
        assert_eq!(Caller::from_identity(Some(&json!({"sourceIp": ["1.2.3.4"]}))), None);
        assert_eq!(Caller::from_identity(None), None);
    }

    #[test]
    fn the_crates_untagged_identity_enum_would_lose_the_cognito_subject() {
        // Why we parse the identity ourselves: the crate reads Cognito as IAM.
        let parsed: aws_lambda_events::appsync::AppSyncIdentity = serde_json::from_value(cognito()).unwrap();
        assert!(matches!(parsed, aws_lambda_events::appsync::AppSyncIdentity::IAM(_)));
    }
}
