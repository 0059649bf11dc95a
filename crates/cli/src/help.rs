//! `onyx help`: the commands grouped by who uses them (running the pipeline, operating it,
//! analysing its data, developing it), and an example under each command's own help. Both are
//! tables here rather than attributes on the commands, so a unit test can prove every command
//! is grouped and has an example.

use clap::Command;

/// The groups, in the order `onyx help` lists them.
const GROUPS: &[(&str, &[&str])] = &[
    ("Run the pipeline", &["run", "extract", "transform", "load", "migrate", "backfill"]),
    (
        "Operate a pipeline",
        &["doctor", "status", "runs", "logs", "dlq", "quarantine", "park", "unpark", "wait", "verify"],
    ),
    ("Analyse the warehouse", &["report", "lake-schema"]),
    ("Develop and demonstrate", &["seed", "simulate"]),
];

/// One example per command, shown under `onyx <command> --help`.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "run",
        "onyx run --source-url postgres://localhost/totesys --ingestion out/ingestion --processed out/processed \\\n      --warehouse-url postgres://localhost/warehouse",
    ),
    ("extract", "ONYX_SOURCE_URL=postgres://localhost/totesys onyx extract --ingestion s3://my-ingestion-bucket"),
    ("transform", "onyx transform --ingestion out/ingestion --processed out/processed"),
    ("load", "onyx load --processed out/processed --warehouse-url postgres://localhost/warehouse"),
    ("migrate", "ONYX_READER_PASSWORD=… onyx migrate --warehouse-url postgres://admin@localhost/warehouse"),
    (
        "backfill",
        "onyx backfill --ingestion s3://my-ingestion-bucket --processed out/rebuilt --warehouse-url postgres://localhost/empty",
    ),
    ("doctor", "onyx doctor --stack terraform     # every setting, database, bucket and AWS check at once"),
    (
        "status",
        "onyx status --stack terraform     # the deployed stack: alarms, queues, verdict (exit 2 when degraded)",
    ),
    ("runs", "onyx runs --stack terraform --json"),
    ("logs", "onyx logs --stack terraform --stage load --level error --since 2h"),
    ("dlq", "onyx dlq --stack terraform --stage transform     # then: onyx dlq redrive --stage transform --dry-run"),
    (
        "quarantine",
        "onyx quarantine --processed s3://my-processed-bucket     # then: onyx quarantine requeue --run RUN_ID",
    ),
    ("park", "onyx park 20261128T070146578-4f77 --reason \"order 1234 has a negative quantity; fixing at source\""),
    ("unpark", "onyx unpark 20261128T070146578-4f77 --processed s3://my-processed-bucket"),
    ("wait", "onyx wait 20261128T070146578-4f77 --timeout 600"),
    ("verify", "onyx verify --json > verify.json     # exit 2 when the warehouse differs from the source"),
    ("report", "onyx report --warehouse-url postgres://onyx_reader@localhost/warehouse --out out/report"),
    ("lake-schema", "onyx lake-schema > terraform/generated/lake_tables.json"),
    ("seed", "onyx seed --source-url postgres://localhost/totesys_copy --scale 10"),
    ("simulate", "onyx simulate --source-url postgres://localhost/totesys_copy --minutes 60 --with-reference-changes"),
];

/// The first sentence of a command's description, cut to fit one line of the list.
fn summary(about: &str) -> String {
    const WIDTH: usize = 90;
    let first = about.split_inclusive(". ").next().unwrap_or(about).trim_end().trim_end_matches('.');
    if first.chars().count() <= WIDTH {
        return first.to_string();
    }
    let cut: String = first.chars().take(WIDTH).collect();
    let at = cut.rfind([' ', ',', ':']).unwrap_or(cut.len());
    format!("{}…", cut[..at].trim_end_matches([',', ':', ' ']))
}

/// `cli` with the grouped command list as its help and an example under each command.
pub fn grouped(cli: Command) -> Command {
    let mut listing = String::new();
    for (heading, names) in GROUPS {
        listing.push_str(&format!("{heading}:\n"));
        for name in *names {
            let about = cli
                .find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|about| about.to_string())
                .unwrap_or_default();
            listing.push_str(&format!("  {name:<12} {}\n", summary(&about)));
        }
        listing.push('\n');
    }
    listing.push_str("Settings are flags or ONYX_* variables: `onyx <command> --help` shows which, and an example.");
    let mut cli = cli
        .help_template("{before-help}{about-with-newline}\n{usage-heading} {usage}{after-help}\n\nOptions:\n{options}")
        .after_help(listing);
    for (name, example) in EXAMPLES {
        cli = cli.mut_subcommand(name, |c| c.after_help(format!("Example:\n  {example}")));
    }
    cli
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn commands() -> Vec<String> {
        crate::Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect()
    }

    /// A new command must be put in a group and given an example, or this fails.
    #[test]
    fn every_command_is_in_exactly_one_group_and_has_an_example() {
        for name in commands() {
            let groups = GROUPS.iter().filter(|(_, names)| names.contains(&name.as_str())).count();
            assert_eq!(groups, 1, "command {name} is in {groups} help groups");
            let example = EXAMPLES.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
            assert!(
                example.is_some_and(|e| e.contains(&format!("onyx {name}"))),
                "command {name} has no example that runs it: {example:?}"
            );
        }
        for (name, _) in GROUPS.iter().flat_map(|(_, names)| names.iter().map(|n| (*n, ()))) {
            assert!(commands().iter().any(|c| c == name), "help group names {name}, which is not a command");
        }
    }

    #[test]
    fn the_help_lists_each_group_and_a_command_shows_its_example() {
        let mut cli = grouped(crate::Cli::command());
        let help = cli.render_help().to_string();
        for (heading, _) in GROUPS {
            assert!(help.contains(&format!("{heading}:")), "{help}");
        }
        let mut park = cli.find_subcommand_mut("park").expect("park").clone();
        assert!(park.render_long_help().to_string().contains("Example:\n  onyx park "));
    }
}
