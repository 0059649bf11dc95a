//! `onyx`: run the Onyx pipeline on one machine — seed a source, extract, and more.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use onyx_core::{config, extract, handlers, seed, transform};

#[derive(Parser)]
#[command(name = "onyx", version, about = "Onyx: ToteSys → ingestion bucket → star schemas → warehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the ToteSys schema in an empty database and load the real sample (48k rows).
    Seed {
        /// postgres:// URL of the (empty) source database [env: ONYX_SOURCE_URL]
        #[arg(long)]
        source_url: Option<String>,
    },
    /// Extract every changed row version from ToteSys into the ingestion bucket (one run).
    Extract {
        /// postgres:// URL of the source [env: ONYX_SOURCE_URL, or ONYX_SOURCE_SECRET]
        #[arg(long)]
        source_url: Option<String>,
        /// Ingestion bucket: a directory or s3://bucket/prefix [env: ONYX_INGESTION]
        #[arg(long)]
        ingestion: Option<String>,
        /// Seconds a transaction may commit after its rows' last_updated [env: ONYX_SAFETY_LAG_SECONDS; default 300]
        #[arg(long)]
        safety_lag_seconds: Option<u64>,
    },
    /// Transform pending ingestion runs into star-schema Parquet (in run order).
    Transform {
        /// Ingestion bucket: a directory or s3://bucket/prefix [env: ONYX_INGESTION]
        #[arg(long)]
        ingestion: Option<String>,
        /// Processed bucket: a directory or s3://bucket/prefix [env: ONYX_PROCESSED]
        #[arg(long)]
        processed: Option<String>,
        /// Transform up to and including this run only (a run already done is a no-op)
        #[arg(long)]
        run: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    onyx_core::telemetry::init(false);
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Seed { source_url } => {
            let mut client = config::source(source_url)?.connect("source").await?;
            let counts = seed::seed_sample(&mut client).await?;
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            for (table, rows) in &counts {
                println!("{table:<16} {rows:>8}");
            }
            println!("seeded {total} rows into {} tables", counts.len());
        }
        Command::Extract { source_url, ingestion, safety_lag_seconds } => {
            let source = config::source(source_url)?;
            let store = config::location(ingestion, config::ENV_INGESTION, "the ingestion bucket (--ingestion)")?
                .open()
                .await?;
            let options =
                extract::ExtractOptions { safety_lag: config::safety_lag(safety_lag_seconds)?, ..Default::default() };
            let mut client = source.connect("source").await?;
            let summary = extract::run(&mut client, store.as_ref(), &options).await?;
            println!("{}", serde_json::to_string_pretty(&handlers::summary_json(&summary))?);
        }
        Command::Transform { ingestion, processed, run } => {
            let ingestion = config::location(ingestion, config::ENV_INGESTION, "the ingestion bucket (--ingestion)")?
                .open()
                .await?;
            let processed = config::location(processed, config::ENV_PROCESSED, "the processed bucket (--processed)")?
                .open()
                .await?;
            let runs = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), run.as_deref()).await?;
            if runs.is_empty() {
                println!("nothing to transform: every run is already transformed");
            }
            for run in &runs {
                println!("{}", serde_json::to_string_pretty(&handlers::transform_summary_json(run))?);
            }
        }
    }
    Ok(())
}
