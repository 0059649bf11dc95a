//! Configuration shared by the Lambda functions and the CLI: the `ONYX_*` environment variables.
//! (CLI flags override them; the Lambdas read them from their Terraform-set environment.)

use crate::db::{DbError, DbTarget};
use crate::storage::{Location, StorageError};

pub const ENV_SOURCE_URL: &str = "ONYX_SOURCE_URL";
pub const ENV_SOURCE_SECRET: &str = "ONYX_SOURCE_SECRET";
/// The source login the scheduled verification uses, when it has its own (a read-only one).
pub const ENV_VERIFY_SOURCE_URL: &str = "ONYX_VERIFY_SOURCE_URL";
pub const ENV_VERIFY_SOURCE_SECRET: &str = "ONYX_VERIFY_SOURCE_SECRET";
pub const ENV_WAREHOUSE_URL: &str = "ONYX_WAREHOUSE_URL";
pub const ENV_WAREHOUSE_SECRET: &str = "ONYX_WAREHOUSE_SECRET";
pub const ENV_INGESTION: &str = "ONYX_INGESTION";
pub const ENV_PROCESSED: &str = "ONYX_PROCESSED";
pub const ENV_SOURCE_TIMEZONE: &str = "ONYX_SOURCE_TIMEZONE";
pub const ENV_MAX_RUN_ROWS: &str = "ONYX_MAX_RUN_ROWS";
pub const ENV_RECONCILE_EVERY: &str = "ONYX_RECONCILE_EVERY";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set: {what}")]
    Missing { var: &'static str, what: &'static str },
    #[error("{var}={value:?} is not valid: {reason}")]
    Invalid { var: &'static str, value: String, reason: String },
    #[error(transparent)]
    Location(#[from] StorageError),
    #[error(transparent)]
    Database(#[from] DbError),
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// A bucket location from an explicit value or the environment variable `var`.
pub fn location(explicit: Option<String>, var: &'static str, what: &'static str) -> Result<Location, ConfigError> {
    let text = explicit.or_else(|| env(var)).ok_or(ConfigError::Missing { var, what })?;
    Ok(Location::parse(&text)?)
}

/// The ToteSys source database: an explicit URL, else `ONYX_SOURCE_URL`, else `ONYX_SOURCE_SECRET`.
pub fn source(explicit_url: Option<String>) -> Result<DbTarget, ConfigError> {
    Ok(DbTarget::choose(
        "source",
        explicit_url.or_else(|| env(ENV_SOURCE_URL)),
        env(ENV_SOURCE_SECRET),
        ENV_SOURCE_URL,
        ENV_SOURCE_SECRET,
    )?)
}

/// Which source credentials the scheduled verification reads with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyCredentials {
    /// Its own login (`ONYX_VERIFY_SOURCE_URL`/`ONYX_VERIFY_SOURCE_SECRET`), meant to be read-only.
    OwnReadOnly,
    /// The extract's (`ONYX_SOURCE_URL`/`ONYX_SOURCE_SECRET`): read-only use, full rights.
    Extract,
}

impl VerifyCredentials {
    /// What a log line or a result says the verification used.
    pub fn describe(self) -> &'static str {
        match self {
            VerifyCredentials::OwnReadOnly => "its own source login (ONYX_VERIFY_SOURCE_SECRET/_URL)",
            VerifyCredentials::Extract => {
                "the extract's source credentials (ONYX_SOURCE_SECRET/_URL), in a read-only transaction: give \
                 verification a read-only login with ONYX_VERIFY_SOURCE_SECRET"
            }
        }
    }
}

/// The source the scheduled verification reads: its own login when one is set, else the
/// extract's, through `lookup` (the environment in the functions).
pub fn verify_source(lookup: impl Fn(&str) -> Option<String>) -> Result<(DbTarget, VerifyCredentials), ConfigError> {
    let set = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
    let (url, secret) = (set(ENV_VERIFY_SOURCE_URL), set(ENV_VERIFY_SOURCE_SECRET));
    if url.is_some() || secret.is_some() {
        let target = DbTarget::choose("source", url, secret, ENV_VERIFY_SOURCE_URL, ENV_VERIFY_SOURCE_SECRET)?;
        return Ok((target, VerifyCredentials::OwnReadOnly));
    }
    let target =
        DbTarget::choose("source", set(ENV_SOURCE_URL), set(ENV_SOURCE_SECRET), ENV_SOURCE_URL, ENV_SOURCE_SECRET)?;
    Ok((target, VerifyCredentials::Extract))
}

/// The warehouse database: an explicit URL, else `ONYX_WAREHOUSE_URL`, else `ONYX_WAREHOUSE_SECRET`.
pub fn warehouse(explicit_url: Option<String>) -> Result<DbTarget, ConfigError> {
    Ok(DbTarget::choose(
        "warehouse",
        explicit_url.or_else(|| env(ENV_WAREHOUSE_URL)),
        env(ENV_WAREHOUSE_SECRET),
        ENV_WAREHOUSE_URL,
        ENV_WAREHOUSE_SECRET,
    )?)
}

/// The time zone the source's `timestamp` columns are written in (`ONYX_SOURCE_TIMEZONE`, default
/// `UTC`); PostgreSQL checks the name when the extract opens its snapshot.
pub fn source_timezone(explicit: Option<String>) -> String {
    explicit.or_else(|| env(ENV_SOURCE_TIMEZONE)).unwrap_or_else(|| "UTC".into())
}

/// The most row versions one extract run carries (`ONYX_MAX_RUN_ROWS`, default
/// [`crate::extract::DEFAULT_MAX_RUN_ROWS`]); more is delivered by consecutive runs.
pub fn max_run_rows(explicit: Option<u64>) -> Result<u64, ConfigError> {
    let Some(text) = explicit.map(|n| n.to_string()).or_else(|| env(ENV_MAX_RUN_ROWS)) else {
        return Ok(crate::extract::DEFAULT_MAX_RUN_ROWS);
    };
    match text.trim().parse::<u64>() {
        Ok(rows) if rows > 0 => Ok(rows),
        _ => Err(ConfigError::Invalid {
            var: ENV_MAX_RUN_ROWS,
            value: text,
            reason: "expected a whole number of rows greater than 0".into(),
        }),
    }
}

/// How often the extract reconciles keys to find deleted rows (`ONYX_RECONCILE_EVERY`, a
/// duration such as `1h` or `30m`, `0s` for every run; default
/// [`crate::extract::reconcile::DEFAULT_RECONCILE_EVERY`]).
pub fn reconcile_every(explicit: Option<String>) -> Result<std::time::Duration, ConfigError> {
    let Some(text) = explicit.or_else(|| env(ENV_RECONCILE_EVERY)) else {
        return Ok(crate::extract::reconcile::DEFAULT_RECONCILE_EVERY);
    };
    humantime::parse_duration(text.trim()).map_err(|e| ConfigError::Invalid {
        var: ENV_RECONCILE_EVERY,
        value: text.clone(),
        reason: format!("expected a duration such as 1h, 30m or 0s: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #21 (mechanism: `verify_source`'s choice). Verification uses its own login when one
    /// is set, even when the extract's is there too, and says so; otherwise the extract's.
    #[test]
    fn verification_prefers_its_own_source_login_and_says_which_it_uses() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |var: &str| pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| v.to_string())
        };
        let (target, used) = verify_source(lookup(&[
            (ENV_SOURCE_SECRET, "onyx/source-db"),
            (ENV_VERIFY_SOURCE_SECRET, "onyx/source-db-readonly"),
        ]))
        .expect("configured");
        assert_eq!(used, VerifyCredentials::OwnReadOnly);
        assert!(matches!(target, DbTarget::Secret(id) if id == "onyx/source-db-readonly"));

        let (target, used) = verify_source(lookup(&[(ENV_SOURCE_SECRET, "onyx/source-db")])).expect("configured");
        assert_eq!(used, VerifyCredentials::Extract);
        assert!(matches!(target, DbTarget::Secret(id) if id == "onyx/source-db"));
        assert!(used.describe().contains("ONYX_VERIFY_SOURCE_SECRET"), "says how to give it its own");

        let missing = verify_source(lookup(&[(ENV_VERIFY_SOURCE_SECRET, " ")])).expect_err("nothing set");
        assert!(missing.to_string().contains(ENV_SOURCE_SECRET), "{missing}");
    }
}
