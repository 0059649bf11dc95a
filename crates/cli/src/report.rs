//! `onyx report`: a static HTML report with PNG charts drawn from the warehouse views.
//! (Being written: see the report helper's task.)

use std::path::Path;

/// What the report wrote.
#[derive(Debug)]
pub struct ReportSummary {
    pub index: std::path::PathBuf,
    pub charts: Vec<std::path::PathBuf>,
}

/// Writes `out_dir/index.html` and its charts from the warehouse's views.
pub async fn write_report(
    _client: &onyx_core::tokio_postgres::Client,
    out_dir: &Path,
) -> anyhow::Result<ReportSummary> {
    anyhow::bail!("the report is not written yet (would write to {})", out_dir.display())
}
