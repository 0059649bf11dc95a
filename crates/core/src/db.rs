//! Connections to PostgreSQL (the ToteSys source and the warehouse), configured by a URL or by an
//! AWS Secrets Manager secret, with TLS when asked for. Credentials never reach a log or an error.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};

/// Environment variable naming a PEM bundle of CA certificates (e.g. the RDS global bundle).
/// `sslmode=verify-ca` checks the server certificate's chain against it, `verify-full` the chain
/// and the host name; both fail when it is not set. With `require` or `prefer` and a bundle set,
/// the certificate is verified too (chain and host name); without one they encrypt only.
pub const ENV_CA_BUNDLE: &str = "ONYX_DB_CA_BUNDLE";

/// Environment variable naming the weakest `sslmode` a connection may use. Terraform sets it for
/// every function (`require` in a VPC, `verify-full` when the functions reach the databases over
/// the internet); in Lambda without it the floor is `require`, so `prefer` and `disable` (which
/// would fall back to plaintext) are refused there. Unset elsewhere: no floor (local use).
pub const ENV_MIN_SSLMODE: &str = "ONYX_DB_MIN_SSLMODE";

/// The TLS policy of a connection, as libpq's `sslmode` names it (tokio-postgres knows only
/// disable/prefer/require, so the verify modes are kept here and enforced by the TLS connector).
/// Ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsMode {
    /// Plaintext.
    Disable,
    /// TLS when the server offers it, plaintext otherwise (local use only).
    Prefer,
    /// TLS or no connection (never plaintext); the certificate is verified only when
    /// [`ENV_CA_BUNDLE`] is set.
    Require,
    /// TLS, and the server certificate must chain to a CA in [`ENV_CA_BUNDLE`].
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl TlsMode {
    /// The `sslmode` value, as written in URLs and secrets.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// Parses an `sslmode` value; the error lists the accepted ones.
    pub fn parse(value: &str) -> Result<TlsMode, String> {
        Ok(match value {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }

    /// The mode when none is given: `verify-full` for Amazon RDS hosts (whose CA is the RDS
    /// bundle), otherwise `fallback`.
    fn default_for(config: &Config, fallback: TlsMode) -> TlsMode {
        let rds = config.get_hosts().iter().any(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => {
                let name = name.to_ascii_lowercase();
                name.ends_with(".rds.amazonaws.com") || name.ends_with(".rds.amazonaws.com.cn")
            }
            tokio_postgres::config::Host::Unix(_) => false,
        });
        if rds { TlsMode::VerifyFull } else { fallback }
    }

    fn ssl_mode(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }

    fn of(config: &Config) -> TlsMode {
        match config.get_ssl_mode() {
            SslMode::Disable => TlsMode::Disable,
            SslMode::Prefer => TlsMode::Prefer,
            _ => TlsMode::Require,
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection config with its TLS policy and CA bundle.
#[derive(Clone)]
pub struct DbConfig {
    /// Host, port, database, user, password; its `ssl_mode` follows `tls`.
    pub config: Config,
    pub tls: TlsMode,
    /// PEM file of trusted CAs ([`ENV_CA_BUNDLE`] when read from the environment).
    pub ca_bundle: Option<std::path::PathBuf>,
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("endpoint", &endpoint(&self.config))
            .field("tls", &self.tls)
            .field("ca_bundle", &self.ca_bundle)
            .finish()
    }
}

impl DbConfig {
    fn new(mut config: Config, tls: TlsMode) -> DbConfig {
        config.ssl_mode(tls.ssl_mode());
        DbConfig { config, tls, ca_bundle: ca_bundle_from_env() }
    }
}

fn ca_bundle_from_env() -> Option<std::path::PathBuf> {
    std::env::var_os(ENV_CA_BUNDLE).filter(|v| !v.is_empty()).map(std::path::PathBuf::from)
}

/// The last `sslmode=` of a URL's query (after `?`) or of a key=value string, and the text with
/// a verify mode replaced by `require` (which tokio-postgres's parser accepts; the verify mode is
/// enforced by the TLS connector). Never returns or quotes anything but the sslmode value.
fn split_sslmode(text: &str) -> (String, Option<String>) {
    let searchable_from = if text.contains("://") { text.find('?').map_or(text.len(), |q| q + 1) } else { 0 };
    let mut out = String::with_capacity(text.len());
    let mut mode = None;
    let mut position = 0;
    while let Some(found) = text[position.max(searchable_from)..].find("sslmode=") {
        let at = position.max(searchable_from) + found;
        let value_start = at + "sslmode=".len();
        let value_end = text[value_start..].find(['&', ' ', '\t', '\n', '#']).map_or(text.len(), |e| value_start + e);
        out.push_str(&text[position..value_start]);
        let value = &text[value_start..value_end];
        let boundary = at == searchable_from || matches!(text.as_bytes()[at - 1], b'&' | b' ' | b'\t' | b'\n');
        if boundary {
            let bare = value.trim_matches('\'');
            mode = Some(bare.to_string());
            out.push_str(if matches!(bare, "verify-ca" | "verify-full") { "require" } else { value });
        } else {
            out.push_str(value);
        }
        position = value_end;
    }
    out.push_str(&text[position..]);
    (out, mode)
}

/// How long a statement of the pipeline's sessions may wait for a lock (milliseconds; default
/// 30 s): a BI session holding a lock fails the load quickly instead of hanging it.
pub const ENV_LOCK_TIMEOUT_MS: &str = "ONYX_DB_LOCK_TIMEOUT_MS";
/// How long one statement of the pipeline's sessions may run (milliseconds; default 10 min).
pub const ENV_STATEMENT_TIMEOUT_MS: &str = "ONYX_DB_STATEMENT_TIMEOUT_MS";

/// The `lock_timeout` and `statement_timeout` set on every session the pipeline opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimeouts {
    pub lock_timeout_ms: u64,
    pub statement_timeout_ms: u64,
}

impl Default for SessionTimeouts {
    fn default() -> Self {
        Self { lock_timeout_ms: 30_000, statement_timeout_ms: 600_000 }
    }
}

impl SessionTimeouts {
    /// From [`ENV_LOCK_TIMEOUT_MS`] and [`ENV_STATEMENT_TIMEOUT_MS`] (defaults when unset).
    pub fn from_env() -> Result<Self, DbError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// As [`SessionTimeouts::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DbError> {
        let defaults = Self::default();
        let read = |var: &'static str, default: u64| match lookup(var).filter(|v| !v.trim().is_empty()) {
            None => Ok(default),
            Some(value) => match value.trim().parse::<u64>() {
                // PostgreSQL takes at most i32::MAX milliseconds.
                Ok(ms) if ms <= i32::MAX as u64 => Ok(ms),
                _ => Err(DbError::BadSetting {
                    var,
                    value,
                    reason: format!("give whole milliseconds between 0 (no limit) and {}", i32::MAX),
                }),
            },
        };
        Ok(Self {
            lock_timeout_ms: read(ENV_LOCK_TIMEOUT_MS, defaults.lock_timeout_ms)?,
            statement_timeout_ms: read(ENV_STATEMENT_TIMEOUT_MS, defaults.statement_timeout_ms)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "the {role} database setting is missing: set {url_var} (a postgres:// URL) or {secret_var} (a Secrets Manager secret id)"
    )]
    Missing { role: &'static str, url_var: &'static str, secret_var: &'static str },
    #[error("the {role} database URL is not valid: {reason}")]
    BadUrl { role: &'static str, reason: String },
    #[error("the {role} database secret {secret_id} could not be read from Secrets Manager: {reason}")]
    SecretUnreadable { role: &'static str, secret_id: String, reason: String },
    #[error(
        "the {role} database secret {secret_id} has no value ({reason}): put the connection JSON into it with \
         `make secrets` (docs/deploy.md, section 6)"
    )]
    SecretNotSet { role: &'static str, secret_id: String, reason: String },
    #[error(
        "the {role} database secret {secret_id} is malformed: {reason} (expected JSON {{\"host\", \"port\", \"dbname\", \"username\", \"password\"}})"
    )]
    SecretMalformed { role: &'static str, secret_id: String, reason: String },
    #[error("cannot connect to the {role} database at {endpoint}: {reason}")]
    Connect { role: &'static str, endpoint: String, reason: String },
    #[error("TLS setup for the {role} database failed: {reason}")]
    Tls { role: &'static str, reason: String },
    #[error("{var}={value:?} is not valid: {reason}")]
    BadSetting { var: &'static str, value: String, reason: String },
    #[error("setting lock_timeout and statement_timeout on the {role} database at {endpoint} failed: {reason}")]
    SessionSetup { role: &'static str, endpoint: String, reason: String },
}

impl DbError {
    /// Connection trouble may pass; bad settings will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Connect { .. } | DbError::SecretUnreadable { .. } | DbError::SessionSetup { .. })
    }

    /// The configuration itself is unusable — a setting or secret missing, empty or malformed, a
    /// verify mode without a CA bundle — so only an operator can fix it, never a retry.
    pub fn is_configuration(&self) -> bool {
        match self {
            DbError::Missing { .. }
            | DbError::BadUrl { .. }
            | DbError::SecretNotSet { .. }
            | DbError::SecretMalformed { .. }
            | DbError::Tls { .. }
            | DbError::BadSetting { .. } => true,
            DbError::Connect { .. } | DbError::SecretUnreadable { .. } | DbError::SessionSetup { .. } => false,
        }
    }
}

/// Where a database's credentials come from.
#[derive(Clone)]
pub enum DbTarget {
    /// A `postgres://user:password@host:port/db?sslmode=…` URL (or libpq key=value string).
    Url(SecretString),
    /// A Secrets Manager secret id or ARN holding `{host, port, dbname, username, password}`.
    Secret(String),
}

impl fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbTarget::Url(_) => f.write_str("DbTarget::Url(<redacted>)"),
            DbTarget::Secret(id) => write!(f, "DbTarget::Secret({id})"),
        }
    }
}

impl DbTarget {
    /// The target given by `url` or `secret` (a URL wins), or a clear error naming both settings.
    pub fn choose(
        role: &'static str,
        url: Option<String>,
        secret: Option<String>,
        url_var: &'static str,
        secret_var: &'static str,
    ) -> Result<DbTarget, DbError> {
        match (url.filter(|u| !u.is_empty()), secret.filter(|s| !s.is_empty())) {
            (Some(url), _) => Ok(DbTarget::Url(SecretString::from(url))),
            (None, Some(secret)) => Ok(DbTarget::Secret(secret)),
            (None, None) => Err(DbError::Missing { role, url_var, secret_var }),
        }
    }

    /// Resolves the credentials (reading the secret if needed) into a connection config. A URL
    /// without a password takes libpq's (`PGPASSWORD`, `~/.pgpass`: [`crate::pgpass`]). A URL's
    /// `sslmode` is honoured (verify-ca and verify-full included); without one, `verify-full` for
    /// an RDS host and tokio-postgres's `prefer` otherwise.
    pub async fn config(&self, role: &'static str) -> Result<DbConfig, DbError> {
        match self {
            DbTarget::Url(url) => {
                let (text, mode) = split_sslmode(url.expose_secret());
                let text = SecretString::from(text);
                let mode =
                    mode.map(|m| TlsMode::parse(&m)).transpose().map_err(|reason| DbError::BadUrl { role, reason })?;
                let mut config = Config::from_str(text.expose_secret())
                    .map_err(|e| DbError::BadUrl { role, reason: e.to_string() })?;
                // No password in the URL: PGPASSWORD or ~/.pgpass, as psql would.
                crate::pgpass::fill_password(&mut config);
                let tls = mode.unwrap_or_else(|| TlsMode::default_for(&config, TlsMode::of(&config)));
                Ok(DbConfig::new(config, tls))
            }
            DbTarget::Secret(secret_id) => {
                let text = read_secret(role, secret_id).await?;
                secret_config(role, secret_id, &text)
            }
        }
    }

    /// Connects, with TLS per the `sslmode` (for secrets `require` by default, `verify-full` on
    /// RDS hosts; the URL's own setting otherwise).
    pub async fn connect(&self, role: &'static str) -> Result<Client, DbError> {
        let config = self.config(role).await?;
        connect_with(role, &config, SessionTimeouts::from_env()?).await
    }
}

pub(crate) async fn read_secret(role: &'static str, secret_id: &str) -> Result<String, DbError> {
    let aws = aws_config::load_from_env().await;
    let client = aws_sdk_secretsmanager::Client::new(&aws);
    let unreadable = |reason: String| DbError::SecretUnreadable { role, secret_id: secret_id.to_string(), reason };
    let output = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
        // Terraform creates the secrets without a value: until someone puts one, Secrets Manager
        // answers ResourceNotFoundException ("… can't find the specified secret value for
        // staging label: AWSCURRENT"), as it does for a secret id that names nothing.
        if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) {
            let reason = e.as_service_error().and_then(|s| s.meta().message()).unwrap_or("ResourceNotFoundException");
            DbError::SecretNotSet { role, secret_id: secret_id.to_string(), reason: reason.to_string() }
        } else {
            unreadable(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())
        }
    })?;
    output.secret_string().map(str::to_string).ok_or_else(|| unreadable("the secret has no string value".into()))
}

#[derive(Deserialize)]
struct SecretFields {
    host: String,
    #[serde(default)]
    port: Option<serde_json::Value>,
    dbname: String,
    username: String,
    password: SecretString,
    #[serde(default)]
    sslmode: Option<String>,
    #[serde(default)]
    channel_binding: Option<String>,
}

/// A secret's `channel_binding` (as libpq's): `prefer` (the default) binds SCRAM to the TLS
/// channel whenever the server offers SCRAM-SHA-256-PLUS; `require` refuses to authenticate any
/// other way (no MD5, cleartext or trust), so a man in the middle cannot downgrade the exchange.
fn channel_binding(value: &str) -> Result<tokio_postgres::config::ChannelBinding, String> {
    use tokio_postgres::config::ChannelBinding;
    match value {
        "disable" => Ok(ChannelBinding::Disable),
        "prefer" => Ok(ChannelBinding::Prefer),
        "require" => Ok(ChannelBinding::Require),
        other => Err(format!("channel_binding {other:?} is not one of disable, prefer, require")),
    }
}

/// Parses the secret's JSON into a connection config. Without `sslmode` the mode is `require`
/// (`verify-full` for `*.rds.amazonaws.com` hosts). Error messages name the problem, never the
/// secret's values.
pub fn secret_config(role: &'static str, secret_id: &str, text: &str) -> Result<DbConfig, DbError> {
    let malformed = |reason: String| DbError::SecretMalformed { role, secret_id: secret_id.to_string(), reason };
    let fields: SecretFields = serde_json::from_str(text).map_err(|e| {
        // serde's message can quote input; keep only its category and position.
        let what = match e.classify() {
            serde_json::error::Category::Data => "a field is missing or has the wrong type",
            _ => "it is not valid JSON",
        };
        malformed(format!("{what} (line {}, column {})", e.line(), e.column()))
    })?;
    let port = match &fields.port {
        None => Some(5432),
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| malformed("port is not a number between 1 and 65535".into()))?;
    let mode = fields.sslmode.as_deref().map(TlsMode::parse).transpose().map_err(malformed)?;
    let binding = fields.channel_binding.as_deref().map(channel_binding).transpose().map_err(malformed)?;
    let mut config = Config::new();
    config
        .host(&fields.host)
        .port(port)
        .dbname(&fields.dbname)
        .user(&fields.username)
        .password(fields.password.expose_secret())
        .application_name("onyx");
    if let Some(binding) = binding {
        config.channel_binding(binding);
    }
    let tls = mode.unwrap_or_else(|| TlsMode::default_for(&config, TlsMode::Require));
    Ok(DbConfig::new(config, tls))
}

/// `host:port/dbname` of a config, for messages (no user, no password).
pub fn endpoint(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("?"))
}

/// Connects with the given config and drives the connection in the background; the session gets
/// the [`SessionTimeouts`] of the environment.
pub async fn connect(role: &'static str, config: &Config) -> Result<Client, DbError> {
    connect_with_timeouts(role, config, SessionTimeouts::from_env()?).await
}

/// As [`connect`], with the given timeouts.
pub async fn connect_with_timeouts(
    role: &'static str,
    config: &Config,
    timeouts: SessionTimeouts,
) -> Result<Client, DbError> {
    let config = DbConfig { config: config.clone(), tls: TlsMode::of(config), ca_bundle: ca_bundle_from_env() };
    connect_with(role, &config, timeouts).await
}

/// The weakest `sslmode` allowed, read through `lookup`: [`ENV_MIN_SSLMODE`] when set, else
/// `require` inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set), else none.
pub fn minimum_tls(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<TlsMode>, DbError> {
    match lookup(ENV_MIN_SSLMODE).filter(|v| !v.trim().is_empty()) {
        Some(value) => match TlsMode::parse(value.trim()) {
            Ok(mode) => Ok(Some(mode)),
            Err(reason) => Err(DbError::BadSetting { var: ENV_MIN_SSLMODE, value, reason }),
        },
        None if lookup("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty()) => Ok(Some(TlsMode::Require)),
        None => Ok(None),
    }
}

/// Refuses a connection whose `sslmode` is weaker than the floor, before anything is sent.
pub fn check_minimum_tls(role: &'static str, mode: TlsMode, minimum: Option<TlsMode>) -> Result<(), DbError> {
    match minimum {
        Some(minimum) if mode < minimum => Err(DbError::Tls {
            role,
            reason: format!(
                "sslmode={mode} is weaker than {ENV_MIN_SSLMODE}={minimum} (here only {} are allowed): set \
                 \"sslmode\": \"{}\" in the {role} secret or URL",
                [TlsMode::Require, TlsMode::VerifyCa, TlsMode::VerifyFull]
                    .into_iter()
                    .filter(|m| *m >= minimum)
                    .map(TlsMode::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                minimum.max(TlsMode::Require)
            ),
        }),
        _ => Ok(()),
    }
}

/// Connects with the given config, TLS policy and CA bundle, and the given session timeouts.
/// A policy weaker than [`minimum_tls`] of the environment is refused.
pub async fn connect_with(role: &'static str, db: &DbConfig, timeouts: SessionTimeouts) -> Result<Client, DbError> {
    check_minimum_tls(role, db.tls, minimum_tls(|var| std::env::var(var).ok())?)?;
    let endpoint = endpoint(&db.config);
    // Which check refused a certificate, for the operator: the mode and the bundle it used.
    let checked = match (&db.ca_bundle, db.tls) {
        (_, TlsMode::Disable) | (None, TlsMode::Prefer | TlsMode::Require) => String::new(),
        (Some(path), mode) => {
            format!(" (sslmode={mode}; certificate checked against {ENV_CA_BUNDLE}={})", path.display())
        }
        (None, mode) => format!(" (sslmode={mode}; {ENV_CA_BUNDLE} is not set)"),
    };
    let connect_error = |e: tokio_postgres::Error| DbError::Connect {
        role,
        endpoint: endpoint.clone(),
        reason: format!("{}{checked}", error_text(&e)),
    };
    let mut config = db.config.clone();
    config.ssl_mode(db.tls.ssl_mode());
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let client = if db.tls == TlsMode::Disable {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(connect_error)?;
        tokio::spawn(drive(role, connection));
        client
    } else {
        let tls = tls_connector(role, db.tls, db.ca_bundle.as_deref())?;
        let (client, connection) = config.connect(tls).await.map_err(connect_error)?;
        tokio::spawn(drive(role, connection));
        client
    };
    // SET (not the startup `options`): poolers such as RDS Proxy do not pass those on.
    let SessionTimeouts { lock_timeout_ms, statement_timeout_ms } = timeouts;
    client
        .batch_execute(&format!("SET lock_timeout = {lock_timeout_ms}; SET statement_timeout = {statement_timeout_ms}"))
        .await
        .map_err(|e| DbError::SessionSetup { role, endpoint: endpoint.clone(), reason: error_text(&e) })?;
    Ok(client)
}

async fn drive<F>(role: &'static str, connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        tracing::warn!(database = role, error = %error_text(&e), "database connection closed with an error");
    }
}

/// A database error's full text, including the server's detail and the failing column when given.
pub fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let (Some(table), Some(column)) = (db.table(), db.column()) {
                text.push_str(&format!(" [table {table}, column {column}]"));
            }
            text
        }
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

fn tls_connector(
    role: &'static str,
    mode: TlsMode,
    ca_bundle: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, DbError> {
    let tls_error = |reason: String| DbError::Tls { role, reason };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    let config = match ca_bundle {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let path_text = path.display();
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_error(format!("cannot read {ENV_CA_BUNDLE}={path_text} (sslmode={mode}): {e}")))?;
            for cert in certs {
                let bad = |e: &dyn fmt::Display| {
                    tls_error(format!("bad certificate in {ENV_CA_BUNDLE}={path_text} (sslmode={mode}): {e}"))
                };
                let cert = cert.map_err(|e| bad(&e))?;
                roots.add(cert).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(tls_error(format!(
                    "{ENV_CA_BUNDLE}={path_text} holds no PEM certificate (sslmode={mode})"
                )));
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_error(format!("{ENV_CA_BUNDLE}={path_text} (sslmode={mode}): {e}")))?;
            if mode == TlsMode::VerifyCa {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
                    .with_no_client_auth()
            } else {
                builder.with_webpki_verifier(verifier).with_no_client_auth()
            }
        }
        None if matches!(mode, TlsMode::VerifyCa | TlsMode::VerifyFull) => {
            return Err(tls_error(format!(
                "sslmode={mode} verifies the server certificate, but {ENV_CA_BUNDLE} is not set: point it at a PEM \
                 file of the CA certificates to trust (for RDS, the global bundle; see docs/deploy.md), or use \
                 sslmode=require to encrypt without verifying"
            )));
        }
        None => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(EncryptOnly(provider))).with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// libpq's `sslmode=verify-ca`: the certificate must chain to a trusted CA (and be in date, for
/// server authentication); only a host-name mismatch is accepted. rustls checks the chain before
/// the name, so a name error means the chain was valid.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(NotValidForName | NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// libpq's `sslmode=require`: the channel is encrypted and the handshake signature checked, but
/// the certificate chain is not verified (set [`ENV_CA_BUNDLE`] for that).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `"name"`, with embedded quotes doubled (names from the catalog or a table description).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The planner's estimate of a table's rows; `None` for a table never analysed (or absent).
pub async fn estimated_rows(
    client: &impl tokio_postgres::GenericClient,
    table: &str,
) -> Result<Option<u64>, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT (SELECT reltuples::int8 FROM pg_class WHERE oid = to_regclass(quote_ident($1)))", &[&table])
        .await?;
    Ok(row.get::<_, Option<i64>>(0).and_then(|n| u64::try_from(n).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SessionTimeouts::from_lookup` reads the two variables, defaults when unset, and names the
    /// variable and value it cannot use.
    #[test]
    fn session_timeouts_come_from_the_environment() {
        let none = |_: &str| None;
        assert_eq!(
            SessionTimeouts::from_lookup(none).expect("defaults"),
            SessionTimeouts { lock_timeout_ms: 30_000, statement_timeout_ms: 600_000 }
        );
        let set = |var: &str| Some(if var == ENV_LOCK_TIMEOUT_MS { "500".into() } else { " 0 ".into() });
        assert_eq!(
            SessionTimeouts::from_lookup(set).expect("set"),
            SessionTimeouts { lock_timeout_ms: 500, statement_timeout_ms: 0 }
        );
        let bad = |var: &str| (var == ENV_STATEMENT_TIMEOUT_MS).then(|| "10s".to_string());
        let error = SessionTimeouts::from_lookup(bad).expect_err("not milliseconds").to_string();
        assert!(error.contains(ENV_STATEMENT_TIMEOUT_MS) && error.contains("10s"), "{error}");
    }

    #[test]
    fn secret_json_becomes_a_config_without_leaking_the_password() {
        let config = secret_config(
            "source",
            "s",
            r#"{"host":"db.example","port":"6543","dbname":"totesys","username":"u","password":"hunter2"}"#,
        )
        .expect("valid secret");
        assert_eq!(endpoint(&config.config), "db.example:6543/totesys");

        let err =
            secret_config("source", "s", r#"{"host":"h","dbname":"d","username":"u","password":"hunter2","port":"x"}"#)
                .expect_err("bad port");
        assert!(err.to_string().contains("port"), "{err}");
        let err = secret_config("source", "s", r#"{"host":"h","password":"hunter2"#).expect_err("not JSON");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = secret_config("source", "s", r#"{"host":"h","password":"hunter2"}"#).expect_err("missing fields");
        assert!(err.to_string().contains("malformed") && !err.to_string().contains("hunter2"), "{err}");
    }

    /// Issue #13 item 6, the parsing half (mechanism: `secret_config`'s sslmode default and the
    /// host rule, `DbTarget::Url` pre-parsing of `sslmode` before tokio-postgres's `Config`
    /// parser, which rejects verify-ca/verify-full). A secret without sslmode is `require`, or
    /// `verify-full` on an RDS host; verify modes in a secret or URL are kept as verify modes,
    /// never mapped to "encrypt only"; an unknown mode is an error naming the setting, not the
    /// password.
    #[tokio::test]
    async fn sslmode_defaults_to_require_and_verify_modes_are_kept() {
        let secret = |host: &str, sslmode: Option<&str>| {
            let mode = sslmode.map(|m| format!(r#","sslmode":"{m}""#)).unwrap_or_default();
            let text = format!(r#"{{"host":"{host}","dbname":"d","username":"u","password":"hunter2"{mode}}}"#);
            secret_config("source", "s", &text)
        };
        assert_eq!(secret("db.example", None).expect("secret").tls, TlsMode::Require);
        assert_eq!(
            secret("onyx.abcdefgh1234.eu-west-2.rds.amazonaws.com", None).expect("secret").tls,
            TlsMode::VerifyFull
        );
        assert_eq!(secret("db.example", Some("verify-ca")).expect("secret").tls, TlsMode::VerifyCa);
        assert_eq!(secret("db.example", Some("verify-full")).expect("secret").tls, TlsMode::VerifyFull);
        assert_eq!(secret("db.example", Some("disable")).expect("secret").tls, TlsMode::Disable);
        let err = secret("db.example", Some("allow")).expect_err("unknown mode").to_string();
        assert!(err.contains("sslmode") && err.contains("allow") && !err.contains("hunter2"), "{err}");

        let url = |text: &str| DbTarget::Url(text.to_string().into());
        for (text, mode) in [
            ("postgres://u:hunter2@db.example:5432/d", TlsMode::Prefer),
            ("postgres://u:hunter2@db.example:5432/d?sslmode=require", TlsMode::Require),
            ("postgres://u:hunter2@db.example:5432/d?sslmode=verify-ca", TlsMode::VerifyCa),
            ("postgres://u:hunter2@db.example:5432/d?application_name=x&sslmode=verify-full", TlsMode::VerifyFull),
            ("host=db.example user=u password=hunter2 sslmode=verify-full dbname=d", TlsMode::VerifyFull),
            ("postgres://u:hunter2@onyx.abc.eu-west-2.rds.amazonaws.com/d", TlsMode::VerifyFull),
            ("postgres://u:hunter2@onyx.abc.eu-west-2.rds.amazonaws.com/d?sslmode=require", TlsMode::Require),
            // Only the query (or a key=value key) counts, not a password that contains the text.
            ("postgres://u:xsslmode=verify-full@db.example/d", TlsMode::Prefer),
            ("host=db.example user=u password=xsslmode=verify-full dbname=d", TlsMode::Prefer),
        ] {
            let config = url(text).config("source").await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(config.tls, mode, "{}", endpoint(&config.config));
            assert_ne!(config.config.get_ssl_mode(), SslMode::Disable);
        }
        let err = url("postgres://u:hunter2@h/d?sslmode=verify-everything").config("source").await.expect_err("bad");
        assert!(err.to_string().contains("sslmode") && !err.to_string().contains("hunter2"), "{err}");
    }

    /// Issue #21 (mechanism: `minimum_tls` and `check_minimum_tls`, which `connect_with` runs
    /// before connecting). In Lambda the floor is `require` unless ONYX_DB_MIN_SSLMODE says more;
    /// Terraform's public mode sets `verify-full`; outside Lambda there is no floor.
    #[test]
    fn lambda_refuses_sslmodes_that_could_fall_back_to_plaintext() {
        let lambda = |min: Option<&'static str>| {
            move |var: &str| match var {
                "AWS_LAMBDA_FUNCTION_NAME" => Some("onyx-extract".to_string()),
                ENV_MIN_SSLMODE => min.map(str::to_string),
                _ => None,
            }
        };
        assert_eq!(minimum_tls(lambda(None)).expect("valid"), Some(TlsMode::Require));
        assert_eq!(minimum_tls(|_| None).expect("valid"), None, "no floor outside Lambda");
        assert_eq!(minimum_tls(lambda(Some("verify-full"))).expect("valid"), Some(TlsMode::VerifyFull));
        assert!(matches!(minimum_tls(lambda(Some("strict"))), Err(DbError::BadSetting { .. })));

        for weak in [TlsMode::Disable, TlsMode::Prefer] {
            let refused = check_minimum_tls("source", weak, Some(TlsMode::Require)).expect_err("refused");
            let message = refused.to_string();
            assert!(
                message.contains(&format!("sslmode={weak}")) && message.contains("require, verify-ca, verify-full")
            );
            assert!(refused.is_configuration(), "an operator's fix, never a retry");
        }
        for strong in [TlsMode::Require, TlsMode::VerifyCa, TlsMode::VerifyFull] {
            check_minimum_tls("source", strong, Some(TlsMode::Require)).expect("allowed");
        }
        let public = check_minimum_tls("warehouse", TlsMode::Require, Some(TlsMode::VerifyFull)).expect_err("refused");
        assert!(public.to_string().contains("\"sslmode\": \"verify-full\" in the warehouse secret"), "{public}");
        check_minimum_tls("source", TlsMode::Prefer, None).expect("no floor, local use");
    }
}
