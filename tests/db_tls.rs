//! Database TLS (issue #13 item 6, invariant 8): `verify-ca` and `verify-full` really verify the
//! server certificate against the CA bundle (`ONYX_DB_CA_BUNDLE`), fail clearly without one, and
//! `require` (the default for secrets) is TLS.
//!
//! The local PostgreSQL serves Debian's self-signed "snakeoil" certificate (`SHOW ssl_cert_file`:
//! `CN=localhost`, `subjectAltName DNS:localhost`, `CA:FALSE`). A self-signed certificate is its own
//! issuer, so using it as the CA bundle makes a valid chain; a CA generated here with `openssl`,
//! even with the same subject name, is a wrong CA. The server cannot be reconfigured from a test,
//! so the host-name checks use what that certificate names: `localhost` matches, `127.0.0.1` (an
//! IP address the certificate does not list) does not.

use std::path::PathBuf;
use std::str::FromStr;

use onyx_core::db::{self, DbConfig, DbError, TlsMode};
use onyx_core::tokio_postgres::{Client, Config};

use crate::support::{TestDb, pg_base_url, unique};

/// The certificate the server presents, read from the file the server names (superuser).
async fn server_certificate() -> PathBuf {
    let admin = TestDb { name: "postgres".into(), url: format!("{}/postgres", pg_base_url()) }.connect().await;
    let file: String = admin.query_one("SHOW ssl_cert_file", &[]).await.expect("ssl_cert_file").get(0);
    let file = PathBuf::from(file);
    assert!(file.is_file(), "the server's certificate {} is not readable here", file.display());
    file
}

/// A fresh self-signed RSA CA with the given common name, written with openssl.
fn wrong_ca(common_name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("onyx-tls-"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &format!("/CN={common_name}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl could not make a test CA");
    cert
}

fn config(db: &TestDb, tls: TlsMode, ca_bundle: Option<PathBuf>) -> DbConfig {
    DbConfig { config: Config::from_str(&db.url).expect("test URL"), tls, ca_bundle }
}

async fn is_tls(client: &Client) -> bool {
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.expect("pg_stat_ssl").get(0)
}

/// Mechanism: `TlsMode::VerifyCa` builds a rustls verifier from the bundle's roots that checks
/// the chain and signature (webpki) and ignores only a host-name mismatch. With the server's own
/// certificate as bundle the connection is TLS (and 127.0.0.1, not in the certificate, is
/// accepted: chain only); with a different CA it fails — a bad signature for a CA of the same
/// name, an unknown issuer for another name — naming the mode, the variable and the problem.
#[tokio::test]
async fn verify_ca_accepts_the_right_ca_and_refuses_a_wrong_one() {
    let db = TestDb::create("tls_ca").await;
    let client = db::connect_with(
        "source",
        &config(&db, TlsMode::VerifyCa, Some(server_certificate().await)),
        db::SessionTimeouts::default(),
    )
    .await
    .expect("verify-ca with the server's certificate as CA");
    assert!(is_tls(&client).await, "verify-ca is TLS");

    // A CA with the server's issuer name but another key: the signature does not verify. A CA
    // with another name: the server's issuer is unknown.
    for (common_name, problem) in [("localhost", "BadSignature"), ("onyx-test-ca", "UnknownIssuer")] {
        let bundle = wrong_ca(common_name);
        let error =
            db::connect_with("source", &config(&db, TlsMode::VerifyCa, Some(bundle.clone())), Default::default())
                .await
                .expect_err("a wrong CA is refused")
                .to_string();
        let _ = std::fs::remove_dir_all(bundle.parent().expect("temp dir"));
        eprintln!("wrong CA {common_name}: {error}");
        assert!(error.contains("verify-ca") && error.contains(db::ENV_CA_BUNDLE), "names the setting: {error}");
        assert!(error.contains("invalid peer certificate") && error.contains(problem), "{error}");
    }
}

/// Mechanism: `TlsMode::VerifyFull` uses rustls's `WebPkiServerVerifier` (chain and host name,
/// the name being the config's host). The snakeoil certificate names only `DNS:localhost`: host
/// `127.0.0.1` is refused on the name even with the right CA; host `localhost` (with `hostaddr`
/// 127.0.0.1, so the same server is reached) passes.
#[tokio::test]
async fn verify_full_also_checks_the_host_name() {
    let db = TestDb::create("tls_full").await;
    let bundle = server_certificate().await;
    let by_ip = config(&db, TlsMode::VerifyFull, Some(bundle.clone()));
    assert!(db::endpoint(&by_ip.config).starts_with("127.0.0.1:"), "the test URL uses 127.0.0.1");
    let error = db::connect_with("source", &by_ip, Default::default())
        .await
        .expect_err("127.0.0.1 is not a name in the certificate")
        .to_string();
    eprintln!("wrong host name: {error}");
    assert!(error.contains("verify-full") && error.contains(db::ENV_CA_BUNDLE), "{error}");
    assert!(error.to_lowercase().contains("name"), "names the host-name mismatch: {error}");

    let mut by_name = config(&db, TlsMode::VerifyFull, Some(bundle));
    by_name.config = Config::from_str(&db.url.replacen("@127.0.0.1:", "@localhost:", 1)).expect("URL");
    by_name.config.hostaddr("127.0.0.1".parse().expect("ip"));
    let client = db::connect_with("source", &by_name, Default::default()).await.expect("verify-full as localhost");
    assert!(is_tls(&client).await);
}

/// Mechanism: the TLS connector is built before any connection attempt; a verify mode with no
/// bundle is `DbError::Tls`, naming the mode and `ONYX_DB_CA_BUNDLE`, never a silent downgrade
/// to "encrypt only".
#[tokio::test]
async fn verify_modes_without_a_bundle_fail_naming_the_setting_and_the_variable() {
    let db = TestDb::create("tls_none").await;
    for (mode, name) in [(TlsMode::VerifyCa, "verify-ca"), (TlsMode::VerifyFull, "verify-full")] {
        let error =
            db::connect_with("warehouse", &config(&db, mode, None), Default::default()).await.expect_err("no bundle");
        assert!(matches!(error, DbError::Tls { .. }), "{error:?}");
        let text = error.to_string();
        eprintln!("no bundle: {text}");
        assert!(text.contains(name) && text.contains(db::ENV_CA_BUNDLE) && text.contains("warehouse"), "{text}");
    }
}

/// Mechanism: a secret without `sslmode` becomes `TlsMode::Require` (tokio-postgres
/// `SslMode::Require`, which errors instead of continuing in plaintext when the server refuses
/// TLS: not testable here, the local server always offers TLS); the session is TLS.
#[tokio::test]
async fn a_secret_without_sslmode_connects_with_tls() {
    let base = Config::from_str(&pg_base_url()).expect("base URL");
    let host = match base.get_hosts().first() {
        Some(onyx_core::tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".into(),
    };
    let db = TestDb::create("tls_req").await;
    let secret = serde_json::json!({
        "host": host, "port": base.get_ports().first().copied().unwrap_or(5432), "dbname": db.name,
        "username": base.get_user().unwrap_or("postgres"),
        "password": base.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default(),
    });
    let config = db::secret_config("source", "test-secret", &secret.to_string()).expect("secret");
    assert_eq!(config.tls, TlsMode::Require);
    let client = db::connect_with("source", &config, Default::default()).await.expect("require");
    assert!(is_tls(&client).await, "require is TLS");
}

/// Issue #13 item 6, channel binding (mechanism: the secret's `channel_binding` → tokio-postgres's
/// `ChannelBinding::Require`). With `require`, a server that does not authenticate by SCRAM bound
/// to the TLS channel is refused — the local test server trusts loopback logins, so it is the
/// server that offers no channel binding — while `prefer` (the default) connects to it.
#[tokio::test]
async fn channel_binding_require_refuses_a_server_that_does_not_bind() {
    let db = TestDb::create("chanbind").await;
    let base = Config::from_str(&db.url).expect("url");
    let secret = |binding: Option<&str>| {
        let binding = binding.map(|b| format!(r#","channel_binding":"{b}""#)).unwrap_or_default();
        format!(
            r#"{{"host":"127.0.0.1","port":{},"dbname":"{}","username":"{}","password":"unused","sslmode":"require"{binding}}}"#,
            base.get_ports().first().copied().unwrap_or(5432),
            db.name,
            base.get_user().unwrap_or("root"),
        )
    };
    let timeouts = db::SessionTimeouts::default();
    let connect = |text: String| async move {
        let config = db::secret_config("source", "s", &text)?;
        db::connect_with("source", &config, timeouts).await
    };
    connect(secret(None)).await.expect("prefer (the default) connects");
    let error = connect(secret(Some("require"))).await.expect_err("no channel binding offered");
    assert!(error.to_string().contains("channel binding"), "{error}");
    let error = db::secret_config("source", "s", &secret(Some("sometimes"))).expect_err("unknown value");
    assert!(error.to_string().contains("channel_binding"), "{error}");
}
