//! Configuration shared by the Lambda functions and the CLI: the `ONYX_*` environment variables.
//! (CLI flags override them; the Lambdas read them from their Terraform-set environment.)

use crate::db::{DbError, DbTarget};
use crate::storage::{Location, StorageError};

pub const ENV_SOURCE_URL: &str = "ONYX_SOURCE_URL";
pub const ENV_SOURCE_SECRET: &str = "ONYX_SOURCE_SECRET";
pub const ENV_WAREHOUSE_URL: &str = "ONYX_WAREHOUSE_URL";
pub const ENV_WAREHOUSE_SECRET: &str = "ONYX_WAREHOUSE_SECRET";
pub const ENV_INGESTION: &str = "ONYX_INGESTION";
pub const ENV_PROCESSED: &str = "ONYX_PROCESSED";
pub const ENV_SOURCE_TIMEZONE: &str = "ONYX_SOURCE_TIMEZONE";
pub const ENV_MAX_RUN_ROWS: &str = "ONYX_MAX_RUN_ROWS";

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
