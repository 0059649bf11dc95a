//! The Terraform in `terraform/` is wired the way the code and the runbook expect: every function
//! has an ERROR alarm on its own log group that reaches the alarm topic, extraction runs at least
//! every 30 minutes and is watched for freshness, the S3 notifications start the next stage on
//! exactly the run manifests that `onyx_core::keys` writes, and IAM statements name the resources
//! they grant (the few `"*"` that AWS requires are listed here, each with its reason). Alarms mail
//! when they fire and when they clear, outages and data quality on topics of their own, with
//! absolute runbook and dashboard links; the dashboard shows every alarm and the recent ERRORs.
//!
//! These tests read the `.tf` files only (with `hcl-rs`): no provider, no AWS account.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use hcl::expr::{Expression, ObjectKey, TemplateExpr};
use hcl::{Block, Body};
use onyx_core::keys::{MANIFEST_PREFIX, MANIFEST_SUFFIX};

use crate::support::terraform::{attr, collect_tf_files, iam_glob, label, parse_dir_named, terraform_dir};

const LAMBDA_MODULE: &str = "./modules/lambda_function";
const FUNCTION_BINARIES: [&str; 3] = ["onyx-extract", "onyx-transform", "onyx-load"];

/// `"*"` resources that AWS requires, by (file under terraform/, statement Sid), with the reason.
const ALLOWED_WILDCARD_RESOURCES: [(&str, &str, &str); 10] = [
    (
        "modules/lambda_function/main.tf",
        "XRayWriteNoResourceLevelPermissions",
        "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions",
    ),
    (
        "modules/lambda_function/main.tf",
        "VpcDescribeNoResourceLevelPermissions",
        "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets support no resource-level permissions",
    ),
    ("kms.tf", "KeyPolicyThisKeyAccountAdministers", "in a key policy, \"*\" is the key the policy is attached to"),
    ("kms.tf", "KeyPolicyThisKeyCloudWatchLogs", "in a key policy, \"*\" is the key the policy is attached to"),
    ("kms.tf", "KeyPolicyThisKeyCloudWatchAlarms", "in a key policy, \"*\" is the key the policy is attached to"),
    (
        "bootstrap/main.tf",
        "KeyPolicyThisKeyAccountAdministers",
        "in a key policy, \"*\" is the key the policy is attached to",
    ),
    (
        "bootstrap/github.tf",
        "NoResourceLevelPermissions",
        "kms:CreateKey and kms:ListAliases support no resource-level permissions",
    ),
    (
        "bootstrap/github.tf",
        "ReadNetworkNoResourceLevelPermissions",
        "the EC2 Describe calls (Terraform's reads of the network) support no resource-level permissions",
    ),
    (
        "bootstrap/github.tf",
        "ReadNoResourceLevelPermissions",
        "kms:ListAliases and the EC2 Describe calls support no resource-level permissions",
    ),
    (
        "bootstrap/boundary.tf",
        "NoResourceLevelPermissions",
        "X-Ray's writes, the EC2 Describe calls and the SSM agent's channels support no resource-level permissions",
    ),
];

/// The `.tf` files of one Terraform module directory, parsed.
struct Module {
    files: Vec<(String, Body)>,
}

impl Module {
    fn load(relative: &str) -> Module {
        Module { files: parse_dir_named(relative) }
    }

    fn blocks(&self, kind: &str) -> impl Iterator<Item = &Block> + '_ {
        let kind = kind.to_owned();
        self.files.iter().flat_map(|(_, body)| body.blocks()).filter(move |b| b.identifier.as_str() == kind)
    }

    /// `resource "<kind>" "<name>"` blocks as (name, body).
    fn resources(&self, kind: &str) -> impl Iterator<Item = (&str, &Body)> + '_ {
        let kind = kind.to_owned();
        self.blocks("resource").filter(move |b| label(b, 0) == kind).map(|b| (label(b, 1), &b.body))
    }

    fn resource(&self, kind: &str, name: &str) -> &Body {
        self.resources(kind)
            .find(|(n, _)| *n == name)
            .map(|(_, body)| body)
            .unwrap_or_else(|| panic!("resource {kind}.{name} is not declared"))
    }

    fn locals(&self) -> BTreeMap<String, &Expression> {
        self.blocks("locals").flat_map(|b| b.body.attributes()).map(|a| (a.key.as_str().to_owned(), &a.expr)).collect()
    }

    fn variable_default(&self, name: &str) -> Option<&Expression> {
        self.blocks("variable").find(|b| label(b, 0) == name).and_then(|b| attr(&b.body, "default"))
    }

    /// Resolves `local.x` (repeatedly) to the expression it names.
    fn resolve<'a>(&'a self, expr: &'a Expression) -> &'a Expression {
        let locals = self.locals();
        let mut current = expr;
        for _ in 0..8 {
            match text(current).strip_prefix("local.").and_then(|name| locals.get(name)) {
                Some(next) if matches!(current, Expression::Traversal(_)) => current = next,
                _ => break,
            }
        }
        current
    }

    /// The literal string an expression stands for, following locals; None for computed values.
    fn string(&self, expr: &Expression) -> Option<String> {
        match self.resolve(expr) {
            Expression::String(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// A template (quoted string with interpolations) or string, following locals, as written.
    fn template(&self, expr: &Expression) -> Option<String> {
        match self.resolve(expr) {
            Expression::String(s) => Some(s.clone()),
            Expression::TemplateExpr(t) => match t.as_ref() {
                TemplateExpr::QuotedString(s) => Some(s.clone()),
                TemplateExpr::Heredoc(_) => None,
            },
            _ => None,
        }
    }
}

fn required<'a>(body: &'a Body, key: &str, what: &str) -> &'a Expression {
    attr(body, key).unwrap_or_else(|| panic!("{what} has no {key}"))
}

fn block<'a>(body: &'a Body, kind: &str) -> Option<&'a Body> {
    body.blocks().find(|b| b.identifier.as_str() == kind).map(|b| &b.body)
}

/// An expression as HCL source text (references read as `aws_sns_topic.alarms.arn`).
fn text(expr: &Expression) -> String {
    expr.to_string()
}

fn array_texts(expr: &Expression) -> Vec<String> {
    match expr {
        Expression::Array(items) => items.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

fn string_literal(expr: &Expression) -> Option<&str> {
    match expr {
        Expression::String(s) => Some(s),
        _ => None,
    }
}

/// The module blocks of the root that instantiate the Lambda function module.
fn function_modules(root: &Module) -> Vec<(&str, &Body)> {
    let modules: Vec<_> = root
        .blocks("module")
        .filter(|b| attr(&b.body, "source").and_then(string_literal) == Some(LAMBDA_MODULE))
        .map(|b| (label(b, 0), &b.body))
        .collect();
    assert!(!modules.is_empty(), "no module instantiates {LAMBDA_MODULE}");
    modules
}

#[test]
fn every_function_has_an_error_log_alarm_on_its_own_log_group_reaching_the_alarm_topic() {
    let module = Module::load("modules/lambda_function");

    // The function is named by var.function_name and logs to the log group the module creates.
    let function = module.resource("aws_lambda_function", "this");
    assert_eq!(text(required(function, "function_name", "aws_lambda_function.this")), "var.function_name");

    let log_groups: Vec<_> = module.resources("aws_cloudwatch_log_group").collect();
    assert_eq!(log_groups.len(), 1, "the module creates exactly one log group");
    let (log_group, log_group_body) = log_groups[0];
    let log_group_name = module.template(required(log_group_body, "name", "the log group"));
    assert_eq!(log_group_name.as_deref(), Some("/aws/lambda/${var.function_name}"), "Lambda's own log group name");
    let logging = block(function, "logging_config").expect("the function has a logging_config");
    assert_eq!(
        text(required(logging, "log_group", "logging_config")),
        format!("aws_cloudwatch_log_group.{log_group}.name"),
        "the function logs to the module's log group"
    );

    // A metric filter on that log group counts the JSON lines whose level is ERROR ...
    let log_group_ref = format!("aws_cloudwatch_log_group.{log_group}.name");
    let error_filters: Vec<_> = module
        .resources("aws_cloudwatch_log_metric_filter")
        .filter(|(_, body)| attr(body, "log_group_name").map(text) == Some(log_group_ref.clone()))
        .filter(|(_, body)| {
            module
                .string(required(body, "pattern", "the metric filter"))
                .is_some_and(|p| p.split_whitespace().collect::<String>().starts_with(r#"{$.level="ERROR""#))
        })
        .collect();
    assert_eq!(error_filters.len(), 1, "one ERROR-line metric filter on {log_group_ref}");
    let (filter, filter_body) = error_filters[0];
    let transformation = block(filter_body, "metric_transformation").expect("metric_transformation");
    let filter_metric = text(required(transformation, "name", "metric_transformation"));
    let filter_namespace = text(required(transformation, "namespace", "metric_transformation"));

    // ... and an alarm on that metric notifies var.alarm_topic_arn.
    let filter_ref = format!("aws_cloudwatch_log_metric_filter.{filter}.metric_transformation[0]");
    let error_alarms: Vec<_> = module
        .resources("aws_cloudwatch_metric_alarm")
        .filter(|(_, body)| {
            let metric = attr(body, "metric_name").map(text).unwrap_or_default();
            let namespace = attr(body, "namespace").map(text).unwrap_or_default();
            (metric == filter_metric || metric == format!("{filter_ref}.name"))
                && (namespace == filter_namespace || namespace == format!("{filter_ref}.namespace"))
        })
        .collect();
    assert_eq!(error_alarms.len(), 1, "one alarm on the ERROR-line metric");
    let (alarm, alarm_body) = error_alarms[0];
    let actions = array_texts(required(alarm_body, "alarm_actions", alarm));
    assert!(actions.contains(&"var.alarm_topic_arn".to_owned()), "{alarm} notifies {actions:?}");
    assert_eq!(text(required(alarm_body, "threshold", alarm)), "0");
    assert_eq!(
        module.string(required(alarm_body, "comparison_operator", alarm)).as_deref(),
        Some("GreaterThanThreshold")
    );

    // Every instance of the module in the root names its function and passes the SNS topic.
    let root = Module::load(".");
    let instances = function_modules(&root);
    let mut binaries = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (instance, body) in instances {
        let topic = text(required(body, "alarm_topic_arn", instance));
        let topic_resource = topic
            .strip_prefix("aws_sns_topic.")
            .and_then(|rest| rest.strip_suffix(".arn"))
            .unwrap_or_else(|| panic!("module.{instance} alarm_topic_arn is {topic}, not an SNS topic's arn"));
        root.resource("aws_sns_topic", topic_resource);
        names.insert(text(required(body, "function_name", instance)));
        let zip = text(required(body, "zip_path", instance));
        let binary = FUNCTION_BINARIES
            .iter()
            .find(|bin| zip.contains(&format!("/{bin}/bootstrap.zip")))
            .unwrap_or_else(|| panic!("module.{instance} deploys {zip}, not one of {FUNCTION_BINARIES:?}"));
        assert!(binaries.insert(*binary), "{binary} is deployed twice");
    }
    assert_eq!(binaries, FUNCTION_BINARIES.into_iter().collect(), "every Lambda binary is deployed");
    assert_eq!(names.len(), FUNCTION_BINARIES.len(), "function names are distinct");
}

/// Issue #13 item 1: reserving concurrency fails `PutFunctionConcurrency` on an account at a new
/// account's quota of 10 (AWS keeps at least 100 units unreserved), so the reservation is the root
/// variable `reserved_concurrency`, null (unreserved) by default, passed unchanged to every function
/// module, whose `aws_lambda_function.this.reserved_concurrent_executions` is its own null-default
/// variable. Exercises the HCL wiring only (root variable default → module argument → resource
/// attribute); that the pipeline is exactly-once under concurrency is tested in tests/pipeline.rs.
#[test]
fn reserved_concurrency_is_a_variable_unset_by_default_and_wired_to_every_function() {
    let root = Module::load(".");
    let default = root.variable_default("reserved_concurrency").expect("variable reserved_concurrency has a default");
    assert!(
        matches!(default, Expression::Null),
        "reserved_concurrency defaults to null (no reservation), not {default}"
    );
    for (name, body) in function_modules(&root) {
        assert_eq!(
            text(required(body, "reserved_concurrent_executions", &format!("module.{name}"))),
            "var.reserved_concurrency",
            "module.{name} passes the root variable"
        );
    }
    let module = Module::load("modules/lambda_function");
    let default = module.variable_default("reserved_concurrent_executions").expect("the module variable has a default");
    assert!(matches!(default, Expression::Null), "the module's reserved_concurrent_executions defaults to null");
    let function = module.resource("aws_lambda_function", "this");
    assert_eq!(
        text(required(function, "reserved_concurrent_executions", "aws_lambda_function.this")),
        "var.reserved_concurrent_executions"
    );
}

#[test]
fn extraction_is_scheduled_at_least_every_30_minutes_and_watched_for_freshness() {
    let root = Module::load(".");
    let default = root.variable_default("schedule_expression").expect("schedule_expression has a default");
    let default = string_literal(default).expect("the default is a literal");
    let minutes: u32 = default
        .strip_prefix("rate(")
        .and_then(|rest| rest.strip_suffix(" minutes)").or_else(|| rest.strip_suffix(" minute)")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("default schedule {default:?} is not rate(N minutes)"));
    assert!((1..=30).contains(&minutes), "default schedule {default:?} is more than 30 minutes apart");

    // The schedule starts extract (the load's periodic check runs on the same schedule).
    let rules: Vec<_> = root
        .resources("aws_cloudwatch_event_rule")
        .filter(|(_, body)| attr(body, "schedule_expression").map(text).as_deref() == Some("var.schedule_expression"))
        .map(|(name, _)| name)
        .collect();
    let targets: Vec<_> = root
        .resources("aws_cloudwatch_event_target")
        .filter(|(_, body)| {
            rules.iter().any(|r| attr(body, "rule").map(text) == Some(format!("aws_cloudwatch_event_rule.{r}.name")))
        })
        .map(|(_, body)| text(required(body, "arn", "the event target")))
        .collect();
    assert_eq!(
        targets.iter().filter(|t| *t == "module.extract.function_arn").count(),
        1,
        "one rule on var.schedule_expression starts extract: {targets:?}"
    );

    // Freshness: fewer than one successful extraction in the period alarms, and silence too.
    let freshness: Vec<_> = root
        .resources("aws_cloudwatch_metric_alarm")
        .filter(|(_, body)| attr(body, "metric_name").and_then(|e| root.string(e)).as_deref() == Some("RunSucceeded"))
        .collect();
    assert_eq!(freshness.len(), 1, "one freshness alarm on RunSucceeded");
    let (name, body) = freshness[0];
    let field = |key: &str| root.string(required(body, key, name));
    assert_eq!(field("namespace").as_deref(), Some("Onyx"));
    assert_eq!(field("statistic").as_deref(), Some("Sum"));
    assert_eq!(field("comparison_operator").as_deref(), Some("LessThanThreshold"));
    assert_eq!(field("treat_missing_data").as_deref(), Some("breaching"));
    assert_eq!(text(required(body, "threshold", name)), "1");
    match required(body, "dimensions", name) {
        Expression::Object(dims) => {
            let stage = dims.iter().find(|(k, _)| object_key(k) == "Stage").map(|(_, v)| root.string(v));
            assert_eq!(stage, Some(Some("extract".to_owned())), "freshness watches Stage=extract");
        }
        other => panic!("{name} dimensions are {other}"),
    }
    let actions = array_texts(required(body, "alarm_actions", name));
    assert!(actions.iter().any(|a| a.starts_with("aws_sns_topic.")), "{name} notifies {actions:?}");
}

#[test]
fn s3_notifications_start_the_next_stage_on_run_manifests_only() {
    let root = Module::load(".");
    let mut wiring = BTreeMap::new();
    for (name, body) in root.resources("aws_s3_bucket_notification") {
        let bucket = text(required(body, "bucket", name));
        let functions: Vec<_> = body.blocks().filter(|b| b.identifier.as_str() == "lambda_function").collect();
        assert_eq!(functions.len(), 1, "{name} starts exactly one function");
        let function = &functions[0].body;
        let prefix = root.string(required(function, "filter_prefix", name));
        let suffix = root.string(required(function, "filter_suffix", name));
        assert_eq!(prefix.as_deref(), Some(MANIFEST_PREFIX), "{name} filter_prefix = onyx_core::keys::MANIFEST_PREFIX");
        assert_eq!(suffix.as_deref(), Some(MANIFEST_SUFFIX), "{name} filter_suffix = onyx_core::keys::MANIFEST_SUFFIX");
        assert_eq!(array_texts(required(function, "events", name)), [r#""s3:ObjectCreated:*""#]);
        wiring.insert(bucket, text(required(function, "lambda_function_arn", name)));
    }
    let expected: BTreeMap<_, _> = [
        ("module.ingestion_bucket.id".to_owned(), "module.transform.function_arn".to_owned()),
        ("module.processed_bucket.id".to_owned(), "module.load.function_arn".to_owned()),
    ]
    .into();
    assert_eq!(wiring, expected, "ingestion manifests start transform, processed manifests start load");
}

#[test]
fn iam_statements_name_the_resources_they_grant() {
    let mut files = Vec::new();
    collect_tf_files(&terraform_dir(), &mut files);
    assert!(files.len() > 10, "found only {} .tf files", files.len());

    let mut statements = 0;
    let mut wildcards = BTreeSet::new();
    for path in files {
        let relative =
            path.strip_prefix(terraform_dir()).expect("under terraform/").to_string_lossy().replace('\\', "/");
        let source = fs::read_to_string(&path).expect("readable .tf file");
        let body = hcl::parse(&source).unwrap_or_else(|e| panic!("parsing {relative}: {e}"));
        let mut found = Vec::new();
        policy_statements(&body, &mut found);
        for statement in found {
            statements += 1;
            let where_ = format!("{relative}: statement {:?}", statement.sid);
            if statement.resources.is_empty() {
                assert!(statement.trust_policy, "{where_} names no resources");
            }
            assert!(!statement.resources.iter().any(String::is_empty), "{where_} has an empty resource");
            if statement.allows {
                assert!(!statement.actions.iter().any(|a| a == "*"), "{where_} allows every action of every service");
            }
            // A Deny on "*" grants nothing: only an Allow on "*" needs a reason.
            if statement.allows && statement.resources.iter().any(|r| r == "*") {
                let sid = statement.sid.clone().unwrap_or_default();
                let allowed = ALLOWED_WILDCARD_RESOURCES.iter().any(|(file, s, _)| *file == relative && *s == sid);
                assert!(
                    allowed,
                    "{where_} grants on \"*\"; name the resources or justify it in ALLOWED_WILDCARD_RESOURCES"
                );
                wildcards.insert((relative.clone(), sid));
            }
        }
    }
    assert!(statements > 20, "found only {statements} policy statements");
    for (file, sid, reason) in ALLOWED_WILDCARD_RESOURCES {
        assert!(!reason.is_empty());
        assert!(
            wildcards.contains(&(file.to_owned(), sid.to_owned())),
            "ALLOWED_WILDCARD_RESOURCES lists {file} {sid}, which no longer grants on \"*\": remove it"
        );
    }
}

/// One IAM statement, from an `aws_iam_policy_document` or a `jsonencode`d policy.
#[derive(Debug)]
struct Statement {
    sid: Option<String>,
    allows: bool,
    actions: Vec<String>,
    /// Resources as written: a literal's value, or the source text of a reference.
    resources: Vec<String>,
    /// Has principals and no resources: a trust (assume-role) policy.
    trust_policy: bool,
}

fn policy_statements(body: &Body, out: &mut Vec<Statement>) {
    for b in body.blocks() {
        if b.identifier.as_str() == "data" && label(b, 0) == "aws_iam_policy_document" {
            for s in b.body.blocks() {
                match (s.identifier.as_str(), label(s, 0)) {
                    ("statement", _) => out.push(document_statement(&s.body)),
                    ("dynamic", "statement") => {
                        let content = block(&s.body, "content").expect("dynamic statement has content");
                        out.push(document_statement(content));
                    }
                    _ => {}
                }
            }
        } else {
            for a in b.body.attributes() {
                json_policy_statements(&a.expr, out);
            }
            policy_statements(&b.body, out);
        }
    }
    for a in body.attributes() {
        json_policy_statements(&a.expr, out);
    }
}

fn value_strings(expr: &Expression) -> Vec<String> {
    match expr {
        Expression::Array(items) => items.iter().flat_map(value_strings).collect(),
        Expression::String(s) => vec![s.clone()],
        other => vec![text(other)],
    }
}

fn document_statement(body: &Body) -> Statement {
    let effect = attr(body, "effect").and_then(string_literal).unwrap_or("Allow");
    Statement {
        sid: attr(body, "sid").and_then(string_literal).map(str::to_owned),
        allows: effect == "Allow",
        actions: attr(body, "actions").map(value_strings).unwrap_or_default(),
        resources: attr(body, "resources")
            .or_else(|| attr(body, "not_resources"))
            .map(value_strings)
            .unwrap_or_default(),
        trust_policy: block(body, "principals").is_some() && attr(body, "resources").is_none(),
    }
}

fn object_key(key: &ObjectKey) -> String {
    match key {
        ObjectKey::Identifier(id) => id.as_str().to_owned(),
        ObjectKey::Expression(Expression::String(s)) => s.clone(),
        ObjectKey::Expression(other) => text(other),
        _ => String::new(),
    }
}

/// Statements inside `jsonencode({ Statement = [...] })`, wherever such a call appears.
fn json_policy_statements(expr: &Expression, out: &mut Vec<Statement>) {
    match expr {
        Expression::FuncCall(call) if call.name.name.as_str() == "jsonencode" => {
            let policies = call.args.iter().filter_map(|arg| match arg {
                Expression::Object(policy) => Some(policy),
                _ => None,
            });
            for policy in policies {
                let Some((_, Expression::Array(items))) = policy.iter().find(|(k, _)| object_key(k) == "Statement")
                else {
                    continue;
                };
                for s in items.iter().filter_map(|item| match item {
                    Expression::Object(s) => Some(s),
                    _ => None,
                }) {
                    let field = |name: &str| s.iter().find(|(k, _)| object_key(k) == name).map(|(_, v)| v);
                    out.push(Statement {
                        sid: field("Sid").and_then(string_literal).map(str::to_owned),
                        allows: field("Effect").and_then(string_literal) == Some("Allow"),
                        actions: field("Action").map(value_strings).unwrap_or_default(),
                        resources: field("Resource").map(value_strings).unwrap_or_default(),
                        trust_policy: field("Principal").is_some() && field("Resource").is_none(),
                    });
                }
            }
        }
        Expression::Object(object) => object.iter().for_each(|(_, v)| json_policy_statements(v, out)),
        Expression::Array(items) => items.iter().for_each(|v| json_policy_statements(v, out)),
        Expression::Conditional(c) => {
            json_policy_statements(&c.true_expr, out);
            json_policy_statements(&c.false_expr, out);
        }
        _ => {}
    }
}

/// The metrics the code emits for drift, quarantined rows, blocked runs, warehouse freshness and
/// verification each have an alarm on exactly the dimensions the code gives them (a dimension
/// mismatch would leave the alarm on a metric that never receives data), notifying a topic.
#[test]
fn emitted_health_metrics_have_alarms_on_their_own_dimensions() {
    use onyx_core::telemetry;
    let root = Module::load(".");
    let schema = telemetry::emf_documents(&telemetry::RunMetrics {
        stage: "extract",
        schema_changes: Some(1),
        ..Default::default()
    })[0]
        .clone();
    let blocked = telemetry::gauge_document("BlockedRuns", 1.0, "Count", &[], serde_json::json!({"Stage": "load"}));
    let freshness = telemetry::gauge_document(
        "WarehouseFreshnessSeconds",
        60.0,
        "Seconds",
        &[("Stage", "load")],
        serde_json::json!({}),
    );
    let verify = telemetry::gauge_document("VerifyDifferences", 0.0, "Count", &[], serde_json::json!({}));
    let quarantine = telemetry::emf_documents(&telemetry::RunMetrics {
        stage: "transform",
        quarantined_rows: Some(1),
        ..Default::default()
    })[0]
        .clone();
    for (metric, doc) in [
        ("SchemaChanges", schema),
        ("QuarantinedRows", quarantine),
        ("BlockedRuns", blocked),
        ("WarehouseFreshnessSeconds", freshness),
        ("VerifyDifferences", verify),
    ] {
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert!(directive["Metrics"].as_array().expect("metrics").iter().any(|m| m["Name"] == metric), "{doc}");
        let dimension_names: Vec<String> = directive["Dimensions"][0]
            .as_array()
            .expect("dimension set")
            .iter()
            .map(|d| d.as_str().expect("name").to_owned())
            .collect();
        let expected: BTreeMap<String, String> = dimension_names
            .iter()
            .map(|name| (name.clone(), doc[name].as_str().expect("dimension value").to_owned()))
            .collect();
        let alarms: Vec<_> = root
            .resources("aws_cloudwatch_metric_alarm")
            .filter(|(_, body)| attr(body, "metric_name").and_then(|e| root.string(e)).as_deref() == Some(metric))
            .collect();
        assert_eq!(alarms.len(), 1, "one alarm on {metric}");
        let (name, body) = alarms[0];
        assert_eq!(
            root.string(required(body, "namespace", name)).as_deref(),
            Some(onyx_core::telemetry::METRIC_NAMESPACE)
        );
        let actual: BTreeMap<String, String> = match attr(body, "dimensions") {
            Some(Expression::Object(dims)) => {
                dims.iter().map(|(k, v)| (object_key(k), root.string(v).unwrap_or_default())).collect()
            }
            None => BTreeMap::new(),
            Some(other) => panic!("{name} dimensions are {other}"),
        };
        assert_eq!(actual, expected, "{name} watches the dimensions {metric} is emitted with");
        let actions = array_texts(required(body, "alarm_actions", name));
        assert!(actions.iter().any(|a| a.starts_with("aws_sns_topic.")), "{name} notifies {actions:?}");
    }
}

/// The warehouse Terraform creates has a way in, and only the ones the stack and the variables
/// name (issue 13, item 3; issue 21). Read with `hcl-rs` from the `.tf` files: every ingress rule
/// on the warehouse's security group admits either the extract and load functions' group, the
/// bastion's group (`make tunnel`) or, through `for_each`, exactly the CIDR blocks / security
/// groups of `warehouse_allowed_cidr_blocks` / `warehouse_allowed_security_group_ids` (both
/// default empty); there is no literal CIDR; the instance is never publicly accessible (the
/// literal `false`, no variable); and the parameter group forces TLS (`rds.force_ssl = 1`)
/// whichever way the warehouse is reached.
#[test]
fn warehouse_ingress_comes_from_the_variables_and_tls_is_forced() {
    let root = Module::load(".");
    let mut admitted = BTreeSet::new();
    for (name, body) in root.resources("aws_vpc_security_group_ingress_rule") {
        if text(required(body, "security_group_id", name)) != "aws_security_group.warehouse[0].id" {
            continue;
        }
        assert_eq!(attr(body, "from_port").map(text).as_deref(), Some("5432"), "{name}");
        assert_eq!(attr(body, "to_port").map(text).as_deref(), Some("5432"), "{name}");
        let cidr = attr(body, "cidr_ipv4").map(text);
        let group = attr(body, "referenced_security_group_id").map(text);
        let for_each = attr(body, "for_each").map(text).unwrap_or_default();
        assert!(attr(body, "cidr_ipv6").is_none() && attr(body, "prefix_list_id").is_none(), "{name}");
        match (cidr.as_deref(), group.as_deref()) {
            (None, Some("aws_security_group.functions[0].id")) => {
                admitted.insert("functions".to_owned());
            }
            (None, Some("aws_security_group.bastion[0].id")) => {
                admitted.insert("bastion".to_owned());
            }
            (Some("each.value"), None) => {
                assert!(for_each.contains("var.warehouse_allowed_cidr_blocks"), "{name} for_each {for_each}");
                admitted.insert("var.warehouse_allowed_cidr_blocks".to_owned());
            }
            (None, Some("each.value")) => {
                assert!(for_each.contains("var.warehouse_allowed_security_group_ids"), "{name} for_each {for_each}");
                admitted.insert("var.warehouse_allowed_security_group_ids".to_owned());
            }
            other => panic!("{name} admits {other:?}: only the functions, the bastion and the allowed_* variables may"),
        }
    }
    let expected: BTreeSet<String> =
        ["functions", "bastion", "var.warehouse_allowed_cidr_blocks", "var.warehouse_allowed_security_group_ids"]
            .map(str::to_owned)
            .into();
    assert_eq!(admitted, expected);
    for variable in ["warehouse_allowed_cidr_blocks", "warehouse_allowed_security_group_ids"] {
        let default = root.variable_default(variable).map(text);
        assert_eq!(default.as_deref(), Some("[]"), "{variable} defaults to no access");
    }
    assert!(root.variable_default("warehouse_publicly_accessible").is_none(), "no variable makes the warehouse public");

    let instance = root.resource("aws_db_instance", "warehouse");
    assert_eq!(text(required(instance, "publicly_accessible", "warehouse")), "false");
    let parameters = root.resource("aws_db_parameter_group", "warehouse");
    let force_ssl = parameters
        .blocks()
        .filter(|b| b.identifier.as_str() == "parameter")
        .find(|b| attr(&b.body, "name").and_then(string_literal) == Some("rds.force_ssl"))
        .expect("the warehouse parameter group sets rds.force_ssl");
    assert_eq!(attr(&force_ssl.body, "value").and_then(string_literal), Some("1"));
}

/// The conditions of the `lifecycle { precondition { … } }` blocks of a body, as source text with
/// `local.x` references expanded one level (so a condition kept in a local is read too).
fn preconditions(root: &Module, body: &Body) -> Vec<String> {
    let locals = root.locals();
    block(body, "lifecycle")
        .into_iter()
        .flat_map(|lifecycle| lifecycle.blocks().filter(|b| b.identifier.as_str() == "precondition"))
        .map(|b| {
            let mut condition = text(required(&b.body, "condition", "precondition"));
            for (name, expr) in &locals {
                condition = condition.replace(&format!("local.{name}"), &format!("({})", text(expr)));
            }
            condition
        })
        .collect()
}

/// VPC endpoints (issue 13, item 4; issue 21), read with `hcl-rs` from the `.tf` files. S3 goes
/// through a gateway endpoint on the private route tables, guarded by a lifecycle precondition
/// that those route tables are given (a reused VPC names them); `reuse_s3_endpoint` (default
/// false) switches it off for a reused VPC whose route tables already have one. There is no
/// interface endpoint (Secrets Manager, CloudWatch, SQS and SSM go through the NAT), so nothing
/// needs the VPC's private DNS. A reused VPC is checked instead of changed: its subnets must be
/// in `vpc_id` (a postcondition) and in two Availability Zones (a precondition).
#[test]
fn vpc_endpoints_check_route_tables_and_can_be_reused() {
    let root = Module::load(".");
    let s3 = root.resource("aws_vpc_endpoint", "s3");
    assert_eq!(attr(s3, "vpc_endpoint_type").and_then(string_literal), Some("Gateway"));
    assert_eq!(attr(s3, "route_table_ids").map(text).as_deref(), Some("local.private_route_table_ids"));
    let conditions = preconditions(&root, s3);
    assert!(
        conditions
            .iter()
            .any(|c| c.contains("length(") && c.contains("var.private_route_table_ids") && c.contains("> 0")),
        "the S3 gateway endpoint has no precondition that route tables are given: {conditions:?}"
    );
    assert_eq!(root.variable_default("reuse_s3_endpoint").map(text).as_deref(), Some("false"));
    let count = text(root.resolve(required(s3, "count", "endpoint")));
    assert!(count.contains("!var.reuse_s3_endpoint"), "aws_vpc_endpoint.s3 count {count}");
    for (name, body) in root.resources("aws_vpc_endpoint") {
        assert_eq!(
            attr(body, "vpc_endpoint_type").and_then(string_literal),
            Some("Gateway"),
            "{name}: an interface endpoint"
        );
    }

    let subnets = root
        .blocks("data")
        .find(|b| label(b, 0) == "aws_subnet" && label(b, 1) == "private")
        .expect("data.aws_subnet.private checks the reused subnets");
    let postcondition = block(&subnets.body, "lifecycle")
        .and_then(|l| block(l, "postcondition"))
        .map(|p| text(required(p, "condition", "postcondition")))
        .unwrap_or_default();
    assert!(postcondition.contains("self.vpc_id") && postcondition.contains("var.vpc_id"), "{postcondition}");
    let conditions = preconditions(&root, root.resource("aws_security_group", "functions"));
    assert!(
        conditions.iter().any(|c| c.contains("distinct(") && c.contains("availability_zone") && c.contains(">= 2")),
        "no precondition that the reused subnets span two Availability Zones: {conditions:?}"
    );
}

/// Operational alarms (issue 13, item 8), read with `hcl-rs`: the Lambda module alarms on the
/// function's own `AsyncEventsDropped` and `DestinationDeliveryFailures` (dimension
/// `FunctionName`), and a created warehouse has `AWS/RDS` alarms on CPU, free storage and
/// connections, for that instance only (`DBInstanceIdentifier`), created with it
/// (`var.create_warehouse`), each saying what to do and notifying the alarm topic.
#[test]
fn async_delivery_and_warehouse_health_have_alarms() {
    let module = Module::load(LAMBDA_MODULE.trim_start_matches("./"));
    for metric in ["AsyncEventsDropped", "DestinationDeliveryFailures"] {
        let (name, body) = module
            .resources("aws_cloudwatch_metric_alarm")
            .find(|(_, body)| attr(body, "metric_name").and_then(|e| module.string(e)).as_deref() == Some(metric))
            .unwrap_or_else(|| panic!("the Lambda module has no alarm on {metric}"));
        assert_eq!(module.string(required(body, "namespace", name)).as_deref(), Some("AWS/Lambda"));
        let dimensions = text(required(body, "dimensions", name));
        assert!(dimensions.contains("FunctionName = aws_lambda_function.this.function_name"), "{name}: {dimensions}");
        assert_eq!(array_texts(required(body, "alarm_actions", name)), ["var.alarm_topic_arn"]);
    }

    let root = Module::load(".");
    let (_, alarm) = root
        .resources("aws_cloudwatch_metric_alarm")
        .find(|(name, _)| *name == "warehouse")
        .expect("aws_cloudwatch_metric_alarm.warehouse");
    assert!(text(required(alarm, "for_each", "warehouse")).contains("var.create_warehouse"));
    assert_eq!(root.string(required(alarm, "namespace", "warehouse")).as_deref(), Some("AWS/RDS"));
    let dimensions = text(required(alarm, "dimensions", "warehouse"));
    assert!(
        dimensions.contains("DBInstanceIdentifier = aws_db_instance.warehouse[0].identifier"),
        "warehouse alarms watch {dimensions}"
    );
    assert!(array_texts(required(alarm, "alarm_actions", "warehouse"))[0].starts_with("aws_sns_topic.alarms"));
    let Some(Expression::Object(alarms)) = root.locals().get("warehouse_alarms").copied() else {
        panic!("local.warehouse_alarms is not an object");
    };
    let mut metrics = BTreeSet::new();
    for (key, value) in alarms.iter() {
        let Expression::Object(fields) = value else { panic!("warehouse_alarms.{}", object_key(key)) };
        let field = |name: &str| fields.iter().find(|(k, _)| object_key(k) == name).map(|(_, v)| v);
        metrics.insert(field("metric").and_then(string_literal).expect("metric").to_owned());
        let description = field("description").map(text).unwrap_or_default();
        assert!(description.len() > 80, "warehouse_alarms.{} says what to do: {description}", object_key(key));
    }
    let expected: BTreeSet<String> =
        ["CPUUtilization", "FreeStorageSpace", "DatabaseConnections"].map(str::to_owned).into();
    assert_eq!(metrics, expected);
}

/// Issue #13 items 6 and 9 (mechanism: the root's function modules and the Lambda module's code
/// hashes). Every function's environment sets `ONYX_DB_CA_BUNDLE` to the bundle `make package`
/// puts next to `bootstrap` (`/var/task/global-bundle.pem`), and the module reads the zip's hashes
/// only when the zip exists, so `terraform destroy` and `plan` work from a fresh clone.
#[test]
fn every_function_gets_the_packaged_ca_bundle_and_plans_without_zips() {
    let root = Module::load(".");
    let common = root.locals().get("function_environment").map(|e| text(e)).expect("local.function_environment");
    assert!(common.contains("ONYX_DB_CA_BUNDLE") && common.contains("\"/var/task/global-bundle.pem\""), "{common}");
    for (name, body) in function_modules(&root) {
        let environment = text(required(body, "environment", name));
        assert!(
            environment.replace(' ', "").starts_with("merge(local.function_environment,"),
            "module.{name}'s environment must start from local.function_environment: {environment}"
        );
    }

    let module = Module::load("modules/lambda_function");
    let guarded = |kind: &str, name: &str, key: &str| {
        let value = text(required(module.resource(kind, name), key, name));
        assert!(
            value.replace(' ', "").starts_with("local.zip_present?"),
            "{kind}.{name}.{key} reads the zip unguarded: {value}"
        );
    };
    guarded("aws_s3_object", "code", "source_hash");
    guarded("aws_lambda_function", "this", "source_code_hash");
    let present = module.locals().get("zip_present").map(|e| text(e)).expect("local.zip_present");
    assert_eq!(present.replace(' ', ""), "fileexists(var.zip_path)");
}

/// Issue #13 items 7 and 9 (mechanism: the committed environment file, the Makefile and the deploy
/// workflow, read as text; the warehouse's re-create traps). The region has one source,
/// `terraform/env/<env>.tfvars`: make passes the file and reads the region from it, the deploy
/// workflow asks make for it and sets no region of its own. A re-created warehouse meets no
/// leftover name: the parameter group takes a prefix, the final snapshot a creation time.
#[test]
fn one_region_source_and_no_recreate_traps() {
    let repo = terraform_dir().join("..");
    let read = |path: &str| fs::read_to_string(repo.join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let env = hcl::parse(&read("terraform/env/prod.tfvars")).expect("env/prod.tfvars parses");
    let region = attr(&env, "region").and_then(string_literal).expect("env/prod.tfvars sets region");
    assert!(region.contains('-'), "{region}");
    let make = read("make/infra.mk");
    for target in ["plan", "apply", "destroy"] {
        let line = make.lines().find(|l| l.contains(&format!("$(INFRA_TF) {target} "))).expect(target);
        assert!(line.contains("-var-file=$(INFRA_VAR_FILE)"), "make's {target} must pass the environment file: {line}");
    }
    assert!(make.contains("INFRA_REGION       := $(call INFRA_TFVAR,region)"), "make reads the region from the file");

    let deploy = read(".github/workflows/deploy.yml");
    assert!(!deploy.contains("TF_VAR_region") && !deploy.contains("vars.AWS_REGION"), "a second region source");
    assert!(
        deploy.contains("make -s infra-region") && deploy.contains("aws-region: ${{ steps.region.outputs.region }}")
    );
    // Deploying after every CI job, with the packaged zips: lambda_zips_are_built_once_… below.

    let root = Module::load(".");
    let group = root.resource("aws_db_parameter_group", "warehouse");
    assert!(attr(group, "name").is_none() && attr(group, "name_prefix").is_some(), "parameter group: name_prefix");
    let instance = root.resource("aws_db_instance", "warehouse");
    let snapshot = text(required(instance, "final_snapshot_identifier", "warehouse"));
    assert!(snapshot.contains("timestamp()"), "a unique final snapshot name: {snapshot}");
    let lifecycle = block(instance, "lifecycle").expect("lifecycle");
    assert!(text(required(lifecycle, "ignore_changes", "lifecycle")).contains("final_snapshot_identifier"));
}

/// The anchors GitHub gives the headings of a Markdown file (lower case, spaces to `-`, other
/// punctuation dropped).
fn markdown_anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| {
            heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Issue #24 item 9 (mechanism: every `.tf` file under terraform/, roots and modules, read with
/// `hcl-rs`). What on-call reads first is the alarm e-mail, whose body is the alarm's description:
/// every alarm (the root module's, each function's, the warehouse's) names the first `onyx`
/// command to run and links its section of docs/runbook.md *absolutely* — a relative path is not
/// clickable in a mail — through `local.runbook_url` (`var.runbook_url` in the Lambda module,
/// which every instance sets to that local), built from `var.repository_url` and `var.docs_ref`;
/// the section must exist, the dashboard is linked too, and the description fits CloudWatch's
/// 1024 characters whatever the variables (their validations bound the interpolations).
#[test]
fn every_alarm_description_names_an_onyx_command_and_an_existing_runbook_section() {
    let runbook_path = terraform_dir().join("../docs/runbook.md");
    let runbook = fs::read_to_string(&runbook_path).unwrap_or_else(|e| panic!("{}: {e}", runbook_path.display()));
    let anchors = markdown_anchors(&runbook);
    let root = Module::load(".");
    let module = Module::load(LAMBDA_MODULE.trim_start_matches("./"));
    // (alarm, description as written, how it names the runbook URL, how it names the dashboard URL)
    let mut descriptions: Vec<(String, String, &str, &str)> = Vec::new();
    for (where_, module, runbook_url, dashboard_url) in [
        ("terraform/", &root, "${local.runbook_url}", "${local.dashboard_url}"),
        ("terraform/modules/lambda_function/", &module, "${var.runbook_url}", "${var.dashboard_url}"),
    ] {
        for (name, body) in module.resources("aws_cloudwatch_metric_alarm") {
            let description = text(required(body, "alarm_description", name));
            if description == "each.value.description" {
                continue; // the warehouse alarms: local.warehouse_alarms, below
            }
            descriptions.push((
                format!("{where_}aws_cloudwatch_metric_alarm.{name}"),
                description,
                runbook_url,
                dashboard_url,
            ));
        }
    }
    let Some(Expression::Object(warehouse_alarms)) = root.locals().get("warehouse_alarms").copied() else {
        panic!("local.warehouse_alarms is not an object");
    };
    for (key, value) in warehouse_alarms.iter() {
        let Expression::Object(fields) = value else { panic!("warehouse_alarms.{}", object_key(key)) };
        let description = fields.iter().find(|(k, _)| object_key(k) == "description").map(|(_, v)| text(v));
        descriptions.push((
            format!("local.warehouse_alarms.{}", object_key(key)),
            description.unwrap_or_default(),
            "${local.runbook_url}",
            "${local.dashboard_url}",
        ));
    }
    assert!(descriptions.len() >= 16, "every alarm found: {descriptions:?}");
    let mut problems = Vec::new();
    for (alarm, description, runbook_url, dashboard_url) in &descriptions {
        if !description.contains("First: `onyx ") {
            problems.push(format!("{alarm} names no first onyx command: {description}"));
        }
        match description.split_once(&format!("Runbook: {runbook_url}#")) {
            Some((_, link)) => {
                let anchor: String =
                    link.chars().take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_').collect();
                if !anchors.contains(&anchor) {
                    problems.push(format!("{alarm} links docs/runbook.md#{anchor}, which has no such heading"));
                }
            }
            None => problems.push(format!("{alarm} does not link `Runbook: {runbook_url}#<section>`: {description}")),
        }
        if description.replace(runbook_url, "").contains("runbook.md") {
            problems.push(format!("{alarm} links the runbook by a relative path: {description}"));
        }
        if !description.contains(&format!("Dashboard: {dashboard_url}")) {
            problems.push(format!("{alarm} does not link `Dashboard: {dashboard_url}`"));
        }
        let longest = longest_description(description);
        if longest > 1024 {
            problems.push(format!("{alarm}'s description can reach {longest} characters (CloudWatch's limit: 1024)"));
        }
    }
    assert!(problems.is_empty(), "alarm descriptions:\n  {}", problems.join("\n  "));

    // The URLs: absolute, from the repository URL and the documentation's ref; the module's
    // variables are given exactly those.
    let locals = root.locals();
    let runbook_url = locals.get("runbook_url").and_then(|e| root.template(e));
    assert_eq!(
        runbook_url.as_deref(),
        Some("${var.repository_url}/blob/${var.docs_ref}/docs/runbook.md"),
        "local.runbook_url"
    );
    let repository = root.variable_default("repository_url").and_then(string_literal).expect("var.repository_url");
    assert!(repository.starts_with("https://") && !repository.ends_with('/'), "repository_url default {repository}");
    let docs_ref = root.variable_default("docs_ref").and_then(string_literal).expect("var.docs_ref");
    assert!(!docs_ref.is_empty());
    let dashboard_url = locals.get("dashboard_url").and_then(|e| root.template(e)).expect("local.dashboard_url");
    assert!(
        dashboard_url.starts_with(
            "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards"
        ) && dashboard_url.ends_with("${local.dashboard_name}"),
        "local.dashboard_url: {dashboard_url}"
    );
    let dashboard = root.resource("aws_cloudwatch_dashboard", "onyx");
    assert_eq!(text(required(dashboard, "dashboard_name", "the dashboard")), "local.dashboard_name");
    let output = root.blocks("output").find(|b| label(b, 0) == "dashboard_url").expect("output dashboard_url");
    assert_eq!(text(required(&output.body, "value", "output dashboard_url")), "local.dashboard_url");
    for (name, body) in function_modules(&root) {
        for (variable, local) in [("runbook_url", "local.runbook_url"), ("dashboard_url", "local.dashboard_url")] {
            let given = attr(body, variable).map(text);
            assert_eq!(given.as_deref(), Some(local), "module.{name} sets {variable}");
        }
    }
}

/// The most characters a description (HCL source text) can expand to: each interpolation at the
/// longest its variables' validations allow (URLs of the repository and the dashboard; names,
/// numbers and the schedule at most 64).
fn longest_description(source: &str) -> usize {
    let source = source.trim_matches('"').replace("\\\"", "\"");
    let mut length = 0;
    let mut rest = source.as_str();
    while let Some(start) = rest.find("${") {
        length += rest[..start].chars().count();
        let end = rest[start..].find('}').map(|e| start + e + 1).unwrap_or(rest.len());
        let interpolation = &rest[start..end];
        length += if interpolation.contains("runbook_url") {
            // repository_url (at most 150) + "/blob/" + docs_ref (at most 64) + "/docs/runbook.md"
            150 + 6 + 64 + 16
        } else if interpolation.contains("dashboard_url") {
            // https://<region>.console.aws.amazon.com/cloudwatch/home?region=<region>#dashboards/dashboard/<prefix>
            140
        } else {
            64
        };
        rest = &rest[end..];
    }
    length + rest.chars().count()
}

/// Every `resource "aws_cloudwatch_metric_alarm"` under terraform/ (both roots and every module)
/// as (file under terraform/, name, body).
fn every_alarm() -> Vec<(String, String, Body)> {
    let mut files = Vec::new();
    collect_tf_files(&terraform_dir(), &mut files);
    let mut alarms = Vec::new();
    for path in files {
        let relative =
            path.strip_prefix(terraform_dir()).expect("under terraform/").to_string_lossy().replace('\\', "/");
        let source = fs::read_to_string(&path).expect("readable .tf file");
        let body = hcl::parse(&source).unwrap_or_else(|e| panic!("parsing {relative}: {e}"));
        for block in body.into_blocks() {
            if block.identifier.as_str() == "resource" && label(&block, 0) == "aws_cloudwatch_metric_alarm" {
                alarms.push((relative.clone(), label(&block, 1).to_owned(), block.body));
            }
        }
    }
    alarms
}

/// Issue #24 item 9 (mechanism: every alarm resource under terraform/, read with `hcl-rs`): every
/// alarm notifies when it fires *and* when it clears (`ok_actions`), to the same topics, so a
/// mail that says something broke is always followed by one that says it is fixed.
#[test]
fn every_alarm_notifies_when_it_fires_and_when_it_clears() {
    let alarms = every_alarm();
    assert!(alarms.len() >= 14, "found only {} alarms", alarms.len());
    let mut problems = Vec::new();
    for (file, name, body) in &alarms {
        let actions = |key: &str| attr(body, key).map(array_texts).unwrap_or_default();
        let (on_alarm, on_ok) = (actions("alarm_actions"), actions("ok_actions"));
        if on_alarm.is_empty() {
            problems.push(format!("{file}: aws_cloudwatch_metric_alarm.{name} has no alarm_actions"));
        }
        if on_ok.is_empty() {
            problems.push(format!("{file}: aws_cloudwatch_metric_alarm.{name} has no ok_actions"));
        } else if on_ok != on_alarm {
            problems
                .push(format!("{file}: aws_cloudwatch_metric_alarm.{name} clears to {on_ok:?}, fires to {on_alarm:?}"));
        }
    }
    assert!(problems.is_empty(), "alarm actions:\n  {}", problems.join("\n  "));
}

/// The root alarms about the data's content rather than the pipeline's health: a changed source
/// schema, a restored or rewound source, rows that differ from the source, quarantined rows.
const DATA_QUALITY_ALARMS: [&str; 4] =
    ["schema_changes", "source_discontinuity", "verify_differences", "quarantined_rows"];

/// Issue #24 item 9 (mechanism: terraform/alerting.tf, main.tf and the Lambda module, read with
/// `hcl-rs`). Two KMS-encrypted topics: outages (`aws_sns_topic.alarms`, every function alarm,
/// the RDS alarms and the pipeline's stalls) and data quality (`aws_sns_topic.data_quality`, the
/// alarms of `DATA_QUALITY_ALARMS`, one of them on the transform's `QuarantinedRows`), each with
/// e-mail subscriptions (the data-quality list falls back to the outage list) and the optional
/// HTTPS endpoints (`alarm_https_endpoints`, none by default) on both; both topic ARNs are outputs.
#[test]
fn data_quality_alarms_notify_their_own_topic_and_outages_the_alarm_topic() {
    let root = Module::load(".");
    let mut problems = Vec::new();
    let declared: BTreeSet<&str> = root.resources("aws_cloudwatch_metric_alarm").map(|(name, _)| name).collect();
    for name in DATA_QUALITY_ALARMS {
        if !declared.contains(name) {
            problems.push(format!("no aws_cloudwatch_metric_alarm.{name}"));
        }
    }
    for (name, body) in root.resources("aws_cloudwatch_metric_alarm") {
        let topic = if DATA_QUALITY_ALARMS.contains(&name) { "data_quality" } else { "alarms" };
        let expected = vec![format!("aws_sns_topic.{topic}.arn")];
        for key in ["alarm_actions", "ok_actions"] {
            let actions = attr(body, key).map(array_texts).unwrap_or_default();
            if actions != expected {
                problems.push(format!("aws_cloudwatch_metric_alarm.{name}.{key} is {actions:?}, not {expected:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "alarm routing:\n  {}", problems.join("\n  "));

    let quarantine = root
        .resources("aws_cloudwatch_metric_alarm")
        .filter(|(name, _)| DATA_QUALITY_ALARMS.contains(name))
        .find(|(_, body)| attr(body, "metric_name").and_then(|e| root.string(e)).as_deref() == Some("QuarantinedRows"));
    assert!(quarantine.is_some(), "no data-quality alarm watches QuarantinedRows");

    // The function alarms are outages: the module's alarms notify var.alarm_topic_arn, given the
    // outage topic.
    let module = Module::load(LAMBDA_MODULE.trim_start_matches("./"));
    for (name, body) in module.resources("aws_cloudwatch_metric_alarm") {
        assert_eq!(array_texts(required(body, "alarm_actions", name)), ["var.alarm_topic_arn"], "{name}");
    }
    for (name, body) in function_modules(&root) {
        assert_eq!(text(required(body, "alarm_topic_arn", name)), "aws_sns_topic.alarms.arn", "module.{name}");
    }

    // Both topics encrypted with the stack's key (its policy lets CloudWatch use it: kms.tf).
    for topic in ["alarms", "data_quality"] {
        let body = root.resource("aws_sns_topic", topic);
        assert_eq!(attr(body, "kms_master_key_id").map(text).as_deref(), Some("aws_kms_key.onyx.arn"), "{topic}");
    }
    let data_quality_name = root.template(required(root.resource("aws_sns_topic", "data_quality"), "name", "topic"));
    assert_eq!(data_quality_name.as_deref(), Some("${var.name_prefix}-data-quality"));

    // Subscriptions: e-mail to each topic, HTTPS endpoints to both.
    let subscriptions: Vec<(&str, &Body)> = root.resources("aws_sns_topic_subscription").collect();
    let email_to = |topic: &str| {
        subscriptions
            .iter()
            .filter(|(_, b)| attr(b, "protocol").and_then(string_literal) == Some("email"))
            .find(|(_, b)| attr(b, "topic_arn").map(text) == Some(format!("aws_sns_topic.{topic}.arn")))
            .map(|(_, b)| text(root.resolve(required(b, "for_each", "email subscription"))))
            .unwrap_or_else(|| panic!("no e-mail subscription to aws_sns_topic.{topic}"))
    };
    assert!(email_to("alarms").contains("var.alarm_emails"));
    let quality_emails = email_to("data_quality");
    assert!(
        quality_emails.contains("var.data_quality_emails") && quality_emails.contains("var.alarm_emails"),
        "the data-quality e-mails fall back to alarm_emails: {quality_emails}"
    );
    assert_eq!(root.variable_default("data_quality_emails").map(text).as_deref(), Some("[]"));
    let https: Vec<&(&str, &Body)> =
        subscriptions.iter().filter(|(_, b)| attr(b, "protocol").and_then(string_literal) == Some("https")).collect();
    assert_eq!(https.len(), 1, "one HTTPS subscription resource");
    let (name, body) = https[0];
    let for_each = text(required(body, "for_each", name));
    assert!(for_each.contains("var.alarm_https_endpoints"), "{name} for_each {for_each}");
    let topics = text(root.resolve(required(body, "topic_arn", name)));
    let topics = topics
        .strip_prefix("local.")
        .and_then(|rest| rest.split('[').next())
        .and_then(|local| root.locals().get(local).map(|e| text(e)))
        .unwrap_or(topics);
    for topic in ["aws_sns_topic.alarms.arn", "aws_sns_topic.data_quality.arn"] {
        assert!(topics.contains(topic) && for_each.contains("local.alarm_topics"), "{name} reaches {topics}");
    }
    assert_eq!(root.variable_default("alarm_https_endpoints").map(text).as_deref(), Some("[]"));
    for output in ["alarm_topic_arn", "data_quality_topic_arn"] {
        assert!(root.blocks("output").any(|b| label(b, 0) == output), "no output {output}");
    }
}

/// A field of an HCL object literal.
fn field<'a>(object: &'a hcl::Object<ObjectKey, Expression>, key: &str) -> Option<&'a Expression> {
    object.iter().find(|(k, _)| object_key(k) == key).map(|(_, v)| v)
}

/// Every object literal inside an expression, outermost first: through arrays, function
/// arguments, `for` bodies, conditionals and `local.x` references.
fn objects_in<'a>(module: &'a Module, expr: &'a Expression, out: &mut Vec<&'a hcl::Object<ObjectKey, Expression>>) {
    match module.resolve(expr) {
        Expression::Object(object) => {
            out.push(object);
            object.iter().for_each(|(_, value)| objects_in(module, value, out));
        }
        Expression::Array(items) => items.iter().for_each(|item| objects_in(module, item, out)),
        Expression::FuncCall(call) => call.args.iter().for_each(|arg| objects_in(module, arg, out)),
        Expression::ForExpr(for_expr) => objects_in(module, &for_expr.value_expr, out),
        Expression::Conditional(c) => {
            objects_in(module, &c.true_expr, out);
            objects_in(module, &c.false_expr, out);
        }
        Expression::Parenthesis(inner) => objects_in(module, inner, out),
        _ => {}
    }
}

/// The dashboard's widgets of one type (`"alarm"`, `"metric"`, `"log"`), as their `properties`.
fn dashboard_widgets<'a>(root: &'a Module, kind: &str) -> Vec<&'a hcl::Object<ObjectKey, Expression>> {
    let dashboard = root.resource("aws_cloudwatch_dashboard", "onyx");
    let mut objects = Vec::new();
    objects_in(root, required(dashboard, "dashboard_body", "the dashboard"), &mut objects);
    objects
        .into_iter()
        .filter(|o| field(o, "type").and_then(string_literal) == Some(kind))
        .filter_map(|o| match field(o, "properties").map(|p| root.resolve(p)) {
            Some(Expression::Object(properties)) => Some(properties),
            _ => None,
        })
        .collect()
}

/// Issue #24 item 9 (mechanism: terraform/dashboard.tf and the Lambda module's outputs, read with
/// `hcl-rs`). The dashboard's alarm widget shows every alarm: each root alarm resource by address
/// (the warehouse's too, when created) and each function's through its module's `alarm_arns`
/// output, which lists every alarm the module declares.
#[test]
fn the_dashboard_alarm_widget_lists_every_alarm() {
    let root = Module::load(".");
    let widgets = dashboard_widgets(&root, "alarm");
    assert_eq!(widgets.len(), 1, "one alarm widget on the dashboard");
    let listed = text(root.resolve(field(widgets[0], "alarms").expect("the alarm widget's alarms")));
    let mut missing = Vec::new();
    for (name, _) in root.resources("aws_cloudwatch_metric_alarm") {
        if !listed.contains(&format!("aws_cloudwatch_metric_alarm.{name}")) {
            missing.push(format!("aws_cloudwatch_metric_alarm.{name}"));
        }
    }
    // Function alarms: module.<name>.alarm_arns, directly or through local.stage_functions (one
    // entry per stage of local.stages).
    let (stages, stage_modules): (BTreeSet<String>, BTreeSet<String>) =
        match root.locals().get("stage_functions").copied() {
            Some(Expression::Object(entries)) => {
                (entries.iter().map(|(k, _)| object_key(k)).collect(), entries.iter().map(|(_, v)| text(v)).collect())
            }
            _ => Default::default(),
        };
    let listed_stages: BTreeSet<String> =
        root.locals().get("stages").map(|e| expand(&root, e)).unwrap_or_default().into_iter().collect();
    for (name, _) in function_modules(&root) {
        let direct = listed.contains(&format!("module.{name}.alarm_arns"));
        let through_local = listed.contains("local.stage_functions")
            && listed.contains(".alarm_arns")
            && stages == listed_stages
            && stage_modules.contains(&format!("module.{name}"));
        if !(direct || through_local) {
            missing.push(format!("module.{name}.alarm_arns"));
        }
    }
    let module = Module::load(LAMBDA_MODULE.trim_start_matches("./"));
    let output = module.blocks("output").find(|b| label(b, 0) == "alarm_arns").expect("the module's output alarm_arns");
    let outputs = text(required(&output.body, "value", "alarm_arns"));
    for (name, _) in module.resources("aws_cloudwatch_metric_alarm") {
        if !outputs.contains(&format!("aws_cloudwatch_metric_alarm.{name}.arn")) {
            missing.push(format!("{LAMBDA_MODULE}: output alarm_arns lacks aws_cloudwatch_metric_alarm.{name}"));
        }
    }
    assert!(missing.is_empty(), "the dashboard's alarm widget misses:\n  {}", missing.join("\n  "));
}

/// Issue #24 item 9 (mechanism: terraform/dashboard.tf read with `hcl-rs`): the dashboard graphs
/// what the run-blocked and warehouse-stale alarms watch — `BlockedRuns` (no dimensions) and
/// `WarehouseFreshnessSeconds` (`Stage = load`) in namespace Onyx.
#[test]
fn the_dashboard_graphs_blocked_runs_and_warehouse_freshness() {
    let root = Module::load(".");
    let graphs: Vec<String> = dashboard_widgets(&root, "metric")
        .into_iter()
        .filter_map(|properties| field(properties, "metrics").map(text))
        .map(|metrics| metrics.split_whitespace().collect())
        .collect();
    for wanted in [r#"["Onyx","BlockedRuns","#, r#"["Onyx","WarehouseFreshnessSeconds","Stage","load","#] {
        assert!(graphs.iter().any(|g| g.contains(wanted)), "no dashboard graph of {wanted}: {graphs:#?}");
    }
}

/// Issue #24 item 9 (mechanism: terraform/dashboard.tf read with `hcl-rs`; the functions' log
/// line written by `telemetry::lambda_subscriber`). A Logs Insights widget lists the recent ERROR
/// lines of the three functions' log groups, newest first, filtering on the field the functions
/// write (`level`) and showing those they write with it (`message`, `run_id`).
#[test]
fn the_dashboard_shows_recent_error_lines_of_every_function() {
    let lines = crate::support::lambda_lines(|| {
        tracing::error!(stage = "load", run_id = "20261128T064012123-00af", "load failed");
    });
    let line = lines.join("\n");
    let line: serde_json::Value = serde_json::from_str(line.trim()).expect("a JSON log line");
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["message"], "load failed", "{line}");
    assert_eq!(line["run_id"], "20261128T064012123-00af", "{line}");

    let root = Module::load(".");
    let widgets = dashboard_widgets(&root, "log");
    assert!(!widgets.is_empty(), "the dashboard has no Logs Insights (\"log\") widget");
    let queries: Vec<String> = widgets
        .iter()
        .map(|w| field(w, "query").and_then(|q| root.template(q)).expect("the log widget's query"))
        .collect();
    let query = queries
        .iter()
        .find(|q| q.replace(['\\', ' '], "").contains(r#"filterlevel="ERROR""#))
        .unwrap_or_else(|| panic!("no log widget filters level = \"ERROR\": {queries:?}"));
    for (name, _) in function_modules(&root) {
        assert!(
            query.contains(&format!("SOURCE '${{module.{name}.log_group_name}}'")),
            "not over module.{name}: {query}"
        );
    }
    let compact = query.replace(' ', "");
    for part in ["fields@timestamp", "message", "run_id", "sort@timestampdesc", "|limit"] {
        assert!(compact.contains(part), "the query lacks {part}: {query}");
    }
}

/// Issue #24 item 9 (mechanism: terraform/alerting.tf and triggers.tf read with `hcl-rs`).
/// `BlockedRuns` is emitted by every load invocation and by the load's periodic check — a rule on
/// the extract's schedule with the input `{"onyx": "check"}` — as the number of runs that stay
/// blocked (1 also at the moment a run fails for good), with no dimensions. The alarm takes the maximum over one schedule
/// period, and a period without data keeps its state (`ignore`): a blocked pipeline that stops
/// being invoked stays in ALARM, instead of going quiet (`notBreaching`) or to INSUFFICIENT_DATA
/// (`missing`); a 0 clears it and mails the OK.
#[test]
fn the_blocked_runs_alarm_keeps_its_state_between_reports() {
    let root = Module::load(".");
    let alarms: Vec<_> = root
        .resources("aws_cloudwatch_metric_alarm")
        .filter(|(_, body)| attr(body, "metric_name").and_then(|e| root.string(e)).as_deref() == Some("BlockedRuns"))
        .collect();
    assert_eq!(alarms.len(), 1, "one alarm on BlockedRuns");
    let (name, body) = alarms[0];
    let field = |key: &str| text(required(body, key, name));
    assert_eq!(field("treat_missing_data"), r#""ignore""#, "{name}: a period without a report keeps the state");
    assert_eq!(field("period"), "local.schedule_minutes * 60", "{name}: one schedule period");
    assert_eq!(field("statistic"), r#""Maximum""#);
    assert_eq!(field("evaluation_periods"), "1");
    assert_eq!(field("threshold"), "0");
    assert_eq!(field("comparison_operator"), r#""GreaterThanThreshold""#);
    assert!(attr(body, "dimensions").is_none(), "{name}: BlockedRuns has no dimensions");
    assert!(attr(body, "ok_actions").is_some(), "{name}: a cleared block mails the OK");

    // The periodic check: reported on the extract's schedule even when no run arrives.
    let check = root
        .resources("aws_cloudwatch_event_target")
        .find(|(_, body)| attr(body, "input").is_some_and(|e| text(e).contains("\"check\"")))
        .map(|(_, body)| body)
        .expect("no schedule invokes the load function's check ({\"onyx\": \"check\"}): BlockedRuns goes quiet while blocked");
    assert_eq!(text(required(check, "arn", "check target")), "module.load.function_arn");
    let rule = text(required(check, "rule", "check target"));
    let rule = rule.trim_start_matches("aws_cloudwatch_event_rule.").trim_end_matches(".name");
    let rule = root.resource("aws_cloudwatch_event_rule", rule);
    assert_eq!(text(required(rule, "schedule_expression", "check rule")), "var.schedule_expression");
    assert!(
        root.resources("aws_lambda_permission").any(|(_, body)| {
            attr(body, "source_arn").is_some_and(|e| text(e).contains("check_schedule"))
                && text(required(body, "function_name", "permission")) == "module.load.function_name"
        }),
        "the check rule may not invoke the load function"
    );
}

/// Issue #24 item 9 (mechanism: the error-log-lines metric filter's pattern and the
/// `data_quality` field of ERROR lines about the data). A quarantine paged the outage channel
/// through every function's error-log-lines alarm; it pages the data-quality topic (its own
/// alarms) and the outage alarm counts the other ERROR lines.
#[test]
fn data_quality_error_lines_do_not_page_the_outage_channel() {
    let module = Module::load("modules/lambda_function");
    let pattern = module.string(module.locals()["error_log_pattern"]).expect("error_log_pattern");
    assert_eq!(pattern, r#"{ $.level = "ERROR" && $.data_quality NOT EXISTS }"#);
    let alarm = module.resource("aws_cloudwatch_metric_alarm", "error_log_lines");
    assert_eq!(array_texts(required(alarm, "alarm_actions", "error_log_lines")), ["var.alarm_topic_arn"]);
}

/// The stack outputs `onyx logs`, `onyx status --stack` and `onyx dlq` read
/// (`onyx_core::stack::OUTPUTS_READ`) are declared in terraform/outputs.tf, the per-stage ones
/// with a key for every stage.
#[test]
fn the_outputs_the_cli_reads_are_declared_by_terraform() {
    let root = Module::load(".");
    for (output, per_stage) in onyx_core::stack::OUTPUTS_READ {
        let body = root
            .blocks("output")
            .find(|b| label(b, 0) == output)
            .map(|b| &b.body)
            .unwrap_or_else(|| panic!("terraform/outputs.tf has no output {output:?}, which the CLI reads"));
        let value = required(body, "value", output);
        if per_stage {
            let Expression::Object(map) = value else { panic!("output {output} is not a per-stage map") };
            let keys: Vec<String> = map.iter().map(|(k, _)| object_key(k)).collect();
            assert_eq!(keys, onyx_core::stack::STAGES, "output {output} has a key per stage");
        }
    }
}

/// Issue #16: the lake's Glue tables come from the committed `generated/lake_tables.json` (which
/// `tests/lake.rs` keeps equal to `onyx lake-schema`), so no column is listed in Terraform; their
/// partition projection reads the day segment `keys::processed_part` writes; the Athena workgroup
/// enforces encrypted results in a bucket of their own that expires them and a bytes-scanned
/// limit; the views are the files of `lake/views`; and `create_lake` (on by default) switches
/// every lake resource.
#[test]
fn the_lake_tables_views_and_workgroup_follow_the_code_and_one_variable_switches_them() {
    use onyx_core::lake;
    let root = Module::load(".");
    assert_eq!(root.variable_default("create_lake").map(text).as_deref(), Some("true"), "the lake is on by default");
    let locals = root.locals();
    let source = locals.get("lake").map(|e| text(e)).unwrap_or_default();
    assert!(
        source.contains("jsondecode(") && source.contains("generated/lake_tables.json"),
        "local.lake decodes generated/lake_tables.json, not a list written in Terraform: {source}"
    );

    // Every lake resource exists only with create_lake.
    let lake_resources = [
        ("aws_glue_catalog_database", "lake"),
        ("aws_glue_catalog_table", "lake"),
        ("aws_athena_workgroup", "lake"),
        ("aws_athena_named_query", "lake_view"),
        ("aws_iam_role", "lake_analyst"),
        ("aws_iam_role_policy", "lake_analyst"),
    ];
    for (kind, name) in lake_resources {
        let body = root.resource(kind, name);
        let gate = attr(body, "count").or_else(|| attr(body, "for_each")).map(|e| text(root.resolve(e)));
        let gate = gate.unwrap_or_else(|| panic!("{kind}.{name} has neither count nor for_each"));
        assert!(gate.contains("var.create_lake"), "{kind}.{name} is not switched by var.create_lake: {gate}");
    }
    let results = root
        .blocks("module")
        .find(|b| label(b, 0) == "athena_results_bucket")
        .map(|b| &b.body)
        .expect("module athena_results_bucket");
    assert!(attr(results, "count").map(text).unwrap_or_default().contains("var.create_lake"));
    assert_eq!(
        attr(results, "current_version_expiration_days").map(text).as_deref(),
        Some("var.athena_results_expiration_days"),
        "query results expire"
    );

    // Tables: one per star table, columns from the JSON, partitions projected on the key's day.
    let table = root.resource("aws_glue_catalog_table", "lake");
    assert_eq!(text(required(table, "for_each", "glue table")), "local.lake_tables");
    let storage = block(table, "storage_descriptor").expect("storage_descriptor");
    assert!(block(storage, "columns").is_none(), "no column is written in Terraform");
    let columns = storage.blocks().find(|b| b.identifier.as_str() == "dynamic" && label(b, 0) == "columns");
    let columns = columns.expect("columns come from a dynamic block over the generated JSON");
    assert_eq!(text(required(&columns.body, "for_each", "dynamic columns")), "each.value.columns");
    let parameters = text(required(table, "parameters", "glue table"));
    for expected in [
        "\"projection.enabled\" = \"true\"",
        "local.lake.partition_format",
        "${local.lake.partition_first_day},NOW",
        "\"storage.location.template\" = \"s3://${module.processed_bucket.id}/${each.value.prefix}${local.lake_partition_placeholder}/\"",
    ] {
        assert!(parameters.contains(expected), "glue table parameters lack {expected}: {parameters}");
    }
    let schema = lake::schema();
    let run = "20261128T064012123-00af";
    let java_to_chrono = lake::PARTITION_FORMAT.replace("yyyy", "%Y").replace("MM", "%m").replace("dd", "%d");
    let day = onyx_core::keys::run_time(run).expect("run time").format(&java_to_chrono).to_string();
    for table in &schema.tables {
        let key = onyx_core::keys::processed_part(table.warehouse_table, run, 0);
        assert!(
            key.starts_with(&format!("{}{day}/", table.prefix)),
            "{}: the projection template {}<{}> does not match the key {key}",
            table.name,
            table.prefix,
            lake::PARTITION_FORMAT
        );
    }

    // The workgroup enforces its configuration: encrypted results in their own bucket, a limit.
    let workgroup = root.resource("aws_athena_workgroup", "lake");
    let configuration = block(workgroup, "configuration").expect("workgroup configuration");
    assert_eq!(attr(configuration, "enforce_workgroup_configuration").map(text).as_deref(), Some("true"));
    assert_eq!(
        attr(configuration, "bytes_scanned_cutoff_per_query").map(text).as_deref(),
        Some("var.athena_bytes_scanned_cutoff_per_query")
    );
    let result = block(configuration, "result_configuration").expect("result_configuration");
    assert!(text(required(result, "output_location", "results")).contains("module.athena_results_bucket[0].id"));
    let encryption = block(result, "encryption_configuration").expect("results are encrypted");
    assert_eq!(attr(encryption, "encryption_option").and_then(string_literal), Some("SSE_KMS"));
    assert_eq!(attr(encryption, "kms_key_arn").map(text).as_deref(), Some("aws_kms_key.onyx.arn"));

    // The views are the repository's files, one named query each.
    let views = root.resource("aws_athena_named_query", "lake_view");
    assert_eq!(text(required(views, "for_each", "named queries")), "local.lake_views");
    assert!(text(root.resolve(locals["lake_views"])).contains("/../lake/views"));
    assert!(text(required(views, "query", "named query")).contains("/../lake/views/${each.value}"));
    let view_files = fs::read_dir(terraform_dir().join("../lake/views")).expect("lake/views").count();
    assert!(view_files >= 16, "lake/views holds {view_files} files");
}

// ---------------------------------------------------------------------------------------------
// Release pipeline trust (issue #13 item 7): the workflows, read as indented text (no YAML
// parser: these helpers read the few keys the tests need, in the layout the files are written
// in), and terraform/bootstrap's GitHub roles, read with hcl-rs.
// ---------------------------------------------------------------------------------------------

fn repo_file(path: &str) -> String {
    let full = terraform_dir().join("..").join(path);
    fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

fn workflows() -> Vec<(String, String)> {
    let dir = terraform_dir().join("../.github/workflows");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "found only {files:?}");
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            (name, fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
        })
        .collect()
}

/// The jobs of a workflow: each job id (two-space key under `jobs:`) with the lines below it.
fn workflow_jobs(workflow: &str) -> BTreeMap<String, String> {
    let body = workflow.split("\njobs:\n").nth(1).expect("the workflow has jobs");
    let mut jobs = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in body.lines() {
        let id = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')).filter(|l| !l.starts_with([' ', '#']));
        if let Some(id) = id {
            jobs.extend(current.take());
            current = Some((id.to_owned(), String::new()));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push_str(line);
            lines.push('\n');
        }
    }
    jobs.extend(current);
    jobs
}

/// A job's top-level `key: value` (the value without a trailing comment).
fn job_value(job: &str, key: &str) -> Option<String> {
    job.lines().find_map(|l| {
        let value = l.strip_prefix("    ")?.strip_prefix(key)?.strip_prefix(':')?;
        Some(value.split(" #").next().unwrap_or("").trim().to_owned())
    })
}

/// The `name: value` lines of a job's top-level block (`permissions:`, `outputs:`, `with:`, ...).
fn job_block(job: &str, key: &str) -> BTreeMap<String, String> {
    let mut lines = job.lines().skip_while(|l| l.trim_end() != format!("    {key}:")).skip(1);
    let mut entries = BTreeMap::new();
    for line in lines.by_ref() {
        let Some(entry) = line.strip_prefix("      ").filter(|l| !l.starts_with(' ')) else { break };
        if let Some((name, value)) = entry.split_once(':') {
            entries.insert(name.trim().to_owned(), value.split(" #").next().unwrap_or("").trim().to_owned());
        }
    }
    entries
}

fn job_needs(job: &str) -> BTreeSet<String> {
    let needs = job_value(job, "needs").unwrap_or_default();
    needs.trim_matches(['[', ']']).split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect()
}

fn write_permissions(permissions: &BTreeMap<String, String>) -> BTreeSet<String> {
    permissions.iter().filter(|(_, v)| v.as_str() == "write").map(|(k, _)| k.clone()).collect()
}

/// The scripts of every `run:` in a workflow or job text (one line, or the `|` block below it).
fn run_scripts(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut scripts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        let Some(value) = trimmed.strip_prefix("run:") else { continue };
        let value = value.trim();
        if value != "|" && value != ">" {
            scripts.push(value.to_owned());
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .copied()
            .collect();
        scripts.push(block.join("\n"));
    }
    scripts
}

/// The steps of a job: each `- ` item under `steps:`, as its text.
fn job_steps(job: &str) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    for line in job.lines().skip_while(|l| l.trim_end() != "    steps:").skip(1) {
        if line.starts_with("      - ") {
            steps.push(String::new());
        }
        if let Some(step) = steps.last_mut() {
            step.push_str(line);
            step.push('\n');
        }
    }
    steps
}

fn is_commit_pin(uses: &str) -> bool {
    uses.split_once('@').is_some_and(|(_, pin)| {
        let sha = pin.split_whitespace().next().unwrap_or("");
        sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit())
    })
}

const PULL_REQUEST_ONLY: &str = "github.event_name == 'pull_request'";
const LAMBDA_ZIPS: [&str; 3] = [
    "target/lambda/onyx-extract/bootstrap.zip",
    "target/lambda/onyx-transform/bootstrap.zip",
    "target/lambda/onyx-load/bootstrap.zip",
];

/// Issue #13 item 7 (mechanism: ci.yml, deploy.yml and make/infra.mk, read as text). The Lambda
/// zips are built once, by CI's `package` job (every run, no cache), which uploads them with their
/// SHA-256 (actions pinned by commit) and passes the SHA-256 on as a job output; the deploy job
/// needs that job and every other CI job of the same push (all but the pull-request-only plan),
/// downloads the artefact, checks it against that output before `make deploy`, and builds nothing.
#[test]
fn lambda_zips_are_built_once_and_deployed_unbuilt_after_every_ci_job() {
    let ci = repo_file(".github/workflows/ci.yml");
    let jobs = workflow_jobs(&ci);
    let package = jobs.get("package").expect("ci.yml has a package job");
    assert_eq!(job_value(package, "if"), None, "the package job runs on every CI run (push and pull request)");
    assert!(run_scripts(package).iter().any(|r| r == "make package"), "the package job runs make package");
    assert!(!package.contains("rust-cache") && !package.contains("actions/cache"), "the deployed build uses no cache");
    assert_eq!(
        job_block(package, "outputs").get("sha256sums").map(String::as_str),
        Some("${{ steps.sums.outputs.sha256sums }}"),
        "the package job passes the zips' SHA-256 on as a job output"
    );
    let steps = job_steps(package);
    let sums = steps.iter().find(|s| s.contains("id: sums")).expect("the step recording the SHA-256");
    assert!(sums.contains("target/lambda/SHA256SUMS") && sums.contains("$GITHUB_OUTPUT"), "{sums}");
    let upload = steps.iter().find(|s| s.contains("actions/upload-artifact@")).expect("the package job uploads");
    let artefact = upload.lines().find_map(|l| l.trim().strip_prefix("name: ")).expect("the artefact's name");
    for path in LAMBDA_ZIPS.iter().chain(&["target/lambda/SHA256SUMS"]) {
        assert!(upload.lines().any(|l| l.trim() == *path), "the artefact lacks {path}: {upload}");
    }
    assert!(upload.contains("if-no-files-found: error"), "a missing zip fails the upload: {upload}");
    let make = repo_file("make/infra.mk");
    let recipe = make.split("\npackage:").nth(1).and_then(|r| r.split("\n\n").next()).expect("make package");
    assert!(recipe.contains("bootstrap.zip") && recipe.contains("tee SHA256SUMS"), "make package writes SHA256SUMS");

    // The deploy job: after every CI job of the same push, handing over the package job's output.
    let deploy = jobs.get("deploy").expect("ci.yml has a deploy job");
    let needs = job_needs(deploy);
    for (id, job) in &jobs {
        let pull_request_only = job_value(job, "if").as_deref() == Some(PULL_REQUEST_ONLY);
        if id != "deploy" && !pull_request_only {
            assert!(needs.contains(id), "the deploy job must need CI job {id}: {needs:?}");
        }
    }
    assert!(needs.contains("package"));
    let condition = job_value(deploy, "if").unwrap_or_default();
    assert!(condition.contains("github.event_name == 'push'") && condition.contains("refs/heads/main"), "{condition}");
    assert!(deploy.contains("uses: ./.github/workflows/deploy.yml "), "{deploy}");
    let with = job_block(deploy, "with");
    assert_eq!(with.get("lambda-artifact").map(String::as_str), Some(artefact));
    assert_eq!(with.get("lambda-sha256sums").map(String::as_str), Some("${{ needs.package.outputs.sha256sums }}"));

    // deploy.yml: only called; downloads, checks, applies; builds nothing.
    let called = repo_file(".github/workflows/deploy.yml");
    let triggers: Vec<&str> = called
        .split("\non:\n")
        .nth(1)
        .and_then(|t| t.split("\n\n").next())
        .expect("deploy.yml's on:")
        .lines()
        .filter_map(|l| l.strip_prefix("  ").filter(|l| !l.starts_with(' ')))
        .collect();
    assert_eq!(triggers, ["workflow_call:"], "deploy.yml must only be called (after CI), not triggered");
    let code: String = called.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    for builds in ["cargo", "rustup", "make package", "setup-infra", "rust-cache", "package_zips"] {
        assert!(!code.contains(builds), "the deploy workflow must not build (it contains {builds:?})");
    }
    let deploy_jobs = workflow_jobs(&called);
    assert_eq!(deploy_jobs.len(), 1, "deploy.yml has one job");
    let steps = job_steps(deploy_jobs.values().next().expect("the deploy job"));
    let position = |what: &str| {
        steps.iter().position(|s| s.contains(what)).unwrap_or_else(|| panic!("deploy.yml has no step with {what}"))
    };
    let download = position("actions/download-artifact@");
    assert!(steps[download].contains("name: ${{ inputs.lambda-artifact }}"), "{}", steps[download]);
    assert!(steps[download].contains("path: target/lambda"), "{}", steps[download]);
    let check = position(".ci/check-zips.sh target/lambda");
    assert!(
        steps[check].contains("EXPECTED_SHA256SUMS: ${{ inputs.lambda-sha256sums }}"),
        "the zips are checked against the package job's output: {}",
        steps[check]
    );
    let apply = position("make deploy ");
    assert!(steps[apply].contains("INFRA_SKIP_PACKAGE=1"), "{}", steps[apply]);
    assert!(download < check && check < apply, "download, check, then apply");

    // Every third-party action, in every workflow, is pinned by commit.
    for (file, text) in workflows() {
        for line in text.lines().filter(|l| l.trim_start().trim_start_matches("- ").starts_with("uses: ")) {
            let uses = line.trim_start().trim_start_matches("- ").trim_start_matches("uses: ");
            assert!(uses.starts_with("./") || is_commit_pin(uses), "{file}: {uses} is not pinned by a commit SHA");
        }
    }
}

/// Issue #13 item 7 (mechanism: ci.yml and make/infra.mk read as text). The pull-request plan runs
/// on `pull_request` (never `pull_request_target`, in any workflow), assumes the plan role (not the
/// deploy role, no environment), plans without the state lock with the committed environment file,
/// and may write nothing but its pull-request comment (plus the OIDC token it asks for); no other
/// job may write to pull requests. Forks and unset variables are told and skipped, and no `run:`
/// script in any workflow expands `${{ }}` (untrusted values reach scripts through `env:` only).
#[test]
fn the_pull_request_plan_is_read_only_and_only_it_writes_to_pull_requests() {
    let ci = repo_file(".github/workflows/ci.yml");
    let jobs = workflow_jobs(&ci);
    let plan = jobs.get("plan").expect("ci.yml has a plan job");
    assert_eq!(job_value(plan, "if").as_deref(), Some(PULL_REQUEST_ONLY));
    assert_eq!(job_value(plan, "environment"), None, "the plan job's token must not carry the production subject");
    let expected: BTreeSet<String> = ["id-token", "pull-requests"].map(str::to_owned).into();
    assert_eq!(write_permissions(&job_block(plan, "permissions")), expected, "the plan job's write permissions");
    assert!(plan.contains("role-to-assume: ${{ vars.AWS_PLAN_ROLE_ARN }}") && !plan.contains("AWS_DEPLOY_ROLE_ARN"));
    assert!(run_scripts(plan).iter().any(|r| r.contains("make plan-summary INFRA_ENV=prod")), "{plan}");
    let make = repo_file("make/infra.mk");
    let recipe = make.split("\nplan-summary:").nth(1).and_then(|r| r.split("\n\n").next()).expect("make plan-summary");
    let plan_line = recipe.lines().find(|l| l.contains("$(INFRA_TF) plan ")).expect("plan-summary runs terraform plan");
    assert!(plan_line.contains("-lock=false") && plan_line.contains("-var-file=$(INFRA_VAR_FILE)"), "{plan_line}");

    // Forks (no OIDC token) and a repository without the variables: said in the summary, skipped.
    let steps = job_steps(plan);
    let gate = steps.iter().position(|s| s.contains("id: gate")).expect("the plan job decides first");
    assert_eq!(gate, 0, "the gate is the first step");
    for needed in ["github.event.pull_request.head.repo.full_name", "vars.AWS_PLAN_ROLE_ARN", "GITHUB_STEP_SUMMARY"] {
        assert!(steps[gate].contains(needed), "the gate step lacks {needed}: {}", steps[gate]);
    }
    for step in &steps[gate + 1..] {
        assert!(step.contains("if: steps.gate.outputs.ready == 'true'"), "a step runs without the gate: {step}");
    }

    for (file, text) in workflows() {
        let on = text.split("\non:").nth(1).and_then(|t| t.split("\n\n").next()).unwrap_or_default();
        assert!(
            !on.contains("pull_request_target") && !on.contains("workflow_run"),
            "{file} runs untrusted code with secrets"
        );
        let top = text.split("\njobs:\n").next().unwrap_or_default();
        assert!(!top.contains(": write"), "{file}: workflow-level write permissions");
        for (id, job) in workflow_jobs(&text) {
            let writes = write_permissions(&job_block(&job, "permissions"));
            if (file.as_str(), id.as_str()) != ("ci.yml", "plan") {
                assert!(!writes.contains("pull-requests"), "{file} job {id} may write to pull requests");
            }
        }
        for script in run_scripts(&text) {
            assert!(!script.contains("${{"), "{file}: a run script expands an expression (use env:): {script}");
        }
    }
}

/// An expression as a list of strings: arrays and `concat`/`flatten` flattened, `local.x`
/// followed, literals and quoted templates as their text, anything else as its source text.
fn expand(module: &Module, expr: &Expression) -> Vec<String> {
    // `local.<object>.<key>`: the key's value in that local object.
    let source = text(expr);
    let member = source.strip_prefix("local.").and_then(|rest| rest.split_once('.')).and_then(|(object, key)| {
        let Some(Expression::Object(fields)) = module.locals().get(object).copied() else { return None };
        fields.iter().find(|(k, _)| object_key(k) == key).map(|(_, v)| v.clone())
    });
    if let Some(value) = member {
        return expand(module, &value);
    }
    match module.resolve(expr) {
        Expression::Array(items) => items.iter().flat_map(|item| expand(module, item)).collect(),
        Expression::FuncCall(call) if ["concat", "flatten"].contains(&call.name.name.as_str()) => {
            call.args.iter().flat_map(|arg| expand(module, arg)).collect()
        }
        other => vec![module.template(other).unwrap_or_else(|| text(other))],
    }
}

/// One statement of a `data "aws_iam_policy_document"`, its values expanded (see `expand`).
#[derive(Debug)]
struct DocStatement {
    sid: String,
    deny: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    /// (test, variable, values)
    conditions: Vec<(String, String, Vec<String>)>,
}

fn policy_document(module: &Module, name: &str) -> Vec<DocStatement> {
    let document = module
        .blocks("data")
        .find(|b| label(b, 0) == "aws_iam_policy_document" && label(b, 1) == name)
        .unwrap_or_else(|| panic!("data.aws_iam_policy_document.{name} is not declared"));
    assert!(attr(&document.body, "source_policy_documents").is_none(), "{name}: read its statements where they are");
    let list = |body: &Body, key: &str| attr(body, key).map(|e| expand(module, e)).unwrap_or_default();
    let single = |body: &Body, key: &str| list(body, key).into_iter().next().unwrap_or_default();
    document
        .body
        .blocks()
        .filter(|b| b.identifier.as_str() == "statement")
        .map(|s| DocStatement {
            sid: single(&s.body, "sid"),
            deny: single(&s.body, "effect") == "Deny",
            actions: list(&s.body, "actions"),
            resources: list(&s.body, "resources"),
            conditions: s
                .body
                .blocks()
                .filter(|c| c.identifier.as_str() == "condition")
                .map(|c| (single(&c.body, "test"), single(&c.body, "variable"), list(&c.body, "values")))
                .collect(),
        })
        .collect()
}

/// Does an IAM action pattern (`iam:*Role`, `iam:Put*`, `*`) cover the action?
fn action_covers(pattern: &str, action: &str) -> bool {
    iam_glob(pattern, action, true)
}

/// Issue #13 item 7 (mechanism: terraform/bootstrap/github.tf read with hcl-rs). The plan role
/// reads: every action is a Get/List/Describe or a kms:Decrypt (of the state key, or of the
/// functions' environments through Lambda); objects it may read are the state and the code zips,
/// never the data buckets; no secret value; no boundary needed because nothing is written.
#[test]
fn the_plan_role_only_reads_the_state_and_the_stacks_configuration() {
    let boot = Module::load("bootstrap");
    let plan_policy = boot.resource("aws_iam_role_policy", "plan");
    assert_eq!(text(required(plan_policy, "policy", "plan policy")), "data.aws_iam_policy_document.plan[0].json");
    assert!(
        boot.resources("aws_iam_role_policy_attachment")
            .all(|(_, b)| !text(required(b, "role", "attachment")).contains("plan")),
        "no managed policy is attached to the plan role"
    );
    let statements = policy_document(&boot, "plan");
    assert!(statements.len() >= 4);
    let state_object = "${module.state_bucket.arn}/${var.state_key}";
    for statement in &statements {
        assert!(!statement.deny, "{statement:?}");
        for action in &statement.actions {
            let (service, verb) = action.split_once(':').unwrap_or_else(|| panic!("{action}"));
            let reads = ["Get", "List", "Describe"].iter().any(|v| verb.starts_with(v));
            assert!(reads || action == "kms:Decrypt", "the plan role may only read: {action} in {}", statement.sid);
            assert_ne!(action, "secretsmanager:GetSecretValue");
            if action == "kms:Decrypt" {
                let via_lambda = (
                    "StringEquals".to_owned(),
                    "kms:ViaService".to_owned(),
                    vec!["lambda.${local.region}.amazonaws.com".to_owned()],
                );
                assert!(
                    statement.resources == ["aws_kms_key.state.arn"] || statement.conditions == [via_lambda],
                    "kms:Decrypt of the state key, or of the environments through Lambda only: {statement:?}"
                );
            }
            if service == "s3" && action_covers(action, "s3:GetObject") {
                for resource in &statement.resources {
                    assert!(
                        resource == state_object || resource.contains("-code-*/*"),
                        "the plan role reads objects of {resource} ({}): only the state and the code zips",
                        statement.sid
                    );
                }
            }
        }
    }
    assert!(
        statements.iter().any(|s| s.actions == ["s3:GetObject"] && s.resources == [state_object]),
        "it reads the state"
    );
}

/// Issue #21 (mechanism: docs/deploy.md's inline code and code blocks read as text, against the
/// Makefile targets, make/infra.mk's variables and the `output` blocks of both Terraform roots):
/// every `make <target>` the deploy guide tells a user to run exists, every INFRA_ variable it
/// sets is one make reads, and every `terraform output` it reads is declared.
#[test]
fn the_deploy_guide_runs_only_targets_variables_and_outputs_that_exist() {
    let guide = repo_file("docs/deploy.md");
    let makefiles = format!("{}\n{}", repo_file("Makefile"), repo_file("make/infra.mk"));
    let targets: BTreeSet<&str> = makefiles
        .lines()
        .filter_map(|line| line.split_once(':').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    let outputs: BTreeSet<String> = [".", "bootstrap"]
        .iter()
        .flat_map(|dir| Module::load(dir).blocks("output").map(|b| label(b, 0).to_owned()).collect::<Vec<_>>())
        .collect();

    // Inline code spans and the lines of fenced code blocks: what a user copies and runs.
    let mut commands = Vec::new();
    let mut fenced = false;
    for line in guide.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            commands.push(line.trim().to_owned());
        } else {
            commands.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
        }
    }
    let (mut makes, mut reads) = (0, 0);
    for command in &commands {
        let words: Vec<&str> =
            command.split_whitespace().skip_while(|w| w.contains('=') && !w.starts_with('-')).collect();
        if words.first() == Some(&"make") {
            // A target, not an assignment, a flag or a placeholder (`make …`).
            let target_like = |t: &&&str| {
                t.starts_with(|c: char| c.is_ascii_lowercase())
                    && t.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == '/')
            };
            if let Some(target) = words[1..].iter().find(|w| !w.starts_with('-')).filter(target_like) {
                for target in target.split('/') {
                    makes += 1;
                    assert!(targets.contains(target), "docs/deploy.md runs `make {target}`, which no Makefile defines");
                }
            }
        }
        let read = words
            .iter()
            .position(|w| *w == "output")
            .and_then(|at| words[at + 1..].iter().find(|w| !w.starts_with('-')));
        if let Some(name) = read {
            let name = name.trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            reads += 1;
            assert!(outputs.contains(name), "docs/deploy.md reads `terraform output {name}`, which is not declared");
        }
        for variable in
            command.split(|c: char| !(c.is_ascii_uppercase() || c == '_')).filter(|w| w.starts_with("INFRA_"))
        {
            assert!(makefiles.contains(variable), "docs/deploy.md sets {variable}, which make does not read");
        }
    }
    assert!(makes >= 10 && reads >= 3, "found {makes} make commands and {reads} output reads in docs/deploy.md");
}
