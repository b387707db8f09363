//! The shared AWS SDK configuration.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Loads region, credentials and endpoint from the environment (the Lambda
/// role in AWS; `AWS_ENDPOINT_URL`, dummy keys and `AWS_REGION` against
/// moto). Call once per process and build every client from the result.
///
/// The HTTP client is hyper with rustls on ring: the SDK's default TLS
/// stack is aws-lc, a second crypto library that takes minutes to build.
pub async fn load() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http).load().await
}
