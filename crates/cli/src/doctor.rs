//! `onyx doctor`: every setting, each database (connectivity, TLS mode and certificate
//! verification, the source's schema against the table descriptions, the warehouse's migration
//! state), each bucket, the AWS identity and the deployed stack — checked all at once, each
//! problem named with what to do, like `dbt debug`. Reads only: never migrates, never writes.

use std::fmt::Write;

use onyx_core::db::{DbConfig, DbTarget, SessionTimeouts, TlsMode};
use onyx_core::storage::Location;
use onyx_core::tables::SOURCE_TABLES;
use onyx_core::tokio_postgres::Client;
use onyx_core::{config, load};
use serde::Serialize;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Works, but not as it should be deployed (e.g. a certificate that is not verified).
    Warn,
    Fail,
    /// Not configured and not needed (e.g. no deployed stack named).
    Skip,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, outcome: Outcome, detail: impl Into<String>) {
        self.checks.push(Check { name: name.into(), outcome, detail: detail.into() });
    }

    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| c.outcome == Outcome::Fail).count()
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            let label = match check.outcome {
                Outcome::Ok => "ok",
                Outcome::Warn => "warn",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            let _ = writeln!(out, "{label:<5} {:<18} {}", check.name, check.detail);
        }
        let warnings = self.checks.iter().filter(|c| c.outcome == Outcome::Warn).count();
        let _ = match self.failures() {
            0 => writeln!(out, "\nall checks passed ({warnings} warning(s))"),
            n => writeln!(out, "\n{n} problem(s), {warnings} warning(s): fix each FAIL above"),
        };
        out
    }
}

/// What `onyx doctor` is given (flags; each falls back to its `ONYX_*` variable).
pub struct Inputs {
    pub source_url: Option<String>,
    pub warehouse_url: Option<String>,
    pub ingestion: Option<String>,
    pub processed: Option<String>,
    pub stack: Option<String>,
}

/// Runs every check; a check that cannot run because an earlier one failed is skipped and says so.
pub async fn diagnose(inputs: Inputs) -> Report {
    let mut report = Report::default();
    settings(&mut report);

    // The deployed stack first: its buckets stand in for unset ones, as in `onyx status`.
    let stack = match onyx_core::stack::Stack::locate(inputs.stack) {
        Ok(stack) => {
            report.add("stack", Outcome::Ok, format!("outputs of {}", stack.origin));
            Some(stack)
        }
        Err(onyx_core::stack::StackError::NotConfigured) => {
            report.add("stack", Outcome::Skip, "no --stack / ONYX_STACK (only needed for a deployed pipeline)");
            None
        }
        Err(e) => {
            report.add("stack", Outcome::Fail, e.to_string());
            None
        }
    };
    let ingestion = crate::stack_ingestion(stack.as_ref(), crate::Ingestion { ingestion: inputs.ingestion }).ingestion;
    let processed = crate::stack_processed(stack.as_ref(), crate::Processed { processed: inputs.processed }).processed;

    let uses_aws = stack.is_some()
        || [&ingestion, &processed].iter().any(|b| b.as_deref().is_some_and(|b| b.starts_with("s3://")));
    let aws_ok = if uses_aws { aws(&mut report).await } else { true };
    if !uses_aws {
        report.add("aws", Outcome::Skip, "no bucket in S3 and no stack: no AWS call is needed");
    }

    let source = database(&mut report, "source", config::source(inputs.source_url)).await;
    if let Some(client) = &source {
        source_schema(&mut report, client).await;
        let zone = config::source_timezone(None);
        match client.query_one("SELECT set_config('TimeZone', $1, false)", &[&zone]).await {
            Ok(_) => report.add("source time zone", Outcome::Ok, format!("{zone} (ONYX_SOURCE_TIMEZONE)")),
            Err(e) => report.add(
                "source time zone",
                Outcome::Fail,
                format!(
                    "ONYX_SOURCE_TIMEZONE={zone:?}: {} (an IANA name, e.g. Europe/London)",
                    onyx_core::db::error_text(&e)
                ),
            ),
        }
    }
    if let Some(client) = database(&mut report, "warehouse", config::warehouse(inputs.warehouse_url)).await {
        match load::open_for_reading(&client).await {
            Ok(()) => report.add("warehouse schema", Outcome::Ok, "migrated to this build's schema version"),
            Err(e) => report.add("warehouse schema", Outcome::Fail, e.to_string()),
        }
    }

    for (name, text, var, may_be_new) in [
        ("ingestion bucket", ingestion, config::ENV_INGESTION, false),
        ("processed bucket", processed, config::ENV_PROCESSED, true),
    ] {
        bucket_check(&mut report, name, text, var, may_be_new, aws_ok).await;
    }
    report
}

/// The settings that are read but not checked elsewhere: the run size, the reconciliation
/// interval, the session timeouts and the TLS floor (the source's time zone is checked by the
/// source itself, which reads its timestamps in it).
fn settings(report: &mut Report) {
    let mut problems = Vec::new();
    if let Err(e) = config::max_run_rows(None) {
        problems.push(e.to_string());
    }
    if let Err(e) = config::reconcile_every(None) {
        problems.push(e.to_string());
    }
    if let Err(e) = SessionTimeouts::from_env() {
        problems.push(e.to_string());
    }
    if let Err(e) = onyx_core::db::minimum_tls(|var| std::env::var(var).ok()) {
        problems.push(e.to_string());
    }
    if problems.is_empty() {
        report.add("settings", Outcome::Ok, "run size, key reconciliation, session timeouts, TLS floor");
    } else {
        report.add("settings", Outcome::Fail, problems.join("; "));
    }
}

/// The AWS region, credentials and identity.
async fn aws(report: &mut Report) -> bool {
    let config = match crate::deployed::checked_config().await {
        Ok(config) => config,
        Err(e) => {
            report.add("aws", Outcome::Fail, e.to_string());
            return false;
        }
    };
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    match aws_sdk_sts::Client::new(&config).get_caller_identity().send().await {
        Ok(identity) => {
            report.add("aws", Outcome::Ok, format!("{} in {region}", identity.arn().unwrap_or("(no ARN)")));
            true
        }
        Err(e) => {
            report.add("aws", Outcome::Fail, crate::deployed::explain(e, "sts:GetCallerIdentity").to_string());
            false
        }
    }
}

/// Connects to a database read-only and reports where, the server, and its TLS: the mode asked
/// for, whether the session is encrypted, and whether the certificate is verified.
async fn database(
    report: &mut Report,
    role: &'static str,
    target: Result<DbTarget, config::ConfigError>,
) -> Option<Client> {
    let target = match target {
        Ok(target) => target,
        Err(e) => {
            report.add(role, Outcome::Fail, e.to_string());
            return None;
        }
    };
    let config: DbConfig = match target.config(role).await {
        Ok(config) => config,
        Err(e) => {
            report.add(role, Outcome::Fail, e.to_string());
            return None;
        }
    };
    // A bad timeout setting is reported under settings; the check itself uses the defaults.
    let timeouts = SessionTimeouts::from_env().unwrap_or_default();
    let client = match onyx_core::db::connect_with(role, &config, timeouts).await {
        Ok(client) => client,
        Err(e) => {
            report.add(role, Outcome::Fail, e.to_string());
            return None;
        }
    };
    let endpoint = onyx_core::db::endpoint(&config.config);
    let session = client
        .query_one(
            "SELECT current_setting('server_version'), current_user::text,
                    coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
                    coalesce((SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()), '')",
            &[],
        )
        .await;
    let (server, user, encrypted, protocol) = match session {
        Ok(row) => (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, bool>(2), row.get::<_, String>(3)),
        Err(e) => {
            report.add(role, Outcome::Fail, format!("{endpoint}: {}", onyx_core::db::error_text(&e)));
            return None;
        }
    };
    report.add(role, Outcome::Ok, format!("{endpoint} as {user}, PostgreSQL {server}"));
    let mode = config.tls.as_str();
    let verified = matches!(config.tls, TlsMode::VerifyCa | TlsMode::VerifyFull)
        || (config.tls == TlsMode::Require && config.ca_bundle.is_some());
    let tls = format!("{role} TLS");
    match (encrypted, verified) {
        (true, true) => report.add(tls, Outcome::Ok, format!("{protocol}, sslmode={mode}, certificate verified")),
        (true, false) => report.add(
            tls,
            Outcome::Warn,
            format!(
                "{protocol}, sslmode={mode}: encrypted but the certificate is not verified (set ONYX_DB_CA_BUNDLE and \
                 sslmode=verify-full for a deployed database)"
            ),
        ),
        (false, _) => report.add(
            tls,
            Outcome::Warn,
            format!(
                "not encrypted (sslmode={mode}): fine on this machine only; deployed, Onyx refuses less than require"
            ),
        ),
    }
    Some(client)
}

/// The source's schema against the table descriptions: a modelled table or column that is
/// missing fails (its rows could not be read or would be quarantined); anything else is noted.
async fn source_schema(report: &mut Report, client: &Client) {
    let rows = match client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema()",
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            report.add("source schema", Outcome::Fail, onyx_core::db::error_text(&e));
            return;
        }
    };
    let found: std::collections::BTreeSet<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut missing = Vec::new();
    for table in SOURCE_TABLES {
        if !found.iter().any(|(t, _)| t == table.name) {
            missing.push(format!("table {}", table.name));
            continue;
        }
        for column in table.columns {
            if !found.contains(&(table.name.to_string(), column.name.to_string())) {
                missing.push(format!("{}.{}", table.name, column.name));
            }
        }
    }
    let extra: std::collections::BTreeSet<&str> = found
        .iter()
        .filter(|(t, c)| SOURCE_TABLES.iter().find(|s| s.name == t).is_none_or(|s| s.column(c).is_none()))
        .map(|(t, _)| t.as_str())
        .collect();
    if missing.is_empty() {
        let note = if extra.is_empty() {
            String::new()
        } else {
            format!(
                "; also unmodelled columns or tables in {} (carried, not modelled)",
                extra.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        report.add(
            "source schema",
            Outcome::Ok,
            format!("all {} ToteSys tables and their columns{note}", SOURCE_TABLES.len()),
        );
    } else {
        report.add(
            "source schema",
            Outcome::Fail,
            format!("missing: {} (a ToteSys database? `onyx seed` makes one)", missing.join(", ")),
        );
    }
}

/// A bucket exists and can be listed; the processed bucket may legitimately not exist yet.
async fn bucket_check(
    report: &mut Report,
    name: &str,
    text: Option<String>,
    var: &str,
    may_be_new: bool,
    aws_ok: bool,
) {
    let Some(text) = text else {
        report.add(name, Outcome::Fail, format!("{var} is not set (or give the flag, or a stack)"));
        return;
    };
    let location = match Location::parse(&text) {
        Ok(location) => location,
        Err(e) => {
            report.add(name, Outcome::Fail, e.to_string());
            return;
        }
    };
    if matches!(location, Location::S3 { .. }) && !aws_ok {
        report.add(name, Outcome::Skip, format!("{location}: not checked, AWS is not usable (see aws)"));
        return;
    }
    let store = match location.open_existing().await {
        Ok(store) => store,
        Err(e @ onyx_core::storage::StorageError::Missing { .. }) if may_be_new => {
            report.add(name, Outcome::Warn, format!("{e}; the first transform creates it"));
            return;
        }
        Err(e) => {
            report.add(name, Outcome::Fail, e.to_string());
            return;
        }
    };
    match onyx_core::storage::manifest_run_ids(store.as_ref(), None).await {
        Ok(runs) => {
            let newest = runs.last().map(|r| format!(", newest {r}")).unwrap_or_default();
            report.add(name, Outcome::Ok, format!("{location}: {} run(s){newest}", runs.len()));
        }
        Err(e) => report.add(name, Outcome::Fail, format!("{location}: {e}")),
    }
}
