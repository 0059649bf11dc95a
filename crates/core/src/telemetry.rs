//! Logs and metrics. In Lambda, logs are JSON lines (`"level":"ERROR"` drives the alarm) and
//! metrics are CloudWatch Embedded Metric Format documents on stdout: no extra API calls.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

/// CloudWatch namespace of Onyx's metrics.
pub const METRIC_NAMESPACE: &str = "Onyx";

/// Installs the global subscriber: JSON lines for Lambda, human-readable text for the CLI.
/// `RUST_LOG` overrides the default level (info). The CLI leaves out the AWS configuration
/// chain's own warnings (IMDS probes on a laptop, several lines each; the CLI says in one line
/// what is missing) and colours only a terminal.
pub fn init(json_lines: bool) {
    if json_lines {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing::subscriber::set_global_default(lambda_subscriber(filter, std::io::stdout));
    } else {
        use std::io::IsTerminal;
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,aws_config=error"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The Lambda log format: one JSON object per event with `level`, `message` and the event's
/// fields at the top level (`stage`, `run_id`, `error`, …) and no time (CloudWatch stamps each
/// event). The ERROR metric filter and `onyx logs` read exactly this shape.
pub fn lambda_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .without_time()
        .with_writer(writer)
        .finish()
}

/// What one stage run did, for metrics.
#[derive(Debug, Clone, Default)]
pub struct RunMetrics<'a> {
    pub stage: &'a str,
    pub duration_ms: u64,
    pub rows_per_table: Vec<(String, u64)>,
    pub quarantined_rows: Option<u64>,
    /// Source schema changes the extract saw (`SchemaChanges`, alarmed on when above 0).
    pub schema_changes: Option<u64>,
    /// Runs that found the source restored or failed over (`SourceDiscontinuities`, alarmed on).
    pub source_discontinuities: Option<u64>,
}

/// The EMF documents for one successful run: per-stage totals and per-table row counts.
pub fn emf_documents(metrics: &RunMetrics<'_>) -> Vec<Value> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let total: u64 = metrics.rows_per_table.iter().map(|(_, rows)| rows).sum();
    let mut stage_metrics = vec![
        json!({"Name": "DurationMs", "Unit": "Milliseconds"}),
        json!({"Name": "Rows", "Unit": "Count"}),
        json!({"Name": "RunSucceeded", "Unit": "Count"}),
    ];
    let mut stage_doc = json!({
        "_aws": {"Timestamp": now, "CloudWatchMetrics": [{
            "Namespace": METRIC_NAMESPACE, "Dimensions": [["Stage"]], "Metrics": []}]},
        "Stage": metrics.stage,
        "DurationMs": metrics.duration_ms,
        "Rows": total,
        "RunSucceeded": 1,
    });
    if let Some(quarantined) = metrics.quarantined_rows {
        stage_metrics.push(json!({"Name": "QuarantinedRows", "Unit": "Count"}));
        stage_doc["QuarantinedRows"] = json!(quarantined);
    }
    if let Some(changes) = metrics.schema_changes {
        stage_metrics.push(json!({"Name": "SchemaChanges", "Unit": "Count"}));
        stage_doc["SchemaChanges"] = json!(changes);
    }
    if let Some(discontinuities) = metrics.source_discontinuities {
        stage_metrics.push(json!({"Name": "SourceDiscontinuities", "Unit": "Count"}));
        stage_doc["SourceDiscontinuities"] = json!(discontinuities);
    }
    stage_doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] = Value::Array(stage_metrics);
    let mut docs = vec![stage_doc];
    for (table, rows) in &metrics.rows_per_table {
        docs.push(json!({
            "_aws": {"Timestamp": now, "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE, "Dimensions": [["Stage", "Table"]],
                "Metrics": [{"Name": "Rows", "Unit": "Count"}]}]},
            "Stage": metrics.stage,
            "Table": table,
            "Rows": rows,
        }));
    }
    docs
}

/// Writes the run's EMF documents to stdout, where the Lambda log agent picks them up.
pub fn emit_metrics(metrics: &RunMetrics<'_>) {
    let mut out = std::io::stdout().lock();
    for doc in emf_documents(metrics) {
        let _ = writeln!(out, "{doc}");
    }
}

/// An EMF document for one value of one metric, with the given dimensions (`[]`: none) and extra
/// properties (searchable in the log line, not dimensions).
pub fn gauge_document(name: &str, value: f64, unit: &str, dimensions: &[(&str, &str)], properties: Value) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let mut doc = json!({
        "_aws": {"Timestamp": now, "CloudWatchMetrics": [{
            "Namespace": METRIC_NAMESPACE, "Dimensions": [names],
            "Metrics": [{"Name": name, "Unit": unit}]}]},
    });
    doc[name] = json!(value);
    for (key, value) in dimensions {
        doc[*key] = json!(value);
    }
    if let Value::Object(extra) = properties {
        for (key, value) in extra {
            doc[key] = value;
        }
    }
    doc
}

/// Writes one metric value to stdout (EMF).
pub fn emit_gauge(name: &str, value: f64, unit: &str, dimensions: &[(&str, &str)], properties: Value) {
    let _ = writeln!(std::io::stdout().lock(), "{}", gauge_document(name, value, unit, dimensions, properties));
}

/// A stage failed on a run for a reason retrying will not fix, so later runs wait behind it:
/// `BlockedRuns` (no dimensions, one alarm for every stage) with the stage and run in the line.
pub fn emit_blocked_run(stage: &str, run_id: Option<&str>) {
    emit_gauge("BlockedRuns", 1.0, "Count", &[], json!({"Stage": stage, "RunId": run_id}));
}

/// How many runs stay blocked (`BlockedRuns`, 0 when none), from the load function's every
/// invocation and periodic check: the alarm stays raised while a run is blocked and clears after.
pub fn emit_blocked_runs(count: usize) {
    emit_gauge("BlockedRuns", count as f64, "Count", &[], json!({}));
}

/// How old the newest loaded run is (`WarehouseFreshnessSeconds`, stage `load`): grows when the
/// transform or the load stalls, whatever the cause.
pub fn emit_freshness(seconds: f64) {
    emit_gauge("WarehouseFreshnessSeconds", seconds, "Seconds", &[("Stage", "load")], json!({}));
}
