//! The three stages on one machine, run as the deployed pipeline runs them: each run is handed
//! on as soon as its stage is done, so run N+1 is extracted while run N is transformed and run
//! N−1 loaded. A source larger than one run's cap (bounded runs) then takes about as long as its
//! slowest stage, not the sum of all three; one run's work is what it was.
//!
//! Each stage still takes runs strictly in order: the transform and the load are asked for
//! "everything up to the run just handed on" (earlier leftovers included), exactly as the
//! Lambdas behind their bucket notifications are.

use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::extract::{self, ExtractError, ExtractOptions, ExtractSummary};
use crate::load::{self, LoadError, LoadOptions, LoadedRun};
use crate::storage::Store;
use crate::transform::{self, TransformError, TransformedRun};

/// What one run did in each stage.
#[derive(Debug)]
pub struct RunOutcome {
    pub extracted: ExtractSummary,
    /// The runs the transform carried out for it (more than one when earlier runs were pending).
    pub transformed: Vec<TransformedRun>,
    pub loaded: Vec<LoadedRun>,
}

/// A stage that failed (the one at the earliest run, when two did). The stages after it finish
/// the runs handed to them before the failure; the stages before it stop after their current run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Runs extract → transform → load until nothing is pending at the source, calling `on_loaded`
/// after each run's load. Returns how many runs were extracted.
pub async fn run_until_delivered(
    mut source: Client,
    warehouse: &mut Client,
    ingestion: Store,
    processed: Store,
    options: ExtractOptions,
    mut on_loaded: impl FnMut(&RunOutcome),
) -> Result<usize, RunError> {
    // One run waiting per hand-over: the extract stays at most a run or two ahead.
    let (extracted_tx, mut extracted_rx) = mpsc::channel::<ExtractSummary>(1);
    let (transformed_tx, mut transformed_rx) = mpsc::channel::<(ExtractSummary, Vec<TransformedRun>)>(1);

    let extract_store = ingestion.clone();
    let extracting = tokio::spawn(async move {
        let mut runs = 0;
        loop {
            let summary = extract::run(&mut source, extract_store.as_ref(), &options).await?;
            runs += 1;
            let more = summary.manifest.has_more();
            // A closed channel: a later stage failed, stop here.
            if extracted_tx.send(summary).await.is_err() || !more {
                return Ok::<usize, ExtractError>(runs);
            }
        }
    });

    let transform_processed = processed.clone();
    let transforming = tokio::spawn(async move {
        while let Some(extracted) = extracted_rx.recv().await {
            let up_to = Some(extracted.manifest.run_id.as_str());
            let transformed =
                transform::transform_pending(ingestion.as_ref(), transform_processed.as_ref(), up_to).await?;
            if transformed_tx.send((extracted, transformed)).await.is_err() {
                break;
            }
        }
        Ok::<(), TransformError>(())
    });

    let mut loading = Ok(());
    while let Some((extracted, transformed)) = transformed_rx.recv().await {
        let up_to = Some(extracted.manifest.run_id.as_str());
        match load::load_pending(warehouse, processed.as_ref(), up_to, &LoadOptions::default()).await {
            Ok(loaded) => on_loaded(&RunOutcome { extracted, transformed, loaded }),
            Err(error) => {
                loading = Err(error);
                break;
            }
        }
    }
    // Closing the hand-over stops the stages before a failed load after their current run.
    drop(transformed_rx);
    let transformed = transforming.await.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
    let extracted = extracting.await.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
    // A failure at an earlier run first: a load's run precedes the transform's, which precedes
    // the extract's.
    loading?;
    transformed?;
    Ok(extracted?)
}
