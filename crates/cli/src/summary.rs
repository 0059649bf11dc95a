//! What the CLI prints: the one-screen summary of `onyx run`, the runs table, `onyx status`, the
//! verify report and the quarantine table.

use std::fmt::Write;

use serde::Serialize;

use onyx_core::extract::{self, ExtractSummary};
use onyx_core::load::LoadedRun;
use onyx_core::ops::{self, RunStatus};
use onyx_core::storage::ObjectStore;
use onyx_core::tables::SourceTable;
use onyx_core::tokio_postgres::Client;
use onyx_core::transform;
use onyx_core::transform::TransformedRun;
use onyx_core::warehouse::WAREHOUSE_TABLES;

/// Rows per table per stage, quarantined rows and durations, as a small text report.
pub fn run_summary(extracted: &ExtractSummary, transformed: &[TransformedRun], loaded: &[LoadedRun]) -> String {
    let mut out = String::new();
    let manifest = &extracted.manifest;
    let _ = writeln!(out, "run {}  (source snapshot {})", manifest.run_id, manifest.snapshot_time);
    let _ =
        writeln!(out, "\nextract  {:>8} row versions in {} ms", manifest.total_rows(), extracted.duration.as_millis());
    for table in manifest.tables.iter().filter(|t| t.rows > 0) {
        let _ = writeln!(out, "  {:<22} {:>8}", table.table, table.rows);
    }
    let transform_ms: u128 = transformed.iter().map(|r| r.duration.as_millis()).sum();
    let quarantined: u64 = transformed.iter().map(|r| r.manifest.quarantined_rows).sum();
    let load_ms: u128 = loaded.iter().map(|r| r.duration.as_millis()).sum();
    let _ = writeln!(
        out,
        "\n{:<24} {:>11} {:>8}\n{:<24} {:>11} {:>8}",
        "warehouse table",
        "transformed",
        "loaded",
        "",
        format!("{transform_ms} ms"),
        format!("{load_ms} ms")
    );
    for table in WAREHOUSE_TABLES {
        let made: u64 = transformed
            .iter()
            .flat_map(|r| r.manifest.tables.iter())
            .filter(|t| t.table == table.name)
            .map(|t| t.rows)
            .sum();
        let stored: u64 = loaded.iter().filter_map(|r| r.rows.get(table.name)).sum();
        let _ = writeln!(out, "  {:<22} {:>11} {:>8}", table.name, made, stored);
    }
    let _ = writeln!(
        out,
        "\n{} run(s) transformed, {} loaded, {} row(s) quarantined{}",
        transformed.len(),
        loaded.len(),
        quarantined,
        if quarantined > 0 { " (see `onyx quarantine`)" } else { "" }
    );
    out
}

/// A borderless text table (comfy-table): the header, then one line per row; the columns in
/// `numbers` are aligned right.
fn text_table(header: &[&str], numbers: &[usize], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING).set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    // Lines start at the margin (scripts match on `starts_with`); two spaces between columns.
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for &index in numbers {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    format!("{}\n", table.trim_fmt())
}

/// `onyx runs`: one line per run.
pub fn runs_table(runs: &[RunStatus]) -> String {
    if runs.is_empty() {
        return "no runs yet: run `onyx extract` (or `onyx run`)\n".into();
    }
    let rows = runs.iter().map(|run| {
        let (rows, quarantined) =
            run.transformed.map_or(("-".into(), "-".into()), |(r, q)| (r.to_string(), q.to_string()));
        vec![
            run.run_id.clone(),
            run.stage().to_string(),
            run.extracted_rows.to_string(),
            rows,
            quarantined,
            run.loaded_at.clone().unwrap_or_else(|| "-".into()),
        ]
    });
    text_table(&["run", "stage", "extracted", "warehouse", "quarantined", "loaded at"], &[2, 3, 4], rows)
}

/// What `onyx status` reports: watermarks, the last run per stage, blocked and parked runs, lag
/// behind the source, quarantined rows, schema changes and each source table. One gathering for
/// both the text and `--json`, so the two never disagree.
#[derive(Debug, Default, Serialize)]
pub struct StatusReport {
    /// The newest extract run and its source snapshot; `None` before the first extract.
    pub last_extract: Option<StageRun>,
    pub last_transform: Option<String>,
    /// Only when a warehouse is given (`None` inside means: none loaded yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_load: Option<Option<StageRun>>,
    /// Age of the newest loaded run, in seconds.
    pub warehouse_freshness_seconds: Option<f64>,
    pub blocked: Vec<onyx_core::runs::FailureRecord>,
    pub parked: Vec<onyx_core::runs::ParkRecord>,
    pub awaiting_transform: usize,
    pub quarantined_rows: u64,
    pub schema_changes: Vec<SchemaChange>,
    pub source_tables: Vec<SourceTableStatus>,
}

#[derive(Debug, Serialize)]
pub struct StageRun {
    pub run_id: String,
    /// The extract's source snapshot time, or when the load committed.
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct SchemaChange {
    pub run_id: String,
    pub change: String,
}

#[derive(Debug, Serialize)]
pub struct SourceTableStatus {
    pub table: String,
    pub last_run_rows: u64,
    pub columns: usize,
    /// From the source, when one is given (or why it could not be read).
    pub newest_last_updated: Option<String>,
    pub rows_now: Option<i64>,
}

/// Gathers `onyx status` (see [`StatusReport`]).
pub async fn status(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    source: Option<&Client>,
    warehouse: Option<&Client>,
) -> anyhow::Result<StatusReport> {
    let mut report = StatusReport::default();
    let Some(latest) = extract::latest_manifest(ingestion).await? else {
        return Ok(report);
    };
    report.last_extract = Some(StageRun { run_id: latest.run_id.clone(), at: latest.snapshot_time.clone() });
    report.last_transform = transform::latest_processed(processed).await?.map(|m| m.run_id);
    let loaded = match warehouse {
        Some(client) => Some(ops::loaded_runs(client).await?),
        None => None,
    };
    if let Some(loaded) = &loaded {
        report.last_load =
            Some(loaded.iter().next_back().map(|(run, at)| StageRun { run_id: run.clone(), at: at.to_string() }));
    }
    if let Some(client) = warehouse {
        report.warehouse_freshness_seconds =
            onyx_core::load::warehouse_freshness(client, onyx_core::chrono::Utc::now()).await?;
    }
    report.blocked = ops::blocked_runs(processed, warehouse).await?;
    let records = onyx_core::runs::park_records(processed).await?;
    for record in records.iter().filter(|r| r.action == "park") {
        let unparked = records.iter().any(|u| u.run_id == record.run_id && u.action == "unpark" && u.at > record.at);
        if !unparked {
            report.parked.push(record.clone());
        }
    }
    report.awaiting_transform = transform::pending_runs(ingestion, processed).await?.len();
    let runs = ops::runs(ingestion, processed, warehouse).await?;
    report.quarantined_rows = runs.iter().filter_map(|r| r.transformed.map(|(_, q)| q)).sum();
    report.schema_changes = runs
        .iter()
        .flat_map(|r| r.schema_changes.iter().map(|c| SchemaChange { run_id: r.run_id.clone(), change: c.clone() }))
        .collect();
    for table in &latest.tables {
        let (newest, rows) = match (source, SourceTable::named(&table.table)) {
            (Some(client), Some(known)) if !table.columns.is_empty() => {
                let sql = format!(
                    "SELECT to_char(max(last_updated), 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), count(*) FROM {}",
                    known.name
                );
                match client.query_one(sql.as_str(), &[]).await {
                    Ok(row) => (Some(row.get::<_, Option<String>>(0).unwrap_or_else(|| "-".into())), Some(row.get(1))),
                    Err(e) => (Some(format!("unreadable: {}", onyx_core::db::error_text(&e))), None),
                }
            }
            _ => (None, None),
        };
        report.source_tables.push(SourceTableStatus {
            table: table.table.clone(),
            last_run_rows: table.rows,
            columns: table.columns.len(),
            newest_last_updated: newest,
            rows_now: rows,
        });
    }
    Ok(report)
}

/// `onyx status` as text.
pub fn status_text(report: &StatusReport, source_given: bool) -> String {
    let mut out = String::new();
    let Some(extract) = &report.last_extract else {
        return "no extract run yet: run `onyx extract` (or `onyx run`)\n".into();
    };
    let _ = writeln!(out, "last extract     {}  (source snapshot {})", extract.run_id, extract.at);
    let _ = writeln!(out, "last transform   {}", report.last_transform.as_deref().unwrap_or("none"));
    match &report.last_load {
        Some(Some(load)) => {
            let _ = writeln!(out, "last load        {}  (at {})", load.run_id, load.at);
        }
        Some(None) => {
            let _ = writeln!(out, "last load        none");
        }
        None => {}
    }
    if let Some(seconds) = report.warehouse_freshness_seconds {
        let _ = writeln!(
            out,
            "warehouse freshness: newest loaded run is {} old",
            crate::deployed::human_age(seconds as i64)
        );
    }
    for failure in &report.blocked {
        let _ = writeln!(
            out,
            "BLOCKED: {} of run {} failed at {} and later runs wait: {}\n  fix the cause, or `onyx park {} --reason …`",
            failure.stage,
            failure.run_id,
            failure.at.to_rfc3339(),
            failure.error,
            failure.run_id
        );
    }
    for record in &report.parked {
        let _ = writeln!(
            out,
            "parked: {} by {} at {}: {}",
            record.run_id,
            record.by,
            record.at.to_rfc3339(),
            record.reason
        );
    }
    let _ = writeln!(out, "awaiting transform: {} run(s)", report.awaiting_transform);
    let _ = writeln!(
        out,
        "quarantined rows (all runs): {}{}",
        report.quarantined_rows,
        if report.quarantined_rows > 0 { "  — see `onyx quarantine`" } else { "" }
    );
    if report.schema_changes.is_empty() {
        let _ = writeln!(out, "source schema changes: none");
    } else {
        let _ = writeln!(out, "source schema changes ({}):", report.schema_changes.len());
        for change in &report.schema_changes {
            let _ = writeln!(out, "  {}  {}", change.run_id, change.change);
        }
    }
    let rows = report.source_tables.iter().map(|table| {
        let newest = match &table.newest_last_updated {
            Some(newest) => newest.clone(),
            None if !source_given => "(no source configured)".into(),
            None => "-".into(),
        };
        vec![
            table.table.clone(),
            table.last_run_rows.to_string(),
            table.columns.to_string(),
            newest,
            table.rows_now.map_or("-".to_string(), |r| r.to_string()),
        ]
    });
    out.push('\n');
    out.push_str(&text_table(
        &["source table", "last run rows", "columns", "newest last_updated", "rows now"],
        &[1, 2, 4],
        rows,
    ));
    out
}

/// `onyx verify`: one line per warehouse table, then the differences, then the verdict.
pub fn verify_report(report: &onyx_core::verify::VerifyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "warehouse as of run {} (source snapshot {})", report.run_id, report.snapshot_time);
    if !report.in_flight_known {
        let _ = writeln!(out, "(that run predates snapshot tracking: rows changed since count as differences)");
    }
    let _ = writeln!(
        out,
        "\n{:<22} {:>9} {:>9} {:>8} {:>6} {:>10} {:>10}",
        "table", "checked", "equal", "missing", "extra", "different", "in flight"
    );
    for t in &report.tables {
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:>9} {:>8} {:>6} {:>10} {:>10}",
            t.table, t.checked, t.equal, t.missing, t.extra, t.different, t.in_flight
        );
    }
    for t in report.tables.iter().filter(|t| !t.differences.is_empty()) {
        let _ = writeln!(out, "\n{}:", t.table);
        for d in &t.differences {
            let _ = writeln!(out, "  id {} {}", d.id, d.kind);
            for (column, source, warehouse) in &d.columns {
                let show = |v: &Option<String>| v.as_deref().map_or("NULL".to_string(), |v| format!("{v:?}"));
                let _ = writeln!(out, "    {column}: source {} | warehouse {}", show(source), show(warehouse));
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} in {} ms",
        if report.is_clean() {
            "verdict: the warehouse equals the source".to_string()
        } else {
            format!("verdict: {} difference(s)", report.differences())
        },
        report.duration_ms
    );
    out
}

/// `onyx quarantine`: one line per held, quarantined or flagged row, oldest run first.
pub fn quarantine_table(listed: &[transform::requeue::Listed]) -> String {
    let mut out = String::new();
    if listed.is_empty() {
        let _ = writeln!(out, "nothing held, quarantined or flagged");
        return out;
    }
    let rows = listed.iter().map(|row| {
        vec![
            row.status.to_string(),
            row.table.clone(),
            row.key.map_or("-".to_string(), |k| k.to_string()),
            row.column.clone().unwrap_or_else(|| "-".into()),
            row.run_id.clone(),
            transform::requeue::age_text(row.age_seconds),
            row.reason.clone(),
        ]
    });
    out.push_str(&text_table(&["status", "table", "key", "column", "run", "age", "reason"], &[2, 5], rows));
    let count = |status: &str| listed.iter().filter(|r| r.status == status).count();
    let _ = writeln!(
        out,
        "\n{} row(s): {} held (released automatically when their reference arrives), {} quarantined, {} flagged \
         (loaded), {} requeued, {} requeue pending",
        listed.len(),
        count("held"),
        count("quarantined"),
        count("flagged"),
        count("requeued"),
        count("requeue-pending")
    );
    out
}
