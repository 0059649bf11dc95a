//! The Lambda functions' logic, as plain async functions: each takes the event its trigger
//! delivers and runs one stage. The binaries in `crates/{extract,transform,load}` only wire these
//! to the Lambda runtime, so tests drive exactly what AWS drives.

use std::fmt;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use serde_json::{Value, json};

use crate::config;
use crate::db::{DbError, DbTarget};
use crate::extract::{self, ExtractOptions, ExtractSummary};
use crate::keys;
use crate::load::{self, LoadOptions, LoadedRun};
use crate::storage::Store;
use crate::telemetry::{self, RunMetrics};
use crate::transform::{self, TransformedRun};

/// A stage failure as the Lambda runtime reports it.
#[derive(Debug)]
pub struct StageError {
    pub stage: &'static str,
    pub message: String,
    /// Whether a retry may succeed (the Lambda's async retries are worth it).
    pub retryable: bool,
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.stage, self.message)
    }
}

impl std::error::Error for StageError {}

impl StageError {
    pub fn new(stage: &'static str, error: &dyn std::error::Error, retryable: bool) -> Self {
        Self { stage, message: error.to_string(), retryable }
    }

    /// The error type name reported to Lambda.
    pub fn error_type(&self) -> &'static str {
        if self.retryable { "Onyx.Retryable" } else { "Onyx.Fatal" }
    }
}

/// The extract function: everything it needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct ExtractFunction {
    pub source: DbTarget,
    pub ingestion: Store,
    pub options: ExtractOptions,
}

impl ExtractFunction {
    /// Reads `ONYX_SOURCE_URL`/`ONYX_SOURCE_SECRET`, `ONYX_INGESTION`, `ONYX_SOURCE_TIMEZONE`,
    /// `ONYX_MAX_RUN_ROWS` and `ONYX_RECONCILE_EVERY`.
    pub async fn from_env() -> Result<Self, StageError> {
        let fatal = |e: &dyn std::error::Error| StageError::new("extract", e, false);
        let source = config::source(None).map_err(|e| fatal(&e))?;
        let location =
            config::location(None, config::ENV_INGESTION, "the ingestion bucket (s3://bucket/prefix or a directory)")
                .map_err(|e| fatal(&e))?;
        let ingestion = location.open().await.map_err(|e| fatal(&e))?;
        let source_timezone = config::source_timezone(None);
        let max_run_rows = config::max_run_rows(None).map_err(|e| fatal(&e))?;
        let reconcile_every = config::reconcile_every(None).map_err(|e| fatal(&e))?;
        Ok(Self {
            source,
            ingestion,
            options: ExtractOptions { source_timezone, max_run_rows, reconcile_every, ..ExtractOptions::default() },
        })
    }

    /// Handles the EventBridge schedule: extraction runs until nothing is pending (a first
    /// load or a backlog larger than one run comes as consecutive bounded runs) or until
    /// another run would not fit in the invocation's `EXTRACT_CONTINUE_FOR`; the next scheduled
    /// event continues from there. Returns the last run's summary, with how many runs it made.
    pub async fn handle(&self, event: EventBridgeEvent<Value>) -> Result<Value, StageError> {
        tracing::debug!(source = %event.source, detail_type = ?event.detail_type, "scheduled event");
        let started = std::time::Instant::now();
        let mut runs = 0u32;
        loop {
            let (summary, pending) = match self.handle_one().await? {
                Ok(summary) => {
                    let pending = summary.manifest.has_more();
                    (summary_json(&summary), pending.then_some(summary.duration))
                }
                Err(skipped) => return Ok(skipped),
            };
            runs += 1;
            // Another run only when twice the last one still fits: runs of a pass are alike.
            match pending {
                Some(last) if started.elapsed() + 2 * last < EXTRACT_CONTINUE_FOR => continue,
                _ => {
                    let mut summary = summary;
                    summary["runs_in_invocation"] = json!(runs);
                    return Ok(summary);
                }
            }
        }
    }

    /// One run, logged and measured; `Ok(Err(json))` when it stood aside for another extract.
    async fn handle_one(&self) -> Result<Result<ExtractSummary, Value>, StageError> {
        let summary = match self.run_once().await {
            Ok(Ok(summary)) => summary,
            Ok(Err(Idle::Skipped(skipped))) => {
                tracing::warn!(stage = "extract", reason = %skipped, "extract skipped: another run holds its place");
                return Ok(Err(json!({"stage": "extract", "skipped": skipped})));
            }
            Ok(Err(Idle::NotConfigured(not_run))) => return Ok(Err(not_run)),
            Err(error) => {
                tracing::error!(stage = "extract", retryable = error.retryable, error = %error.message, "extract run failed");
                return Err(error);
            }
        };
        let rows = rows_per_table(&summary);
        tracing::info!(
            stage = "extract",
            run_id = %summary.manifest.run_id,
            rows = %json!(rows.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()),
            total_rows = summary.manifest.total_rows(),
            duration_ms = summary.duration.as_millis() as u64,
            manifest = %summary.manifest_key,
            pending = summary.manifest.pending.as_ref().map(|p| format!("{} after key {:?}", p.table, p.after_key)),
            "extract run finished"
        );
        telemetry::emit_metrics(&RunMetrics {
            stage: "extract",
            duration_ms: summary.duration.as_millis() as u64,
            rows_per_table: rows,
            quarantined_rows: None,
            schema_changes: Some(summary.manifest.schema_changes.len() as u64),
            source_discontinuities: Some(u64::from(summary.manifest.source_discontinuity.is_some())),
        });
        Ok(Ok(summary))
    }

    /// One run; `Ok(Err(_))` when the run did not happen and that is not a function error:
    /// another extract holds the place, or the source is not configured yet.
    async fn run_once(&self) -> Result<Result<ExtractSummary, Idle>, StageError> {
        let mut client = match self.source.connect("source").await {
            Ok(client) => client,
            Err(e) if e.is_configuration() => return Ok(Err(Idle::NotConfigured(not_configured("extract", &e)))),
            Err(e) => return Err(StageError::new("extract", &e, e.is_retryable())),
        };
        match extract::run(&mut client, self.ingestion.as_ref(), &self.options).await {
            Ok(summary) => Ok(Ok(summary)),
            Err(e) if e.is_claim_held() => Ok(Err(Idle::Skipped(e.to_string()))),
            Err(e) => Err(StageError::new("extract", &e, e.is_retryable())),
        }
    }
}

/// How long one extract invocation keeps starting runs while a pass is pending: half the
/// function's default timeout (600 s in Terraform), so the last run started ends well before it.
const EXTRACT_CONTINUE_FOR: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Why an extract invocation ended without a run, successfully.
enum Idle {
    /// Another extract holds the place after the newest run.
    Skipped(String),
    /// The source's configuration is unusable; the value is the invocation's answer.
    NotConfigured(Value),
}

/// An invocation whose database configuration is unusable ([`DbError::is_configuration`]: on a
/// fresh deploy the secrets still have no value; or a malformed secret, a verify mode without a
/// CA bundle). No retry can fix that, and a function error would be retried twice and then
/// dead-lettered on every scheduled run, so the invocation logs one ERROR saying what to set
/// (which raises the function's error alarm) and ends without a function error; the next
/// scheduled run uses whatever is configured by then.
fn not_configured(stage: &'static str, error: &DbError) -> Value {
    tracing::error!(
        stage,
        error = %error,
        "{stage} not run: its configuration is unusable; once it is fixed the next scheduled run proceeds (no retry, nothing dead-lettered)"
    );
    json!({"stage": stage, "not_run": error.to_string()})
}

fn rows_per_table(summary: &ExtractSummary) -> Vec<(String, u64)> {
    summary.manifest.tables.iter().map(|t| (t.table.clone(), t.rows)).collect()
}

/// The JSON an extract run returns: run id, snapshot time, manifest key, rows per table, duration.
pub fn summary_json(summary: &ExtractSummary) -> Value {
    json!({
        "stage": "extract",
        "run_id": summary.manifest.run_id,
        "snapshot_time": summary.manifest.snapshot_time,
        "full_read": summary.manifest.full_read,
        "schema_changes": summary.manifest.schema_changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "manifest": summary.manifest_key,
        "rows": rows_per_table(summary).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "total_rows": summary.manifest.total_rows(),
        "pending": summary.manifest.pending,
        "duration_ms": summary.duration.as_millis() as u64,
    })
}

/// The run an extract invocation's answer names (what `aws lambda invoke` writes, read back by
/// `onyx wait --extract-answer`), or why there is none: the function failed (`errorType`,
/// `errorMessage`), did not run for its configuration (`not_run`), or stood aside (`skipped`).
pub fn run_of_extract_answer(answer: &Value) -> Result<String, String> {
    let text = |field: &str| answer.get(field).and_then(Value::as_str);
    if let Some(message) = text("errorMessage") {
        return Err(format!("the extract function failed ({}): {message}", text("errorType").unwrap_or("no type")));
    }
    if let Some(reason) = text("not_run") {
        return Err(format!("the extract function did not run: {reason}"));
    }
    if let Some(reason) = text("skipped") {
        return Err(format!("the extract function stood aside, so there is no new run to follow: {reason}"));
    }
    text("run_id").map(str::to_string).ok_or_else(|| format!("the extract function's answer names no run: {answer}"))
}

/// The S3 object keys of an S3 event, URL-decoded (`+` is a space, `%xx` a byte), with their
/// buckets. Records that cannot be decoded are returned as errors, not dropped silently.
pub fn s3_event_keys(event: &S3Event) -> Vec<Result<(String, String), String>> {
    event
        .records
        .iter()
        .map(|record| {
            let bucket = record.s3.bucket.name.clone().unwrap_or_default();
            let raw = record.s3.object.key.clone().ok_or_else(|| "an S3 event record has no object key".to_string())?;
            let plus_decoded = raw.replace('+', " ");
            let key = percent_encoding::percent_decode_str(&plus_decoded)
                .decode_utf8()
                .map_err(|e| format!("the object key {raw:?} is not valid URL-encoded UTF-8: {e}"))?;
            Ok((bucket, key.into_owned()))
        })
        .collect()
}

/// The run ids of the run manifests an S3 event announces (other objects are ignored). Malformed
/// records are logged as errors and skipped: a bad event must not make the function retry forever.
fn manifest_runs(stage: &'static str, event: &S3Event) -> Vec<String> {
    let mut runs = Vec::new();
    for entry in s3_event_keys(event) {
        match entry {
            Ok((bucket, key)) => match keys::run_id_of_manifest(&key) {
                Some(run_id) => runs.push(run_id.to_string()),
                None => tracing::info!(stage, bucket, key, "ignoring an object that is not a run manifest"),
            },
            Err(problem) => tracing::error!(stage, problem, "malformed S3 event record ignored"),
        }
    }
    if event.records.is_empty() {
        tracing::error!(stage, "malformed S3 event: it has no records");
    }
    runs.sort();
    runs.dedup();
    runs
}

/// The transform function: triggered by new ingestion run manifests.
#[derive(Debug, Clone)]
pub struct TransformFunction {
    pub ingestion: Store,
    pub processed: Store,
}

impl TransformFunction {
    /// Reads `ONYX_INGESTION` and `ONYX_PROCESSED`.
    pub async fn from_env() -> Result<Self, StageError> {
        let fatal = |e: &dyn std::error::Error| StageError::new("transform", e, false);
        let ingestion = config::location(None, config::ENV_INGESTION, "the ingestion bucket").map_err(|e| fatal(&e))?;
        let processed = config::location(None, config::ENV_PROCESSED, "the processed bucket").map_err(|e| fatal(&e))?;
        Ok(Self {
            ingestion: ingestion.open().await.map_err(|e| fatal(&e))?,
            processed: processed.open().await.map_err(|e| fatal(&e))?,
        })
    }

    /// Handles an S3 event: transforms the announced runs (and any earlier pending ones first).
    /// Runs already transformed are no-ops; objects that are not manifests are ignored.
    pub async fn handle(&self, event: S3Event) -> Result<Value, StageError> {
        let mut summaries = Vec::new();
        for run_id in manifest_runs("transform", &event) {
            let result =
                transform::transform_pending(self.ingestion.as_ref(), self.processed.as_ref(), Some(&run_id)).await;
            match result {
                Ok(runs) => {
                    if runs.is_empty() {
                        tracing::info!(stage = "transform", run_id, "run already transformed; nothing to do");
                    }
                    for run in runs {
                        log_transformed(&run);
                        summaries.push(transform_summary_json(&run));
                    }
                }
                Err(transform::TransformError::UnknownRun { run_id, key }) => {
                    tracing::error!(stage = "transform", run_id, key, "event names a run that does not exist; ignored");
                }
                Err(error) => {
                    let error = StageError::new("transform", &error, error.is_retryable());
                    tracing::error!(stage = "transform", run_id, retryable = error.retryable, error = %error.message, "transform failed");
                    if !error.retryable {
                        telemetry::emit_blocked_run("transform", Some(&run_id));
                    }
                    return Err(error);
                }
            }
        }
        Ok(json!({"stage": "transform", "runs": summaries}))
    }
}

fn log_transformed(run: &TransformedRun) {
    let rows: Vec<(String, u64)> = run.manifest.tables.iter().map(|t| (t.table.clone(), t.rows)).collect();
    tracing::info!(
        stage = "transform",
        run_id = %run.manifest.run_id,
        rows = %json!(rows.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()),
        total_rows = run.manifest.total_rows(),
        quarantined_rows = run.manifest.quarantined_rows,
        flagged_rows = run.manifest.flagged_rows,
        held_rows = run.manifest.held_rows,
        duration_ms = run.duration.as_millis() as u64,
        "transform run finished"
    );
    telemetry::emit_metrics(&RunMetrics {
        stage: "transform",
        duration_ms: run.duration.as_millis() as u64,
        rows_per_table: rows,
        quarantined_rows: Some(run.manifest.quarantined_rows),
        schema_changes: None,
        source_discontinuities: None,
    });
}

/// The JSON summary of one transformed run.
pub fn transform_summary_json(run: &TransformedRun) -> Value {
    json!({
        "run_id": run.manifest.run_id,
        "manifest": run.manifest_key,
        "rows": run.manifest.tables.iter().map(|t| (t.table.clone(), t.rows)).collect::<std::collections::BTreeMap<_, _>>(),
        "total_rows": run.manifest.total_rows(),
        "quarantined_rows": run.manifest.quarantined_rows,
        "quarantine_object": run.manifest.quarantine_object,
        "flagged_rows": run.manifest.flagged_rows,
        "held_rows": run.manifest.held_rows,
        "requeue_requests": run.manifest.requeue_requests,
        "duration_ms": run.duration.as_millis() as u64,
    })
}

/// The load function: triggered by new processed run manifests.
#[derive(Debug)]
pub struct LoadFunction {
    pub warehouse: DbTarget,
    pub processed: Store,
    /// What the scheduled verification needs (`None`: not configured for this function).
    pub verify: Option<VerifySetup>,
    /// Migrations run once per cold start, on the first event.
    migrated: tokio::sync::OnceCell<()>,
}

/// The scheduled verification runs in the load function: it already reaches the warehouse; it
/// also reads the source (its own read-only login `ONYX_VERIFY_SOURCE_SECRET`, else the
/// extract's `ONYX_SOURCE_SECRET`; either way in a read-only transaction) and the ingestion
/// bucket's run manifests (`ONYX_INGESTION`, for the loaded run's snapshot).
#[derive(Debug, Clone)]
pub struct VerifySetup {
    pub source: DbTarget,
    /// Which login `source` is, for the log line and the result.
    pub credentials: config::VerifyCredentials,
    pub ingestion: Store,
}

/// What the load function is invoked with: S3 notifications of processed runs, or a schedule's
/// constant input: `{"onyx": "verify"}` (the daily verification) or `{"onyx": "check"}` (the
/// periodic health check: blocked runs and warehouse freshness, also when no run arrives).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum LoadEvent {
    Command { onyx: String },
    S3(S3Event),
}

impl LoadFunction {
    pub fn new(warehouse: DbTarget, processed: Store) -> Self {
        Self { warehouse, processed, verify: None, migrated: tokio::sync::OnceCell::new() }
    }

    /// Reads `ONYX_WAREHOUSE_URL`/`ONYX_WAREHOUSE_SECRET` and `ONYX_PROCESSED`; for verification
    /// `ONYX_VERIFY_SOURCE_URL`/`_SECRET` (else `ONYX_SOURCE_URL`/`_SECRET`) and `ONYX_INGESTION`.
    pub async fn from_env() -> Result<Self, StageError> {
        let fatal = |e: &dyn std::error::Error| StageError::new("load", e, false);
        let warehouse = config::warehouse(None).map_err(|e| fatal(&e))?;
        let processed = config::location(None, config::ENV_PROCESSED, "the processed bucket").map_err(|e| fatal(&e))?;
        let mut function = Self::new(warehouse, processed.open().await.map_err(|e| fatal(&e))?);
        if let (Ok((source, credentials)), Ok(ingestion)) = (
            config::verify_source(|var| std::env::var(var).ok()),
            config::location(None, config::ENV_INGESTION, "the ingestion bucket"),
        ) {
            let ingestion = ingestion.open().await.map_err(|e| fatal(&e))?;
            function.verify = Some(VerifySetup { source, credentials, ingestion });
        }
        Ok(function)
    }

    /// Dispatches an invocation: a verification command or an S3 event.
    pub async fn handle_event(&self, event: LoadEvent) -> Result<Value, StageError> {
        match event {
            LoadEvent::S3(event) => self.handle(event).await,
            LoadEvent::Command { onyx } if onyx == "verify" => self.verify().await,
            LoadEvent::Command { onyx } if onyx == "check" => self.check().await,
            LoadEvent::Command { onyx } => {
                tracing::error!(
                    stage = "load",
                    command = onyx,
                    "unknown command ignored (expected \"verify\" or \"check\")"
                );
                Ok(json!({"stage": "load", "ignored": onyx}))
            }
        }
    }

    /// The scheduled verification: compares, writes the report to the processed bucket
    /// (`_verify/YYYY/MM/DD/<time>-<run>.json`), emits `VerifyDifferences` (total and per table)
    /// and logs the differences at ERROR.
    pub async fn verify(&self) -> Result<Value, StageError> {
        let fail = |e: &dyn std::error::Error, retryable: bool| {
            let error = StageError::new("verify", e, retryable);
            tracing::error!(stage = "verify", error = %error.message, "verification failed");
            error
        };
        let Some(setup) = &self.verify else {
            let missing = crate::config::ConfigError::Missing {
                var: config::ENV_VERIFY_SOURCE_SECRET,
                what: "a source login (ONYX_VERIFY_SOURCE_SECRET, else ONYX_SOURCE_SECRET) and ONYX_INGESTION, which \
                       verification reads",
            };
            return Err(fail(&missing, false));
        };
        tracing::info!(stage = "verify", source_credentials = setup.credentials.describe(), "verification starting");
        let connected = async {
            let source = setup.source.connect("source").await?;
            Ok::<_, DbError>((source, self.warehouse.connect("warehouse").await?))
        };
        let (mut source, warehouse) = match connected.await {
            Ok(clients) => clients,
            Err(e) if e.is_configuration() => return Ok(not_configured("verify", &e)),
            Err(e) => return Err(fail(&e, e.is_retryable())),
        };
        let report = crate::verify::verify(
            &mut source,
            &warehouse,
            setup.ingestion.as_ref(),
            &crate::verify::VerifyOptions::default(),
        )
        .await
        .map_err(|e| fail(&e, true))?;
        let key = keys::verify_report(chrono::Utc::now(), &report.run_id);
        let body = serde_json::to_vec_pretty(&report).unwrap_or_default();
        self.processed.put(&key, body).await.map_err(|e| fail(&e, e.is_retryable()))?;
        telemetry::emit_gauge(
            "VerifyDifferences",
            report.differences() as f64,
            "Count",
            &[],
            json!({"RunId": report.run_id}),
        );
        for table in &report.tables {
            telemetry::emit_gauge(
                "VerifyDifferences",
                table.difference_count() as f64,
                "Count",
                &[("Table", table.table.as_str())],
                json!({}),
            );
        }
        tracing::info!(
            stage = "verify",
            run_id = report.run_id,
            differences = report.differences(),
            report = key,
            duration_ms = report.duration_ms,
            "verification finished"
        );
        Ok(json!({
            "stage": "verify",
            "run_id": report.run_id,
            "differences": report.differences(),
            "report": key,
            "source_credentials": setup.credentials.describe(),
        }))
    }

    /// The periodic check: counts the runs that stay blocked (`BlockedRuns`, 0 when none) and the
    /// warehouse's freshness, so both alarms keep their state while nothing else invokes a stage
    /// (a blocked pipeline produces no new events). Reads only.
    pub async fn check(&self) -> Result<Value, StageError> {
        let client = match self.warehouse.connect("warehouse").await {
            Ok(client) => client,
            Err(e) if e.is_configuration() => return Ok(not_configured("load", &e)),
            Err(e) => {
                let error = StageError::new("load", &e, e.is_retryable());
                tracing::error!(stage = "load", error = %error.message, "check failed");
                return Err(error);
            }
        };
        let blocked = self.count_blocked(&client).await;
        emit_freshness(&client).await;
        Ok(json!({"stage": "load", "check": {"blocked_runs": blocked}}))
    }

    /// Emits `BlockedRuns`: how many recorded failures still block (see [`crate::ops::blocked_runs`]),
    /// each named in a WARN line. `None` (and no metric) when they cannot be read.
    async fn count_blocked(&self, client: &tokio_postgres::Client) -> Option<usize> {
        match crate::ops::blocked_runs(self.processed.as_ref(), Some(client)).await {
            Ok(blocked) => {
                for failure in &blocked {
                    tracing::warn!(
                        stage = "load",
                        run_id = failure.run_id,
                        blocked_stage = failure.stage,
                        failed_at = %failure.at.to_rfc3339(),
                        error = failure.error,
                        "run blocked: later runs wait behind it (`onyx status`; fix it or `onyx park`)"
                    );
                }
                telemetry::emit_blocked_runs(blocked.len());
                Some(blocked.len())
            }
            Err(e) => {
                tracing::warn!(stage = "load", error = %e, "could not count the blocked runs");
                None
            }
        }
    }

    /// Handles an S3 event: loads the announced runs (and earlier unloaded ones first), each in
    /// one transaction. Replays are no-ops; a failure leaves the warehouse unchanged.
    pub async fn handle(&self, event: S3Event) -> Result<Value, StageError> {
        let runs = manifest_runs("load", &event);
        let fail = |e: &load::LoadError| {
            let error = StageError::new("load", e, e.is_retryable());
            tracing::error!(stage = "load", retryable = error.retryable, error = %error.message, "load failed");
            error
        };
        if runs.is_empty() {
            return Ok(json!({"stage": "load", "runs": []}));
        }
        // Not configured: the run stays pending and the next run's event loads it first.
        let mut client = match self.warehouse.connect("warehouse").await {
            Ok(client) => client,
            Err(e) if e.is_configuration() => return Ok(not_configured("load", &e)),
            Err(e) => {
                let error = StageError::new("load", &e, e.is_retryable());
                tracing::error!(stage = "load", error = %error.message, "load failed");
                return Err(error);
            }
        };
        if self.migrated.get().is_none() {
            let applied = load::migrate(&mut client).await.map_err(|e| fail(&e))?;
            tracing::info!(stage = "load", applied = ?applied, "warehouse migrations checked");
            let _ = self.migrated.set(());
        }
        let mut summaries = Vec::new();
        for run_id in runs {
            match load::load_pending(&mut client, self.processed.as_ref(), Some(&run_id), &LoadOptions::default()).await
            {
                Ok(loaded) => {
                    if loaded.is_empty() {
                        tracing::info!(stage = "load", run_id, "run already loaded; nothing to do");
                    }
                    for run in &loaded {
                        log_loaded(run);
                        summaries.push(load_summary_json(run));
                    }
                }
                Err(load::LoadError::UnknownRun { run_id, key }) => {
                    tracing::error!(stage = "load", run_id, key, "event names a run that does not exist; ignored");
                }
                Err(error) => {
                    if !error.is_retryable() {
                        telemetry::emit_blocked_run("load", Some(&run_id));
                    }
                    emit_freshness(&client).await;
                    return Err(fail(&error));
                }
            }
        }
        emit_freshness(&client).await;
        self.count_blocked(&client).await;
        Ok(json!({"stage": "load", "runs": summaries}))
    }
}

/// Emits the age of the newest loaded run (`WarehouseFreshnessSeconds`).
async fn emit_freshness(client: &tokio_postgres::Client) {
    match load::warehouse_freshness(client, chrono::Utc::now()).await {
        Ok(Some(seconds)) => telemetry::emit_freshness(seconds),
        Ok(None) => {}
        Err(e) => tracing::warn!(stage = "load", error = %e, "could not read the warehouse freshness"),
    }
}

fn log_loaded(run: &LoadedRun) {
    tracing::info!(
        stage = "load",
        run_id = %run.run_id,
        rows = %json!(run.rows),
        total_rows = run.rows.values().sum::<u64>(),
        duration_ms = run.duration.as_millis() as u64,
        "load run finished"
    );
    telemetry::emit_metrics(&RunMetrics {
        stage: "load",
        duration_ms: run.duration.as_millis() as u64,
        rows_per_table: run.rows.iter().map(|(t, n)| (t.clone(), *n)).collect(),
        quarantined_rows: None,
        schema_changes: None,
        source_discontinuities: None,
    });
}

/// The JSON summary of one loaded run.
pub fn load_summary_json(run: &LoadedRun) -> Value {
    json!({
        "run_id": run.run_id,
        "rows": run.rows,
        "total_rows": run.rows.values().sum::<u64>(),
        "bulk_tables": run.bulk_tables,
        "duration_ms": run.duration.as_millis() as u64,
    })
}
