//! TLS for database connections: rustls on ring, the stack the rest of the
//! suite uses (no OpenSSL in the Lambda images).
//!
//! Whether TLS is used is the connection's `sslmode`: `prefer` (the
//! default of a URL: TLS when the server offers it), `require`, or
//! `disable`. Aurora with `rds.force_ssl` needs TLS; the functions' pool
//! built from the Aurora secret sets `require`.
//!
//! What the certificate is checked against is [`CA_BUNDLE`]: a PEM file of
//! CA certificates (for Aurora the RDS global bundle, shipped with the
//! functions); with it, the server's chain and its name (the host
//! connected to) are verified. Without it the connection is encrypted but
//! the certificate is not verified, as libpq's `sslmode=require`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{ConfigProblem, StoreError};

/// The environment variable naming the PEM file of CA certificates.
pub const CA_BUNDLE: &str = "DATABASE_CA_BUNDLE";

/// The TLS connector for this process's database connections, from
/// [`CA_BUNDLE`] if it is set.
pub fn connector() -> Result<MakeRustlsConnect, StoreError> {
    match std::env::var_os(CA_BUNDLE) {
        Some(path) if !path.is_empty() => connector_with_ca(&std::fs::read(&path).map_err(|e| bundle_error(e.to_string()))?),
        _ => Ok(connector_without_verification()),
    }
}

/// A connector that verifies the server against the CA certificates in
/// `pem` (and its name against the host).
pub fn connector_with_ca(pem: &[u8]) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = RootCertStore::empty();
    let mut reader = pem;
    for cert in rustls_pemfile::certs(&mut reader) {
        let cert = cert.map_err(|e| bundle_error(format!("not PEM: {e}")))?;
        roots.add(cert).map_err(|e| bundle_error(format!("a certificate cannot be used: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bundle_error("holds no certificate".into()));
    }
    let config = builder().with_root_certificates(roots).with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// A connector that encrypts but does not verify the server's certificate.
pub fn connector_without_verification() -> MakeRustlsConnect {
    let algorithms = provider().signature_verification_algorithms;
    let config = builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(EncryptOnly { algorithms }))
        .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

fn bundle_error(problem: String) -> StoreError {
    StoreError::Config { var: CA_BUNDLE, problem: ConfigProblem::CaBundle(problem) }
}

/// Accepts any certificate, but still checks that the server holds its key
/// (the handshake signatures): encryption without authentication.
#[derive(Debug)]
struct EncryptOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
