//! Who is calling, read from the resolver event's `identity`, and what each
//! kind of caller may do (docs/decisions.md, "Authorization").
//!
//! Read from the raw JSON on purpose: `aws_lambda_events`' `AppSyncIdentity`
//! is an untagged enum that tries IAM first, and its IAM struct needs only
//! `sourceIp`, so a Cognito identity deserializes as IAM and loses its `sub`
//! and groups (see the test below). Authorization cannot rest on that.
//!
//! - A Cognito user acts through their groups: `provider` for their own
//!   calendar (rules, exceptions, sources, feed, answering requests),
//!   `customer` for holding time, `admin` for anyone. The groups are
//!   independent: a photographer who also books studios is in both.
//! - An IAM caller is trusted only if its role is on the allow-list
//!   ([`ServiceRoles`], the template's `ServiceRoleArns`); it then acts as an
//!   admin (the order service converts, moves and cancels). Any other IAM
//!   principal, from this account or another, is refused.

use serde_json::Value;

/// The Cognito group of providers.
pub const PROVIDER_GROUP: &str = "provider";
/// The Cognito group of customers.
pub const CUSTOMER_GROUP: &str = "customer";
/// The Cognito group of operators.
pub const ADMIN_GROUP: &str = "admin";

/// A signed-in caller we accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A Cognito user: `sub` and the groups it belongs to.
    User { sub: String, groups: Vec<String> },
    /// An IAM principal whose role is on the allow-list.
    Service { arn: String },
}

/// Why an identity was not accepted. The message is the same for all of
/// them, so a caller learns nothing about the allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No identity, an API key, or an identity without a subject or ARN.
    Anonymous,
    /// An IAM principal not on the allow-list (its ARN, for our log).
    UnknownService(String),
}

/// One IAM role: who may call as a service. Matched on partition, account
/// and role name, because an assumed-role ARN carries neither the role's
/// path nor a fixed session name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Role {
    partition: String,
    account: String,
    name: String,
}

impl Role {
    /// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME` (what the template
    /// parameter holds) or `arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION`
    /// (what AppSync puts in `userArn`).
    fn from_arn(arn: &str) -> Option<Role> {
        let mut parts = arn.splitn(6, ':');
        let (prefix, partition, service, _region, account, resource) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != "arn" || partition.is_empty() || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let name = match service {
            // The name is the last segment of the role's path.
            "iam" => resource.strip_prefix("role/")?.rsplit('/').next()?,
            "sts" => {
                let rest = resource.strip_prefix("assumed-role/")?;
                let (name, session) = rest.split_once('/')?;
                if session.is_empty() {
                    return None;
                }
                name
            }
            _ => return None,
        };
        if name.is_empty() {
            return None;
        }
        Some(Role { partition: partition.to_owned(), account: account.to_owned(), name: name.to_owned() })
    }
}

/// The IAM roles trusted as services (the order service's), from
/// `SERVICE_ROLE_ARNS`: role ARNs separated by commas. Empty: no IAM caller
/// is trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRoles(Vec<Role>);

impl ServiceRoles {
    /// Parses the list; a malformed entry is an error naming it (the ARNs
    /// are not secret).
    pub fn parse(list: &str) -> Result<ServiceRoles, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|arn| match Role::from_arn(arn) {
                Some(role) if arn.contains(":iam::") => Ok(role),
                _ => Err(format!("{arn:?} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")),
            })
            .collect::<Result<_, _>>()
            .map(ServiceRoles)
    }

    /// Whether `arn` (a role or an assumed-role session) is one of ours.
    pub fn allows(&self, arn: &str) -> bool {
        Role::from_arn(arn).is_some_and(|role| self.0.contains(&role))
    }
}

impl Caller {
    /// Reads the identity. Cognito users are accepted as they are (AppSync
    /// verified the token); IAM callers only when `services` allows them.
    pub fn from_identity(identity: Option<&Value>, services: &ServiceRoles) -> Result<Caller, Refusal> {
        let id = identity.and_then(Value::as_object).ok_or(Refusal::Anonymous)?;
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
            return Ok(Caller::User { sub: sub.to_owned(), groups });
        }
        let arn = id.get("userArn").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(Refusal::Anonymous)?;
        if services.allows(arn) { Ok(Caller::Service { arn: arn.to_owned() }) } else { Err(Refusal::UnknownService(arn.to_owned())) }
    }

    fn in_group(&self, group: &str) -> bool {
        matches!(self, Caller::User { groups, .. } if groups.iter().any(|g| g == group))
    }

    /// Admins and allowed services may act for anyone.
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Service { .. }) || self.in_group(ADMIN_GROUP)
    }

    /// The user's id (`sub`); services have none.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User { sub, .. } => Some(sub),
            Caller::Service { .. } => None,
        }
    }

    /// May manage `provider`'s own calendar: that provider (in the
    /// `provider` group), or an admin.
    pub fn may_manage(&self, provider: &str) -> bool {
        self.is_admin() || (self.in_group(PROVIDER_GROUP) && self.user_id() == Some(provider))
    }

    /// May hold time as a customer: the `customer` group, or an admin.
    pub fn may_book(&self) -> bool {
        self.is_admin() || self.in_group(CUSTOMER_GROUP)
    }

    /// May see a hold or event of `provider` with `customer`: its provider
    /// (as a provider), its customer (as a customer), or an admin.
    pub fn may_see(&self, provider: &str, customer: Option<&str>) -> bool {
        self.may_manage(provider) || (self.in_group(CUSTOMER_GROUP) && self.user_id().is_some_and(|me| Some(me) == customer))
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

    const ORDER_SERVICE: &str = "arn:aws:iam::123456789012:role/service/order-service";

    fn services() -> ServiceRoles {
        ServiceRoles::parse(ORDER_SERVICE).unwrap()
    }

    fn cognito() -> Value {
        json!({"sub": "u-123", "issuer": "https://cognito-idp.us-east-1.amazonaws.com/pool", "username": "ana",
               "claims": {"sub": "u-123", "cognito:groups": ["provider"]}, "sourceIp": ["1.2.3.4"],
               "defaultAuthStrategy": "ALLOW"})
    }

    fn iam(arn: &str) -> Value {
        json!({"accountId": "123456789012", "userArn": arn, "sourceIp": ["10.0.0.1"], "username": "AROA…"})
    }

    #[test]
    fn cognito_and_iam_identities_are_told_apart() {
        let user = Caller::from_identity(Some(&cognito()), &services()).unwrap();
        assert_eq!(user, Caller::User { sub: "u-123".into(), groups: vec!["provider".into()] });
        let svc = Caller::from_identity(Some(&iam("arn:aws:sts::123456789012:assumed-role/order-service/x")), &services());
        assert!(matches!(svc, Ok(Caller::Service { .. })));
        assert_eq!(Caller::from_identity(Some(&json!({"sourceIp": ["1.2.3.4"]})), &services()), Err(Refusal::Anonymous));
        assert_eq!(Caller::from_identity(Some(&json!({})), &services()), Err(Refusal::Anonymous));
        assert_eq!(Caller::from_identity(Some(&json!("x")), &services()), Err(Refusal::Anonymous));
        assert_eq!(Caller::from_identity(None, &services()), Err(Refusal::Anonymous));
    }

    #[test]
    fn only_allow_listed_roles_are_services_whatever_the_session_name() {
        let s = services();
        for ok in [
            "arn:aws:sts::123456789012:assumed-role/order-service/i-0abc",
            "arn:aws:sts::123456789012:assumed-role/order-service/order-service-OrderEventsFn",
            "arn:aws:iam::123456789012:role/service/order-service",
            "arn:aws:iam::123456789012:role/order-service",
        ] {
            assert!(s.allows(ok), "{ok}");
        }
        for refused in [
            // Same role name, another account.
            "arn:aws:sts::999999999999:assumed-role/order-service/attacker",
            // Same account, another role (or a prefix of ours).
            "arn:aws:sts::123456789012:assumed-role/order-service-dev/x",
            "arn:aws:sts::123456789012:assumed-role/order/x",
            // Another partition.
            "arn:aws-cn:sts::123456789012:assumed-role/order-service/x",
            // Users, federated users, root, junk.
            "arn:aws:iam::123456789012:user/order-service",
            "arn:aws:sts::123456789012:federated-user/order-service",
            "arn:aws:iam::123456789012:root",
            "arn:aws:sts::123456789012:assumed-role/order-service/",
            "order-service",
            "",
        ] {
            assert!(!s.allows(refused), "{refused}");
            if !refused.is_empty() {
                assert_eq!(Caller::from_identity(Some(&iam(refused)), &s), Err(Refusal::UnknownService(refused.into())));
            }
        }
        // No list, no services.
        assert!(!ServiceRoles::default().allows("arn:aws:sts::123456789012:assumed-role/order-service/x"));
    }

    #[test]
    fn the_allow_list_takes_role_arns_only_and_names_a_bad_entry() {
        assert_eq!(ServiceRoles::parse("").unwrap(), ServiceRoles::default());
        let two = ServiceRoles::parse(" arn:aws:iam::123456789012:role/a , arn:aws:iam::210987654321:role/b ").unwrap();
        assert!(two.allows("arn:aws:sts::210987654321:assumed-role/b/s"));
        let err = ServiceRoles::parse("arn:aws:iam::123456789012:role/a,arn:aws:sts::123456789012:assumed-role/b/s").unwrap_err();
        assert!(err.contains("assumed-role/b/s"), "{err}");
        assert!(ServiceRoles::parse("arn:aws:iam::12345:role/short-account").is_err());
    }

    #[test]
    fn groups_decide_what_a_user_may_do() {
        let user = |groups: &[&str]| Caller::User { sub: "ana".into(), groups: groups.iter().map(|g| g.to_string()).collect() };
        let provider = user(&["provider"]);
        assert!(provider.may_manage("ana") && !provider.may_manage("cara") && !provider.may_book());
        let customer = user(&["customer"]);
        assert!(!customer.may_manage("ana") && customer.may_book());
        assert!(customer.may_see("someone", Some("ana")) && !customer.may_see("ana", Some("ben")));
        let both = user(&["provider", "customer"]);
        assert!(both.may_manage("ana") && both.may_book());
        let none = user(&[]);
        assert!(!none.may_manage("ana") && !none.may_book() && !none.may_see("ana", Some("ana")));
        let admin = user(&["admin"]);
        assert!(admin.may_manage("cara") && admin.may_book() && admin.may_see("x", None));
    }

    #[test]
    fn the_crates_untagged_identity_enum_would_lose_the_cognito_subject() {
        // Why we parse the identity ourselves: the crate reads Cognito as IAM.
        let parsed: aws_lambda_events::appsync::AppSyncIdentity = serde_json::from_value(cognito()).unwrap();
        assert!(matches!(parsed, aws_lambda_events::appsync::AppSyncIdentity::IAM(_)));
    }
}
