//! Errors of the AWS adapters.

/// A call to an AWS service failed. The message names the operation and,
/// where there is one, the table or bus; the SDK error is the source.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The service refused or the call did not complete.
    #[error("{operation} on {resource} failed: {detail}")]
    Call {
        /// E.g. `PutItem`.
        operation: &'static str,
        /// The table, bus, ... it was called on.
        resource: String,
        /// The service's code and message (the SDK's plain Display says
        /// only "service error").
        detail: String,
        /// The SDK's error (with the service's code and message).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored item does not read as what this code wrote.
    #[error("item {key:?} in {table} has an unreadable {attribute}")]
    Corrupt {
        /// The table.
        table: String,
        /// The item's key.
        key: String,
        /// The attribute.
        attribute: &'static str,
    },
}

impl AwsError {
    pub(crate) fn call<E>(operation: &'static str, resource: &str, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let detail = aws_sdk_dynamodb::error::DisplayErrorContext(&source).to_string();
        AwsError::Call { operation, resource: resource.to_owned(), detail, source: Box::new(source) }
    }
}
