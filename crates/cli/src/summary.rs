//! The one-screen summary `onyx run` prints.

use std::fmt::Write;

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

/// `onyx runs`: one line per run.
pub fn runs_table(runs: &[RunStatus]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<25} {:<12} {:>9} {:>11} {:>11}  loaded at",
        "run", "stage", "extracted", "warehouse", "quarantined"
    );
    for run in runs {
        let (rows, quarantined) =
            run.transformed.map_or(("-".into(), "-".into()), |(r, q)| (r.to_string(), q.to_string()));
        let _ = writeln!(
            out,
            "{:<25} {:<12} {:>9} {:>11} {:>11}  {}",
            run.run_id,
            run.stage(),
            run.extracted_rows,
            rows,
            quarantined,
            run.loaded_at.as_deref().unwrap_or("-")
        );
    }
    if runs.is_empty() {
        let _ = writeln!(out, "no runs yet: run `onyx extract` (or `onyx run`)");
    }
    out
}

/// `onyx status`: watermarks, the last run per stage, lag behind the source, quarantined rows.
pub async fn status(
    ingestion: &dyn ObjectStore,
    processed: &dyn ObjectStore,
    source: Option<&Client>,
    warehouse: Option<&Client>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let Some(latest) = extract::latest_manifest(ingestion).await? else {
        return Ok("no extract run yet: run `onyx extract` (or `onyx run`)\n".into());
    };
    let _ = writeln!(out, "last extract     {}  (source snapshot {})", latest.run_id, latest.snapshot_time);
    match transform::latest_processed(processed).await? {
        Some(m) => {
            let _ = writeln!(out, "last transform   {}", m.run_id);
        }
        None => {
            let _ = writeln!(out, "last transform   none");
        }
    }
    if let Some(client) = warehouse {
        let loaded = ops::loaded_runs(client).await?;
        match loaded.iter().next_back() {
            Some((run, at)) => {
                let _ = writeln!(out, "last load        {run}  (at {at})");
            }
            None => {
                let _ = writeln!(out, "last load        none");
            }
        }
    }
    let pending = transform::pending_runs(ingestion, processed).await?;
    let _ = writeln!(out, "awaiting transform: {} run(s)", pending.len());
    let runs = ops::runs(ingestion, processed, warehouse).await?;
    let quarantined: u64 = runs.iter().filter_map(|r| r.transformed.map(|(_, q)| q)).sum();
    let _ = writeln!(
        out,
        "quarantined rows (all runs): {quarantined}{}",
        if quarantined > 0 { "  — see `onyx quarantine`" } else { "" }
    );

    let changes: Vec<(&str, &String)> =
        runs.iter().flat_map(|r| r.schema_changes.iter().map(move |c| (r.run_id.as_str(), c))).collect();
    if changes.is_empty() {
        let _ = writeln!(out, "source schema changes: none");
    } else {
        let _ = writeln!(out, "source schema changes ({}):", changes.len());
        for (run, change) in changes {
            let _ = writeln!(out, "  {run}  {change}");
        }
    }

    let _ = writeln!(
        out,
        "\n{:<16} {:>14} {:>8} {:<28} {:>10}",
        "source table", "last run rows", "columns", "newest last_updated", "rows now"
    );
    for table in &latest.tables {
        let (newest, rows) = match (source, SourceTable::named(&table.table)) {
            (Some(client), Some(known)) if !table.columns.is_empty() => {
                let sql = format!(
                    "SELECT to_char(max(last_updated), 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), count(*) FROM {}",
                    known.name
                );
                match client.query_one(sql.as_str(), &[]).await {
                    Ok(row) => (
                        row.get::<_, Option<String>>(0).unwrap_or_else(|| "-".into()),
                        row.get::<_, i64>(1).to_string(),
                    ),
                    Err(e) => (format!("unreadable: {}", onyx_core::db::error_text(&e)), "-".into()),
                }
            }
            (None, _) => ("(no source configured)".into(), "-".into()),
            _ => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<16} {:>14} {:>8} {:<28} {:>10}",
            table.table,
            table.rows,
            table.columns.len(),
            newest,
            rows
        );
    }
    Ok(out)
}

/// `onyx quarantine`: one line per held, quarantined or flagged row, oldest run first.
pub fn quarantine_table(listed: &[transform::requeue::Listed]) -> String {
    let mut out = String::new();
    if listed.is_empty() {
        let _ = writeln!(out, "nothing held, quarantined or flagged");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<15} {:<15} {:>8} {:<28} {:<24} {:>8}  reason",
        "status", "table", "key", "column", "run", "age"
    );
    for row in listed {
        let _ = writeln!(
            out,
            "{:<15} {:<15} {:>8} {:<28} {:<24} {:>8}  {}",
            row.status,
            row.table,
            row.key.map_or("-".to_string(), |k| k.to_string()),
            row.column.as_deref().unwrap_or("-"),
            row.run_id,
            transform::requeue::age_text(row.age_seconds),
            row.reason
        );
    }
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
