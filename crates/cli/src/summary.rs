//! The one-screen summary `onyx run` prints.

use std::fmt::Write;

use onyx_core::extract::ExtractSummary;
use onyx_core::load::LoadedRun;
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
        if quarantined > 0 { " (see _quarantine/ in the processed bucket)" } else { "" }
    );
    out
}
