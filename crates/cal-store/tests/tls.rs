//! Database TLS (rustls): the throwaway server of `scripts/pg.sh` offers TLS
//! with a certificate for localhost and 127.0.0.1 signed by the CA in
//! `DATABASE_TEST_CA`.

use cal_store::tls::{CA_BUNDLE, connector_with_ca, connector_without_verification};
use cal_store::{ConfigProblem, StoreError};
use tokio_postgres::Config;
use tokio_postgres::config::SslMode;

fn server() -> Config {
    cal_store::testing::server_config()
}

fn test_ca() -> Vec<u8> {
    let path = std::env::var("DATABASE_TEST_CA")
        .expect("DATABASE_TEST_CA is not set: start the server with scripts/pg.sh (make test does), which makes its CA");
    std::fs::read(path).expect("the CA file of scripts/pg.sh")
}

/// Whether the connection `config` makes with `tls` is encrypted.
async fn encrypted<T>(config: &Config, tls: T) -> Result<bool, tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(connection);
    let row = client.query_one("select ssl from pg_stat_ssl where pid = pg_backend_pid()", &[]).await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn the_pool_and_the_cli_connection_encrypt_when_the_server_offers_tls() {
    // sslmode=prefer (a URL's default): TLS, unverified without a bundle.
    let pool = cal_store::pool_from_config(server(), 1).unwrap();
    let client = pool.get().await.unwrap();
    let row = client.query_one("select ssl from pg_stat_ssl where pid = pg_backend_pid()", &[]).await.unwrap();
    assert!(row.get::<_, bool>(0), "the pooled connection is encrypted");

    let cli = cal_store::connect(&std::env::var("DATABASE_URL").unwrap()).await.unwrap();
    let row = cli.query_one("select ssl from pg_stat_ssl where pid = pg_backend_pid()", &[]).await.unwrap();
    assert!(row.get::<_, bool>(0), "calctl's connection is encrypted");

    let mut required = server();
    required.ssl_mode(SslMode::Require);
    assert!(encrypted(&required, connector_without_verification()).await.unwrap());
}

#[tokio::test]
async fn with_a_bundle_the_certificate_and_the_name_are_verified() {
    // The server's certificate names localhost and 127.0.0.1: connect by name.
    let s = server();
    let mut config = Config::new();
    config.host("localhost").port(s.get_ports()[0]).user(s.get_user().unwrap()).dbname(s.get_dbname().unwrap_or("postgres"));
    config.ssl_mode(SslMode::Require);
    assert!(encrypted(&config, connector_with_ca(&test_ca()).unwrap()).await.unwrap());

    // Another CA: the handshake fails, nothing is sent in the clear.
    let other = connector_with_ca(include_bytes!("fixtures/unrelated-ca.pem")).unwrap();
    let err = encrypted(&config, other).await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}

#[tokio::test]
async fn a_bundle_that_is_not_pem_names_the_variable() {
    for (bundle, says) in [(&b""[..], "holds no certificate"), (&b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"[..], "not PEM")] {
        let err = connector_with_ca(bundle).err().expect("refused");
        assert!(matches!(&err, StoreError::Config { var, problem: ConfigProblem::CaBundle(_) } if *var == CA_BUNDLE), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("DATABASE_CA_BUNDLE: ") && text.contains(says), "{text}");
    }
}
