//! `onyx`: run the Onyx pipeline on one machine — seed a source, extract, transform, load, or
//! all three at once. Locations are local directories or `s3://bucket/prefix`.

mod deployed;
mod doctor;
mod help;
mod report;
mod summary;

use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use onyx_core::storage::{ObjectStore, Store};
use onyx_core::{config, extract, handlers, load, ops, seed, simulate, transform};

#[derive(Parser)]
#[command(name = "onyx", version = env!("BUILD_VERSION"), about = "Onyx: ToteSys → ingestion bucket → star schemas → warehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Source {
    /// postgres:// URL of the ToteSys source (without it: ONYX_SOURCE_SECRET, a Secrets Manager
    /// secret id)
    #[arg(long, env = config::ENV_SOURCE_URL, hide_env_values = true)]
    source_url: Option<String>,
}

#[derive(Args, Clone)]
struct Warehouse {
    /// postgres:// URL of the warehouse (without it: ONYX_WAREHOUSE_SECRET, a Secrets Manager
    /// secret id)
    #[arg(long, env = config::ENV_WAREHOUSE_URL, hide_env_values = true)]
    warehouse_url: Option<String>,
}

#[derive(Args, Clone)]
struct Ingestion {
    /// Ingestion bucket: a directory or s3://bucket/prefix
    #[arg(long, env = config::ENV_INGESTION)]
    ingestion: Option<String>,
}

#[derive(Args, Clone)]
struct Processed {
    /// Processed bucket: a directory or s3://bucket/prefix
    #[arg(long, env = config::ENV_PROCESSED)]
    processed: Option<String>,
}

#[derive(Args, Clone)]
struct Lag {
    /// Time zone the source's timestamps are written in, e.g. Europe/London [default: UTC]
    #[arg(long, env = config::ENV_SOURCE_TIMEZONE)]
    source_timezone: Option<String>,
    /// The most row versions one run carries; more comes in consecutive runs [default: 500000]
    #[arg(long, env = config::ENV_MAX_RUN_ROWS)]
    max_run_rows: Option<u64>,
    /// How often a run compares the keys it delivered with the source's, to find deleted rows
    /// (e.g. 1h, 30m; 0s: every run) [default: 1h]
    #[arg(long, env = config::ENV_RECONCILE_EVERY)]
    reconcile_every: Option<String>,
}

impl Lag {
    fn options(self) -> anyhow::Result<extract::ExtractOptions> {
        Ok(extract::ExtractOptions {
            source_timezone: config::source_timezone(self.source_timezone),
            max_run_rows: config::max_run_rows(self.max_run_rows)?,
            reconcile_every: config::reconcile_every(self.reconcile_every)?,
            ..Default::default()
        })
    }
}

#[derive(Args, Clone)]
struct StackArg {
    /// The deployed stack: its Terraform directory (runs `terraform output -json` there) or a
    /// file holding that command's output
    #[arg(long, env = onyx_core::stack::ENV_STACK)]
    stack: Option<String>,
}

#[derive(Args, Clone, Copy)]
struct Json {
    /// Print JSON (one document) instead of text, for scripts and dashboards
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Create the ToteSys schema in an empty database and load the real sample (48k rows).
    Seed {
        #[command(flatten)]
        source: Source,
        /// Instead of the real sample, generate synthetic data at N× its size (deterministic)
        #[arg(long, value_name = "N")]
        scale: Option<u64>,
        /// Seed of the synthetic generator
        #[arg(long, default_value_t = 42, requires = "scale")]
        seed: u64,
    },
    /// Extract every changed row version from ToteSys into the ingestion bucket (one run).
    Extract {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        lag: Lag,
    },
    /// Transform pending ingestion runs into star-schema Parquet, in run order.
    Transform {
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        processed: Processed,
        /// Transform up to and including this run only (a run already done is a no-op)
        #[arg(long)]
        run: Option<String>,
    },
    /// Load pending processed runs into the warehouse, in run order, each in one transaction.
    Load {
        #[command(flatten)]
        processed: Processed,
        #[command(flatten)]
        warehouse: Warehouse,
        /// Load up to and including this run only (a run already loaded is a no-op)
        #[arg(long)]
        run: Option<String>,
    },
    /// Create or upgrade the warehouse schema (idempotent), and the roles onyx_loader and
    /// onyx_reader when ONYX_LOADER_PASSWORD[_SECRET] / ONYX_READER_PASSWORD[_SECRET] are set.
    Migrate {
        #[command(flatten)]
        warehouse: Warehouse,
    },
    /// Print the lake's Glue table schemas (JSON, from the warehouse descriptions); Terraform
    /// reads the committed copy: `onyx lake-schema > terraform/generated/lake_tables.json`.
    LakeSchema,
    /// Write a static HTML report with charts from the warehouse to DIR/index.html.
    Report {
        #[command(flatten)]
        warehouse: Warehouse,
        /// Directory to write the report into
        #[arg(long, default_value = "out/report")]
        out: std::path::PathBuf,
    },
    /// Make the source behave like live ToteSys for a while (new orders, payments marked paid…).
    Simulate {
        #[command(flatten)]
        source: Source,
        /// Simulated minutes of activity
        #[arg(long, default_value_t = 60)]
        minutes: u32,
        /// Random seed (the same seed makes the same activity)
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also move a department and change an address (reference-table changes)
        #[arg(long)]
        with_reference_changes: bool,
    },
    /// List the runs, oldest first, with the stage each reached.
    Runs {
        #[command(flatten)]
        json: Json,
        #[command(flatten)]
        stack: StackArg,
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        processed: Processed,
        #[command(flatten)]
        warehouse: Warehouse,
    },
    /// Watermarks, the last run of each stage, lag behind the source, quarantined rows. With
    /// --stack (or ONYX_STACK) also the deployed stack: every alarm's state, each dead-letter
    /// queue's depth and oldest event, each function's last ERROR line, the warehouse freshness,
    /// and a verdict (exit status 2 when degraded); the buckets default to the stack's.
    Status {
        #[command(flatten)]
        json: Json,
        #[command(flatten)]
        stack: StackArg,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        processed: Processed,
        #[command(flatten)]
        warehouse: Warehouse,
    },
    /// What the quarantine holds and why: the facts held in the newest processed state for a
    /// reference that has not arrived (released automatically by the first run that has it), and
    /// the lines of the quarantine objects of the newest --recent runs (rows held back for their
    /// content, and rows loaded with a flagged attribute). `requeue` re-processes what an
    /// operator fixed.
    #[command(args_conflicts_with_subcommands = true)]
    Quarantine {
        #[command(subcommand)]
        action: Option<QuarantineAction>,
        #[command(flatten)]
        json: Json,
        #[command(flatten)]
        stack: StackArg,
        #[command(flatten)]
        processed: Processed,
        /// How many of the newest processed runs' quarantine objects to read
        #[arg(long, default_value_t = 48)]
        recent: usize,
    },
    /// Rebuild an empty warehouse from the ingestion bucket alone (transform and load every run).
    Backfill {
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        processed: Processed,
        #[command(flatten)]
        warehouse: Warehouse,
    },
    /// Check the warehouse against the source as of the newest loaded run's snapshot: every
    /// difference named by table, id and column; rows changed since are "in flight". Exit status
    /// 0 only when everything is equal.
    Verify {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        warehouse: Warehouse,
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        json: Json,
    },
    /// Wait until a run is loaded (`make smoke` runs this after invoking the extract function):
    /// polls the run's manifests and the warehouse ledger, prints the run once loaded (exit 0),
    /// or fails naming the stage that did not finish — at once when a failure retrying will not
    /// fix is recorded, otherwise after --timeout.
    Wait {
        /// The run id, e.g. 20261128T070146578-4f77
        #[arg(required_unless_present = "extract_answer", conflicts_with = "extract_answer")]
        run: Option<String>,
        /// The extract function's answer (the file `aws lambda invoke` wrote): its run, or why
        /// there is none
        #[arg(long, value_name = "FILE")]
        extract_answer: Option<std::path::PathBuf>,
        /// Give up after this many seconds
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// Seconds between two looks
        #[arg(long, default_value_t = 5)]
        interval: u64,
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        processed: Processed,
        #[command(flatten)]
        warehouse: Warehouse,
    },
    /// Set a run aside so that the runs after it flow: the transform and the load pass over it
    /// (recorded with who, when and why in the processed bucket and the load ledger).
    Park {
        /// The run id, e.g. 20261128T070146578-4f77
        run: String,
        /// Why (kept in the audit record)
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        processed: Processed,
        /// Where to find a run the transform has not reached yet (its ingestion manifest)
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        stack: StackArg,
    },
    /// Put a parked run back in order: a stage that has not passed it yet treats it normally, and
    /// a rebuild (`onyx backfill`) includes it.
    Unpark {
        /// The parked run's id, e.g. 20261128T070146578-4f77
        run: String,
        #[command(flatten)]
        processed: Processed,
        #[command(flatten)]
        stack: StackArg,
    },
    /// The deployed functions' CloudWatch Logs as one time-ordered stream, one line per event:
    /// time, stage, level, run id, message, fields. Filters run in CloudWatch (a JSON filter
    /// pattern), so only matching events are downloaded.
    Logs {
        #[command(flatten)]
        stack: StackArg,
        /// How far back to start: 30m, 2h, 1d, 1h30m
        #[arg(long, default_value = "1h", value_parser = deployed::parse_duration)]
        since: std::time::Duration,
        /// Only this stage's function: extract, transform, load (or the function's name)
        #[arg(long, visible_alias = "function")]
        stage: Option<String>,
        /// Only events at this level or more severe: trace, debug, info, warn, error
        #[arg(long, value_parser = deployed::logs::parse_level)]
        level: Option<&'static str>,
        /// Only the lines of one run (across the three stages)
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
        /// At most this many events per function (the newest)
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
        /// Keep printing new events as they arrive (every --poll), until interrupted
        #[arg(long, short)]
        follow: bool,
        /// With --follow: how often to ask for new events
        #[arg(long, default_value = "2s", value_parser = deployed::parse_duration, hide = true)]
        poll: std::time::Duration,
    },
    /// The events each deployed function gave up on after its retries (its dead-letter queue):
    /// the original event and the error. `redrive` runs them again.
    #[command(args_conflicts_with_subcommands = true)]
    Dlq {
        #[command(subcommand)]
        action: Option<DlqAction>,
        #[command(flatten)]
        stack: StackArg,
        /// Only this stage's queue: extract, transform, load (or the function's name)
        #[arg(long, visible_alias = "function")]
        stage: Option<String>,
    },
    /// Check everything at once and say what to fix: every setting, each database (connection,
    /// TLS mode and certificate, the source's schema, the warehouse's migration state), each
    /// bucket, the AWS identity and the deployed stack. Reads only. Exit status 1 if any check
    /// fails (warnings do not fail).
    Doctor {
        #[command(flatten)]
        json: Json,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        warehouse: Warehouse,
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        processed: Processed,
        #[command(flatten)]
        stack: StackArg,
    },
    /// Extract → transform → load once, and print what each stage did.
    Run {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        ingestion: Ingestion,
        #[command(flatten)]
        processed: Processed,
        #[command(flatten)]
        warehouse: Warehouse,
        #[command(flatten)]
        lag: Lag,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Invoke each dead-lettered event's function again, asynchronously, with the original event,
    /// and delete the message once Lambda accepted the invocation (a refused one stays). Safe to
    /// run twice, and safe for an event whose run has meanwhile gone through: the pipeline is
    /// idempotent (a run already extracted, transformed or loaded is a no-op).
    Redrive {
        #[command(flatten)]
        stack: StackArg,
        /// Only this stage's queue: extract, transform, load (or the function's name)
        #[arg(long, visible_alias = "function")]
        stage: Option<String>,
        /// Print what would be invoked; invoke and delete nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum QuarantineAction {
    /// Ask the next transform run to re-apply the quarantined lines of a run (or of every run
    /// among the newest --recent that quarantined something) through the current rules, with
    /// their original version order. Writes an immutable request object (_requeue/<id>.json) in
    /// the processed bucket; nothing is changed or deleted. Held rows are not requeued: they are
    /// released on their own.
    Requeue {
        #[command(flatten)]
        stack: StackArg,
        #[command(flatten)]
        processed: Processed,
        /// A run whose quarantined lines to re-apply (repeatable)
        #[arg(long = "run", value_name = "ID")]
        runs: Vec<String>,
        /// Without --run: how many of the newest processed runs to consider
        #[arg(long, default_value_t = 48)]
        recent: usize,
        /// Why (kept in the request object)
        #[arg(long)]
        reason: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    onyx_core::telemetry::init(false);
    let cli = Cli::from_arg_matches(&help::grouped(Cli::command()).get_matches()).unwrap_or_else(|e| e.exit());
    match Box::pin(run(cli.command)).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every setting a command needs, checked together before any is used: all the missing or
/// invalid ones in one error, not one per attempt.
fn require_settings(checks: impl IntoIterator<Item = anyhow::Result<()>>) -> anyhow::Result<()> {
    let problems: Vec<String> = checks.into_iter().filter_map(|c| c.err().map(|e| format!("{e:#}"))).collect();
    match problems.as_slice() {
        [] => Ok(()),
        [one] => Err(anyhow::anyhow!("{one}")),
        many => Err(anyhow::anyhow!("{} settings are missing or invalid:\n  - {}", many.len(), many.join("\n  - "))),
    }
}

impl Source {
    fn check(&self) -> anyhow::Result<()> {
        Ok(config::source(self.source_url.clone()).map(drop)?)
    }
}

impl Warehouse {
    fn check(&self) -> anyhow::Result<()> {
        Ok(config::warehouse(self.warehouse_url.clone()).map(drop)?)
    }
}

impl Ingestion {
    fn location(&self) -> anyhow::Result<onyx_core::storage::Location> {
        let what = "the ingestion bucket (--ingestion)";
        Ok(config::location(self.ingestion.clone(), config::ENV_INGESTION, what)?)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.location().map(drop)
    }
}

impl Processed {
    fn location(&self) -> anyhow::Result<onyx_core::storage::Location> {
        let what = "the processed bucket (--processed)";
        Ok(config::location(self.processed.clone(), config::ENV_PROCESSED, what)?)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.location().map(drop)
    }
}

/// Whether a command needs a bucket to exist already: one it only reads (or adds a marker to)
/// must, so a mistyped path is an error rather than an empty bucket; one it may be the first to
/// write, or that is legitimately not written yet (the processed side of `status` before the
/// first transform), is created by that write.
#[derive(Clone, Copy)]
enum Access {
    MustExist,
    MayBeNew,
}

async fn open_location(location: onyx_core::storage::Location, access: Access) -> anyhow::Result<Store> {
    if matches!(location, onyx_core::storage::Location::S3 { .. }) {
        // A missing region or credentials is one clear error here, not a failed first request.
        deployed::checked_config().await.map_err(|e| e.context(format!("opening {location}")))?;
    }
    Ok(match access {
        Access::MustExist => location.open_existing().await?,
        Access::MayBeNew => location.open().await?,
    })
}

async fn open_ingestion(ingestion: Ingestion, access: Access) -> anyhow::Result<Store> {
    open_location(ingestion.location()?, access).await
}

async fn open_processed(processed: Processed, access: Access) -> anyhow::Result<Store> {
    open_location(processed.location()?, access).await
}

/// The warehouse, if one is configured (reports that can do without it).
/// The warehouse for a command that only reads it, when one is configured: a read-only session,
/// never migrated (see [`read_warehouse`]).
async fn optional_warehouse(warehouse: Warehouse) -> anyhow::Result<Option<onyx_core::tokio_postgres::Client>> {
    if config::warehouse(warehouse.warehouse_url.clone()).is_err() {
        return Ok(None);
    }
    Ok(Some(read_warehouse(warehouse).await?))
}

/// The warehouse for a command that only reads it: a read-only session that works with
/// read-only credentials, checked to be a migrated Onyx warehouse and never changed.
async fn read_warehouse(warehouse: Warehouse) -> anyhow::Result<onyx_core::tokio_postgres::Client> {
    let client = config::warehouse(warehouse.warehouse_url)?.connect("warehouse").await?;
    load::open_for_reading(&client).await?;
    Ok(client)
}

async fn connect_warehouse(warehouse: Warehouse) -> anyhow::Result<onyx_core::tokio_postgres::Client> {
    let mut client = config::warehouse(warehouse.warehouse_url)?.connect("warehouse").await?;
    load::migrate(&mut client).await?;
    Ok(client)
}

/// Whether a run is known: its manifest in the processed bucket (or the ingestion bucket, when
/// given), or a failure a stage recorded for it.
async fn run_exists(
    processed: &dyn ObjectStore,
    ingestion: Option<&dyn ObjectStore>,
    run: &str,
) -> anyhow::Result<bool> {
    let manifest = onyx_core::keys::manifest(run);
    let found = |keys: Vec<String>| keys.contains(&manifest);
    if found(processed.list(&manifest, None).await?) {
        return Ok(true);
    }
    if let Some(ingestion) = ingestion
        && found(ingestion.list(&manifest, None).await?)
    {
        return Ok(true);
    }
    Ok(onyx_core::runs::failures(processed).await?.iter().any(|f| f.run_id == run))
}

/// Who acts, for an audit record in `processed`: `ONYX_OPERATOR` when set; for a bucket in S3 the
/// AWS principal the command runs as (its ARN, with the local user), since that identity is what
/// the bucket's own access records show; otherwise `$USER@host`.
async fn operator(processed: &dyn ObjectStore) -> anyhow::Result<String> {
    let local = onyx_core::runs::operator();
    if env_set("ONYX_OPERATOR") || !processed.location().starts_with("s3://") {
        return Ok(local);
    }
    let config = deployed::checked_config().await?;
    let identity = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| deployed::explain(e, "asking AWS who runs this command (sts:GetCallerIdentity)"))?;
    Ok(match identity.arn() {
        Some(arn) => format!("{arn} ({local})"),
        None => local,
    })
}

/// The deployed stack, when --stack or ONYX_STACK names one.
fn optional_stack(stack: StackArg) -> anyhow::Result<Option<onyx_core::stack::Stack>> {
    match onyx_core::stack::Stack::locate(stack.stack) {
        Ok(stack) => Ok(Some(stack)),
        Err(onyx_core::stack::StackError::NotConfigured) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A deployed stack's ingestion bucket, unless one is given by flag or environment.
fn stack_ingestion(stack: Option<&onyx_core::stack::Stack>, ingestion: Ingestion) -> Ingestion {
    match (stack, &ingestion.ingestion, env_set(config::ENV_INGESTION)) {
        (Some(stack), None, false) => Ingestion { ingestion: Some(format!("s3://{}", stack.ingestion_bucket)) },
        _ => ingestion,
    }
}

/// A deployed stack's processed bucket, unless one is given by flag or environment.
fn stack_processed(stack: Option<&onyx_core::stack::Stack>, processed: Processed) -> Processed {
    match (stack, &processed.processed, env_set(config::ENV_PROCESSED)) {
        (Some(stack), None, false) => Processed { processed: Some(format!("s3://{}", stack.processed_bucket)) },
        _ => processed,
    }
}

fn env_set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Seed { source, scale, seed } => {
            let mut client = config::source(source.source_url)?.connect("source").await?;
            let counts = match scale {
                None => seed::seed_sample(&mut client).await?,
                Some(scale) => {
                    let spinner = indicatif::ProgressBar::new_spinner();
                    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
                    let counts = seed::seed_synthetic(&mut client, scale, seed, |table| {
                        spinner.set_message(format!("generating {table} ({scale}× the sample)"));
                    })
                    .await?;
                    spinner.finish_and_clear();
                    counts
                }
            };
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            for (table, rows) in &counts {
                println!("{table:<16} {rows:>8}");
            }
            println!("seeded {total} rows into {} tables", counts.len());
        }
        Command::Extract { source, ingestion, lag } => {
            require_settings([source.check(), ingestion.check(), lag.clone().options().map(drop)])?;
            let source = config::source(source.source_url)?;
            let store = open_ingestion(ingestion, Access::MayBeNew).await?;
            let options = lag.options()?;
            let mut client = source.connect("source").await?;
            // Consecutive runs until nothing is pending (a source larger than one run).
            loop {
                match extract::run(&mut client, store.as_ref(), &options).await {
                    Ok(summary) => {
                        print_json(&handlers::summary_json(&summary))?;
                        if !summary.manifest.has_more() {
                            break;
                        }
                    }
                    // Another extract is running: this one stood aside and wrote nothing.
                    Err(e) if e.is_claim_held() => {
                        println!("extract skipped: {e}");
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Command::Transform { ingestion, processed, run } => {
            require_settings([ingestion.check(), processed.check()])?;
            let ingestion = open_ingestion(ingestion, Access::MustExist).await?;
            let processed = open_processed(processed, Access::MayBeNew).await?;
            let runs = transform::transform_pending(ingestion.as_ref(), processed.as_ref(), run.as_deref()).await?;
            if runs.is_empty() {
                println!("nothing to transform: every run is already transformed");
            }
            for run in &runs {
                print_json(&handlers::transform_summary_json(run))?;
            }
        }
        Command::Load { processed, warehouse, run } => {
            require_settings([processed.check(), warehouse.check()])?;
            let processed = open_processed(processed, Access::MustExist).await?;
            let mut client = connect_warehouse(warehouse).await?;
            let runs =
                load::load_pending(&mut client, processed.as_ref(), run.as_deref(), &load::LoadOptions::default())
                    .await?;
            if runs.is_empty() {
                println!("nothing to load: every run is already loaded");
            }
            for run in &runs {
                print_json(&handlers::load_summary_json(run))?;
            }
        }
        Command::Migrate { warehouse } => {
            let mut client = config::warehouse(warehouse.warehouse_url)?.connect("warehouse").await?;
            let applied = load::migrate(&mut client).await?;
            if applied.is_empty() {
                println!("the warehouse schema is up to date");
            }
            for migration in applied {
                println!("applied {migration}");
            }
            // onyx_loader / onyx_reader, for the roles whose passwords are given (never printed).
            let passwords = load::roles::RolePasswords::from_env().await?;
            for role in load::roles::ensure_roles(&client, &passwords).await? {
                println!("role {role} is set up (login, password and privileges)");
            }
        }
        Command::Simulate { source, minutes, seed, with_reference_changes } => {
            let mut client = config::source(source.source_url)?.connect("source").await?;
            let options = simulate::SimulateOptions { minutes, seed, with_reference_changes };
            let done = simulate::simulate(&mut client, &options).await?;
            println!(
                "simulated {minutes} minutes: {} sales orders, {} purchase orders (each with its transaction and payment), \
                 {} payments marked paid, {} new designs, {} reference changes",
                done.sales_orders,
                done.purchase_orders,
                done.payments_marked_paid,
                done.designs,
                done.reference_changes
            );
        }
        Command::Runs { json: Json { json }, stack, ingestion, processed, warehouse } => {
            let stack = optional_stack(stack)?;
            let (ingestion, processed) =
                (stack_ingestion(stack.as_ref(), ingestion), stack_processed(stack.as_ref(), processed));
            let ingestion = open_ingestion(ingestion, Access::MustExist).await?;
            let processed = open_processed(processed, Access::MayBeNew).await?;
            let client = optional_warehouse(warehouse).await?;
            let runs = ops::runs(ingestion.as_ref(), processed.as_ref(), client.as_ref()).await?;
            if json {
                let runs: Vec<serde_json::Value> = runs
                    .iter()
                    .map(|run| {
                        let mut value = serde_json::to_value(run)?;
                        value["stage"] = run.stage().into();
                        Ok(value)
                    })
                    .collect::<serde_json::Result<_>>()?;
                print_json(&serde_json::json!({ "runs": runs }))?;
            } else {
                print!("{}", summary::runs_table(&runs));
            }
        }
        Command::Status { json: Json { json }, stack, source, ingestion, processed, warehouse } => {
            let stack = optional_stack(stack)?;
            let ingestion = stack_ingestion(stack.as_ref(), ingestion);
            let processed = stack_processed(stack.as_ref(), processed);
            let ingestion = open_ingestion(ingestion, Access::MustExist).await?;
            // Before the first transform there is no processed bucket yet: status says so.
            let processed = open_processed(processed, Access::MayBeNew).await?;
            let warehouse = optional_warehouse(warehouse).await?;
            let source = match config::source(source.source_url) {
                Ok(target) => Some(target.connect("source").await?),
                Err(_) => None,
            };
            let report =
                summary::status(ingestion.as_ref(), processed.as_ref(), source.as_ref(), warehouse.as_ref()).await?;
            let health = match stack {
                Some(stack) => {
                    let clients = deployed::Clients::from_env().await?;
                    Some(deployed::status::status(&clients, &stack, report.warehouse_freshness_seconds).await?)
                }
                None => None,
            };
            if json {
                let mut value = serde_json::json!({ "pipeline": report });
                if let Some(health) = &health {
                    value["deployed"] = serde_json::json!({
                        "verdict": if health.problems.is_empty() { "healthy" } else { "degraded" },
                        "problems": health.problems,
                    });
                }
                print_json(&value)?;
            } else {
                print!("{}", summary::status_text(&report, source.is_some()));
                if let Some(health) = &health {
                    print!("{}", health.text);
                    println!("{}", health.verdict());
                }
            }
            if health.is_some_and(|h| !h.problems.is_empty()) {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Logs { stack, since, stage, level, run, limit, follow, poll } => {
            let stack = onyx_core::stack::Stack::locate(stack.stack)?;
            let stages = stack.select(stage.as_deref()).map_err(anyhow::Error::msg)?;
            let clients = deployed::Clients::from_env().await?;
            let start = onyx_core::chrono::Utc::now().timestamp_millis() - since.as_millis() as i64;
            let filter = deployed::logs::LogFilter { min_level: level, run_id: run, metric: None };
            deployed::logs::print(&clients, &stages, start, &filter, limit, follow.then_some(poll)).await?;
        }
        Command::Dlq { action: None, stack, stage } => {
            let stack = onyx_core::stack::Stack::locate(stack.stack)?;
            let stages = stack.select(stage.as_deref()).map_err(anyhow::Error::msg)?;
            let clients = deployed::Clients::from_env().await?;
            print!("{}", deployed::dlq::list(&clients, &stages).await?);
        }
        Command::Dlq { action: Some(DlqAction::Redrive { stack, stage, dry_run }), .. } => {
            let stack = onyx_core::stack::Stack::locate(stack.stack)?;
            let stages = stack.select(stage.as_deref()).map_err(anyhow::Error::msg)?;
            let clients = deployed::Clients::from_env().await?;
            let done = deployed::dlq::redrive(&clients, &stages, dry_run).await?;
            if !dry_run {
                println!("redrive: {} event(s) invoked again and deleted, {} kept", done.invoked, done.kept);
            }
        }
        Command::Quarantine { action: None, json: Json { json }, stack, processed, recent } => {
            let processed = stack_processed(optional_stack(stack)?.as_ref(), processed);
            let processed = open_processed(processed, Access::MustExist).await?;
            let listed = transform::requeue::list(processed.as_ref(), recent).await?;
            if json {
                print_json(&serde_json::json!({ "rows": listed }))?;
            } else {
                print!("{}", summary::quarantine_table(&listed));
            }
        }
        Command::Quarantine {
            action: Some(QuarantineAction::Requeue { stack, processed, runs, recent, reason }),
            ..
        } => {
            let processed = stack_processed(optional_stack(stack)?.as_ref(), processed);
            let processed = open_processed(processed, Access::MustExist).await?;
            let runs = if runs.is_empty() {
                transform::requeue::runs_with_quarantine(processed.as_ref(), recent)
                    .await?
                    .into_iter()
                    .map(|m| m.run_id)
                    .collect()
            } else {
                runs
            };
            if runs.is_empty() {
                println!("nothing to requeue: none of the newest {recent} runs quarantined anything");
                return Ok(ExitCode::SUCCESS);
            }
            let who = operator(processed.as_ref()).await?;
            let (key, request) = transform::requeue::request(processed.as_ref(), runs, &who, reason).await?;
            println!(
                "requeue request {key} written for run(s) {}: the next transform run re-applies their quarantined lines",
                request.runs.join(", ")
            );
        }
        Command::Backfill { ingestion, processed, warehouse } => {
            require_settings([ingestion.check(), processed.check(), warehouse.check()])?;
            let ingestion = open_ingestion(ingestion, Access::MustExist).await?;
            let processed = open_processed(processed, Access::MayBeNew).await?;
            let mut client = connect_warehouse(warehouse).await?;
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} runs")?.progress_chars("=> "),
            );
            let (transformed, loaded) =
                ops::backfill(ingestion.as_ref(), processed.as_ref(), &mut client, |stage, done, total| {
                    bar.set_message(stage.to_string());
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                })
                .await?;
            bar.finish_and_clear();
            let rows: u64 = loaded.iter().flat_map(|r| r.rows.values()).sum();
            println!(
                "backfill: {} run(s) transformed, {} loaded, {rows} warehouse rows written",
                transformed.len(),
                loaded.len()
            );
        }
        Command::Verify { source, warehouse, ingestion, json: Json { json } } => {
            require_settings([source.check(), warehouse.check(), ingestion.check()])?;
            let ingestion = open_ingestion(ingestion, Access::MustExist).await?;
            let mut source = config::source(source.source_url)?.connect("source").await?;
            let warehouse = read_warehouse(warehouse).await?;
            let report = onyx_core::verify::verify(
                &mut source,
                &warehouse,
                ingestion.as_ref(),
                &onyx_core::verify::VerifyOptions::default(),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", summary::verify_report(&report));
            }
            if !report.is_clean() {
                // 2: differences (1 is an error).
                return Ok(ExitCode::from(2));
            }
        }
        Command::Wait { run, extract_answer, timeout, interval, ingestion, processed, warehouse } => {
            let run = match (run, extract_answer) {
                (Some(run), _) => run,
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read the extract answer {}: {e}", path.display()))?;
                    let answer: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("the extract answer {} is not JSON: {e}", path.display()))?;
                    handlers::run_of_extract_answer(&answer).map_err(|reason| anyhow::anyhow!("extract: {reason}"))?
                }
                (None, None) => anyhow::bail!("name a run, or give --extract-answer"),
            };
            let ingestion = open_ingestion(ingestion, Access::MustExist).await?;
            let processed = open_processed(processed, Access::MayBeNew).await?;
            // Read only: no migration, so the read-only onyx_reader role will do.
            let warehouse = config::warehouse(warehouse.warehouse_url)?.connect("warehouse").await?;
            let started = std::time::Instant::now();
            loop {
                let progress = ops::run_progress(ingestion.as_ref(), processed.as_ref(), &warehouse, &run).await?;
                let (Some(stage), Some(missing)) = (progress.unfinished, &progress.missing) else {
                    let status: Vec<_> = progress.status.into_iter().collect();
                    print!("{}", summary::runs_table(&status));
                    println!("run {run} is loaded");
                    return Ok(ExitCode::SUCCESS);
                };
                if let Some(failure) = &progress.blocked_by {
                    anyhow::bail!(
                        "{stage} did not finish for run {run}: {stage} of run {} failed at {} for a reason retrying \
                         will not fix: {} (`onyx status`; fix it or `onyx park {} --reason …`)",
                        failure.run_id,
                        failure.at.to_rfc3339(),
                        failure.error,
                        failure.run_id
                    );
                }
                if started.elapsed() >= std::time::Duration::from_secs(timeout) {
                    anyhow::bail!(
                        "{stage} did not finish for run {run} within {timeout} s: {missing} (the {stage} function's \
                         logs say why; `onyx status`)"
                    );
                }
                tracing::info!(run, stage, "waiting for the {stage} of run {run}");
                tokio::time::sleep(std::time::Duration::from_secs(interval.max(1))).await;
            }
        }
        Command::Park { run, reason, processed, ingestion, stack } => {
            let stack = optional_stack(stack)?;
            let (ingestion, processed) =
                (stack_ingestion(stack.as_ref(), ingestion), stack_processed(stack.as_ref(), processed));
            let processed = open_processed(processed, Access::MustExist).await?;
            if onyx_core::keys::partition(&run).is_none() {
                anyhow::bail!("{run:?} is not a run id (YYYYMMDDTHHMMSSmmm-xxxx)");
            }
            let ingestion = match config::location(ingestion.ingestion, config::ENV_INGESTION, "") {
                Ok(location) => Some(location.open_existing().await?),
                Err(_) => None,
            };
            if !run_exists(processed.as_ref(), ingestion.as_deref(), &run).await? {
                let searched = match &ingestion {
                    Some(ingestion) => format!("{} and {}", ingestion.location(), processed.location()),
                    None => {
                        format!("{} (give --ingestion for a run the transform has not reached)", processed.location())
                    }
                };
                anyhow::bail!(
                    "run {run} does not exist: no manifest and no recorded failure of it in {searched}; `onyx runs` lists the runs"
                );
            }
            let who = operator(processed.as_ref()).await?;
            let record = onyx_core::runs::park(processed.as_ref(), &run, &reason, &who).await?;
            println!("parked {run} (by {}, at {}): {reason}", record.by, record.at.to_rfc3339());
            println!("the transform and the load pass over it from now on; `onyx unpark {run}` puts it back");
        }
        Command::Unpark { run, processed, stack } => {
            let processed = stack_processed(optional_stack(stack)?.as_ref(), processed);
            let processed = open_processed(processed, Access::MustExist).await?;
            if onyx_core::runs::parking(processed.as_ref(), &run).await?.is_none() {
                anyhow::bail!("run {run} is not parked");
            }
            let who = operator(processed.as_ref()).await?;
            let record = onyx_core::runs::unpark(processed.as_ref(), &run, &who).await?;
            println!("unparked {run} (by {}, at {})", record.by, record.at.to_rfc3339());
        }
        Command::LakeSchema => print!("{}", onyx_core::lake::schema_json()),
        Command::Report { warehouse, out } => {
            let client = read_warehouse(warehouse).await?;
            let report = report::write_report(&client, &out).await?;
            println!("report written: {} ({} charts)", report.index.display(), report.charts.len());
        }
        Command::Doctor { json: Json { json }, source, warehouse, ingestion, processed, stack } => {
            let report = doctor::diagnose(doctor::Inputs {
                source_url: source.source_url,
                warehouse_url: warehouse.warehouse_url,
                ingestion: ingestion.ingestion,
                processed: processed.processed,
                stack: stack.stack,
            })
            .await;
            if json {
                print_json(&serde_json::to_value(&report)?)?;
            } else {
                print!("{}", report.text());
            }
            if report.failures() > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Run { source, ingestion, processed, warehouse, lag } => {
            require_settings([
                source.check(),
                ingestion.check(),
                processed.check(),
                warehouse.check(),
                lag.clone().options().map(drop),
            ])?;
            let source = config::source(source.source_url)?;
            let ingestion = open_ingestion(ingestion, Access::MayBeNew).await?;
            let processed = open_processed(processed, Access::MayBeNew).await?;
            let options = lag.options()?;
            let source_client = source.connect("source").await?;
            let mut warehouse_client = connect_warehouse(warehouse).await?;
            // Bounded runs until nothing is pending, the three stages overlapping across runs.
            let delivered = onyx_core::pipeline::run_until_delivered(
                source_client,
                &mut warehouse_client,
                ingestion,
                processed,
                options,
                |run| {
                    print!("{}", summary::run_summary(&run.extracted, &run.transformed, &run.loaded));
                    if let Some(pending) = &run.extracted.manifest.pending {
                        println!(
                            "more to deliver ({}): continuing with {} after key {}\n",
                            pending.reason,
                            pending.table,
                            pending.after_key.map_or("(start)".to_string(), |k| k.to_string())
                        );
                    }
                },
            )
            .await;
            match delivered {
                Ok(_) => {}
                Err(onyx_core::pipeline::RunError::Extract(e)) if e.is_claim_held() => {
                    println!("extract skipped: {e}");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
