//! The Lambda functions' logic, as plain async functions: each takes the event its trigger
//! delivers and runs one stage. The binaries in `crates/{extract,transform,load}` only wire these
//! to the Lambda runtime, so tests drive exactly what AWS drives.

use std::fmt;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::{Value, json};

use crate::config;
use crate::db::DbTarget;
use crate::extract::{self, ExtractOptions, ExtractSummary};
use crate::storage::Store;
use crate::telemetry::{self, RunMetrics};

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
        Self {
            stage,
            message: error.to_string(),
            retryable,
        }
    }

    /// The error type name reported to Lambda.
    pub fn error_type(&self) -> &'static str {
        if self.retryable {
            "Onyx.Retryable"
        } else {
            "Onyx.Fatal"
        }
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
    /// Reads `ONYX_SOURCE_URL`/`ONYX_SOURCE_SECRET`, `ONYX_INGESTION` and `ONYX_SAFETY_LAG_SECONDS`.
    pub async fn from_env() -> Result<Self, StageError> {
        let fatal = |e: &dyn std::error::Error| StageError::new("extract", e, false);
        let source = config::source(None).map_err(|e| fatal(&e))?;
        let location = config::location(
            None,
            config::ENV_INGESTION,
            "the ingestion bucket (s3://bucket/prefix or a directory)",
        )
        .map_err(|e| fatal(&e))?;
        let ingestion = location.open().await.map_err(|e| fatal(&e))?;
        let safety_lag = config::safety_lag(None).map_err(|e| fatal(&e))?;
        Ok(Self {
            source,
            ingestion,
            options: ExtractOptions {
                safety_lag,
                ..ExtractOptions::default()
            },
        })
    }

    /// Handles the EventBridge schedule: one extraction run. Logs one INFO line per run (or one
    /// ERROR line), emits the run's metrics, and returns the summary.
    pub async fn handle(&self, event: EventBridgeEvent<Value>) -> Result<Value, StageError> {
        tracing::debug!(source = %event.source, detail_type = ?event.detail_type, "scheduled event");
        match self.run_once().await {
            Ok(summary) => {
                let rows = rows_per_table(&summary);
                tracing::info!(
                    stage = "extract",
                    run_id = %summary.manifest.run_id,
                    rows = %json!(rows.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()),
                    total_rows = summary.manifest.total_rows(),
                    duration_ms = summary.duration.as_millis() as u64,
                    manifest = %summary.manifest_key,
                    "extract run finished"
                );
                telemetry::emit_metrics(&RunMetrics {
                    stage: "extract",
                    duration_ms: summary.duration.as_millis() as u64,
                    rows_per_table: rows,
                    quarantined_rows: None,
                });
                Ok(summary_json(&summary))
            }
            Err(error) => {
                tracing::error!(stage = "extract", retryable = error.retryable, error = %error.message, "extract run failed");
                Err(error)
            }
        }
    }

    async fn run_once(&self) -> Result<ExtractSummary, StageError> {
        let mut client = self
            .source
            .connect("source")
            .await
            .map_err(|e| StageError::new("extract", &e, e.is_retryable()))?;
        extract::run(&mut client, self.ingestion.as_ref(), &self.options)
            .await
            .map_err(|e| StageError::new("extract", &e, e.is_retryable()))
    }
}

fn rows_per_table(summary: &ExtractSummary) -> Vec<(String, u64)> {
    summary
        .manifest
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.rows))
        .collect()
}

/// The JSON an extract run returns: run id, snapshot time, manifest key, rows per table, duration.
pub fn summary_json(summary: &ExtractSummary) -> Value {
    json!({
        "stage": "extract",
        "run_id": summary.manifest.run_id,
        "snapshot_time": summary.manifest.snapshot_time,
        "manifest": summary.manifest_key,
        "rows": rows_per_table(summary).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "total_rows": summary.manifest.total_rows(),
        "duration_ms": summary.duration.as_millis() as u64,
    })
}
