//! Issue #21: the deploy role cannot escalate, and a role it creates is confined by the workload
//! boundary whatever it trusts. Mechanism: every statement of terraform/bootstrap's policy
//! documents (deploy_services, deploy_roles, deploy_network, deploy_guardrails,
//! workload_boundary, the trust documents) is *evaluated* with hcl-rs (locals, variables,
//! `for` expressions and the functions they use) for an example account, and a small IAM
//! evaluator (action and resource globs, NotResource, the condition operators used, explicit
//! deny first) decides the requests an attacker holding the deploy role would make. Positive
//! controls prove the same statements still let Terraform do its work, so a test cannot pass by
//! denying everything. No provider, no AWS account.

use std::collections::BTreeMap;
use std::fs;

use hcl::eval::{Context, Evaluate};
use hcl::{Body, Expression, Value};

use crate::support::terraform::{
    attr, collect_tf_files, declare_functions, iam_glob as glob, label, local_expressions, object, parse_dir,
    resolve_locals, s, terraform_dir, variables,
};

const ACCOUNT: &str = "111122223333";
const OTHER_ACCOUNT: &str = "444455556666";
const REGION: &str = "eu-west-2";
const OWNER: &str = "acme";
const REPOSITORY: &str = "onyx";

/// terraform/bootstrap evaluated for the example account, with the GitHub roles switched on.
struct Bootstrap {
    bodies: Vec<Body>,
    vars: hcl::Map<String, Value>,
    locals: hcl::Map<String, Value>,
}

impl Bootstrap {
    fn load() -> Bootstrap {
        let bodies = parse_dir("bootstrap");
        let vars = variables(
            &bodies,
            &[("github_owner", s(OWNER)), ("github_repository", s(REPOSITORY)), ("region", s(REGION))],
        );
        let expressions = local_expressions(&bodies);
        let locals = resolve_locals(&expressions, |locals| bootstrap_context(&vars, locals));
        Bootstrap { bodies, vars, locals }
    }

    fn context(&self) -> Context<'static> {
        bootstrap_context(&self.vars, &self.locals)
    }

    fn local(&self, name: &str) -> &Value {
        self.locals.get(name).unwrap_or_else(|| panic!("local.{name} did not evaluate"))
    }

    /// The statements of `data "aws_iam_policy_document" "<name>"`, evaluated.
    fn document(&self, name: &str) -> Vec<Statement> {
        let ctx = self.context();
        let block = self
            .bodies
            .iter()
            .flat_map(|b| b.blocks())
            .find(|b| {
                b.identifier.as_str() == "data" && label(b, 0) == "aws_iam_policy_document" && label(b, 1) == name
            })
            .unwrap_or_else(|| panic!("data.aws_iam_policy_document.{name} is not declared"));
        evaluate_statements(&block.body, &ctx, name)
    }
}

/// The bootstrap's evaluation context: its variables and locals, the example account.
fn bootstrap_context(vars: &hcl::Map<String, Value>, locals: &hcl::Map<String, Value>) -> Context<'static> {
    let mut ctx = Context::new();
    declare_functions(&mut ctx);
    ctx.declare_var("var", Value::Object(vars.clone()));
    ctx.declare_var("local", Value::Object(locals.clone()));
    ctx.declare_var(
        "data",
        object(vec![
            ("aws_partition", object(vec![("current", object(vec![("partition", s("aws"))]))])),
            ("aws_caller_identity", object(vec![("current", object(vec![("account_id", s(ACCOUNT))]))])),
        ]),
    );
    ctx.declare_var(
        "module",
        object(vec![(
            "state_bucket",
            object(vec![
                ("arn", s(&format!("arn:aws:s3:::onyx-tfstate-{ACCOUNT}"))),
                ("id", s(&format!("onyx-tfstate-{ACCOUNT}"))),
            ]),
        )]),
    );
    ctx.declare_var(
        "aws_kms_key",
        object(vec![("state", object(vec![("arn", s(&format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/state-key")))]))]),
    );
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com");
    ctx.declare_var(
        "aws_iam_openid_connect_provider",
        object(vec![("github", Value::Array(vec![object(vec![("arn", s(&provider))])]))]),
    );
    ctx
}

/// The statements of a policy document's body (`dynamic "statement"` contents included),
/// evaluated in `ctx`; `name` is for messages.
fn evaluate_statements(document: &Body, ctx: &Context, name: &str) -> Vec<Statement> {
    let eval = |body: &Body, key: &str| -> Vec<String> {
        match attr(body, key).map(|e| e.evaluate(ctx).unwrap_or_else(|err| panic!("{name}.{key}: {err}"))) {
            None => Vec::new(),
            Some(Value::Array(items)) => items.iter().map(value_text).collect(),
            Some(single) => vec![value_text(&single)],
        }
    };
    let one = |body: &Body, key: &str| eval(body, key).into_iter().next().unwrap_or_default();
    document
        .blocks()
        .filter_map(|b| match (b.identifier.as_str(), label(b, 0)) {
            ("statement", _) => Some(&b.body),
            ("dynamic", "statement") => b.body.blocks().find(|c| c.identifier.as_str() == "content").map(|c| &c.body),
            _ => None,
        })
        .map(|body| Statement {
            sid: one(body, "sid"),
            deny: one(body, "effect") == "Deny",
            actions: eval(body, "actions"),
            resources: eval(body, "resources"),
            not_resources: eval(body, "not_resources"),
            conditions: body
                .blocks()
                .filter(|c| c.identifier.as_str() == "condition")
                .map(|c| Condition {
                    test: one(&c.body, "test"),
                    variable: one(&c.body, "variable"),
                    values: eval(&c.body, "values"),
                })
                .collect(),
        })
        .collect()
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => panic!("a policy value that is not a string: {other:?}"),
    }
}

#[derive(Debug, Clone)]
struct Condition {
    test: String,
    variable: String,
    values: Vec<String>,
}

#[derive(Debug, Clone)]
struct Statement {
    sid: String,
    deny: bool,
    actions: Vec<String>,
    resources: Vec<String>,
    not_resources: Vec<String>,
    conditions: Vec<Condition>,
}

/// One API request: the action, the resource it names, the request context's keys.
#[derive(Debug, Clone)]
struct Request {
    action: String,
    resource: String,
    context: BTreeMap<String, Vec<String>>,
}

fn request(action: &str, resource: &str, context: &[(&str, &str)]) -> Request {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in context {
        keys.entry(key.to_ascii_lowercase()).or_default().push((*value).to_owned());
    }
    Request { action: action.to_owned(), resource: resource.to_owned(), context: keys }
}

fn condition_holds(condition: &Condition, request: &Request) -> bool {
    let present = request.context.get(&condition.variable.to_ascii_lowercase());
    let (any_value, operator) = match condition.test.strip_prefix("ForAnyValue:") {
        Some(rest) => (true, rest),
        None => (false, condition.test.as_str()),
    };
    let matches = |value: &str| {
        condition.values.iter().any(|wanted| match operator {
            "StringEquals" | "ArnEquals" | "StringNotEquals" | "ArnNotEquals" => wanted == value,
            "StringLike" | "ArnLike" | "StringNotLike" | "ArnNotLike" => glob(wanted, value, false),
            other => panic!("condition operator {other} is not modelled by this test: add it"),
        })
    };
    match operator {
        "Null" => {
            let want_absent = condition.values == ["true"];
            want_absent == present.is_none()
        }
        "Bool" => present.is_some_and(|values| values.iter().any(|v| condition.values.contains(v))),
        "StringNotEquals" | "ArnNotEquals" | "StringNotLike" | "ArnNotLike" => {
            // A negated operator holds when the key is absent (IAM's rule), and otherwise only
            // when no value of the request matches.
            present.is_none_or(|values| !values.iter().any(|v| matches(v)))
        }
        _ => {
            let _ = any_value; // single- and multi-valued keys: any request value may match
            present.is_some_and(|values| values.iter().any(|v| matches(v)))
        }
    }
}

fn statement_applies(statement: &Statement, request: &Request) -> bool {
    let action = statement.actions.iter().any(|a| glob(a, &request.action, true));
    let resource = if !statement.not_resources.is_empty() {
        !statement.not_resources.iter().any(|r| glob(r, &request.resource, false))
    } else {
        // A trust policy's statement names no resource: the role itself.
        statement.resources.is_empty() || statement.resources.iter().any(|r| glob(r, &request.resource, false))
    };
    action && resource && statement.conditions.iter().all(|c| condition_holds(c, request))
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Allowed,
    ImplicitlyDenied,
    /// Explicitly denied, by the statement with this Sid.
    Denied(String),
}

/// IAM's order: an explicit deny in any policy wins; else an allow in the identity policies,
/// and, when a boundary is given, also in the boundary.
fn decide(identity: &[Statement], boundary: Option<&[Statement]>, request: &Request) -> Decision {
    let all = identity.iter().chain(boundary.unwrap_or_default());
    if let Some(deny) = all.filter(|s| s.deny).find(|s| statement_applies(s, request)) {
        return Decision::Denied(deny.sid.clone());
    }
    let allowed = |policy: &[Statement]| policy.iter().any(|s| !s.deny && statement_applies(s, request));
    if allowed(identity) && boundary.is_none_or(allowed) { Decision::Allowed } else { Decision::ImplicitlyDenied }
}

/// Each request of `denied` that is allowed, and each of `allowed` that is not, as a message.
fn mismatches(
    who: &str,
    identity: &[Statement],
    boundary: Option<&[Statement]>,
    denied: &[(&str, Request)],
    allowed: &[(&str, Request)],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (what, attempt) in denied {
        if decide(identity, boundary, attempt) == Decision::Allowed {
            failures.push(format!("{who} may {what}: {attempt:?}"));
        }
    }
    for (what, attempt) in allowed {
        let decision = decide(identity, boundary, attempt);
        if decision != Decision::Allowed {
            failures.push(format!("{who} may not {what} ({decision:?}): {attempt:?}"));
        }
    }
    failures
}

fn deploy_role(boot: &Bootstrap) -> Vec<Statement> {
    ["deploy_services", "deploy_roles", "deploy_network", "deploy_guardrails"]
        .iter()
        .flat_map(|name| boot.document(name))
        .collect()
}

/// The policy an attacker gives a role it creates: everything.
fn administrator() -> Vec<Statement> {
    vec![Statement {
        sid: "Administrator".into(),
        deny: false,
        actions: vec!["*".into()],
        resources: vec!["*".into()],
        not_resources: vec![],
        conditions: vec![],
    }]
}

/// An S3 request on a bucket or object of the example account.
fn in_account(action: &str, bucket_or_object: &str) -> Request {
    request(action, &arn("s3", bucket_or_object), &[("s3:ResourceAccount", ACCOUNT)])
}

fn arn(kind: &str, rest: &str) -> String {
    match kind {
        "iam" => format!("arn:aws:iam::{ACCOUNT}:{rest}"),
        "s3" => format!("arn:aws:s3:::{rest}"),
        service => format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}"),
    }
}

/// Issue #21, "a deploy role that cannot escalate": each way the issue names (and the obvious
/// neighbours) is denied, and what Terraform needs is still allowed.
#[test]
fn the_deploy_role_cannot_escalate_and_can_still_deploy() {
    let boot = Bootstrap::load();
    let deploy = deploy_role(&boot);
    let workload = boot.local("workload_boundary_arn").as_str().expect("a string").to_owned();
    assert_eq!(workload, arn("iam", "policy/onyx-workload-boundary"));
    let admin_policy = "arn:aws:iam::aws:policy/AdministratorAccess";
    let stack_role = arn("iam", "role/onyx/onyx-extract-lambda");

    let denied: Vec<(&str, Request)> = vec![
        ("create a stack role without a boundary", request("iam:CreateRole", &stack_role, &[])),
        (
            "create a stack role with another boundary",
            request("iam:CreateRole", &stack_role, &[("iam:PermissionsBoundary", admin_policy)]),
        ),
        (
            "create a role outside the stack's path, even with the boundary",
            request(
                "iam:CreateRole",
                &arn("iam", "role/onyx-extract-lambda"),
                &[("iam:PermissionsBoundary", &workload)],
            ),
        ),
        ("give itself a policy", request("iam:PutRolePolicy", &arn("iam", "role/github-onyx-deploy"), &[])),
        (
            "attach AdministratorAccess to a stack role",
            request(
                "iam:AttachRolePolicy",
                &stack_role,
                &[("iam:PermissionsBoundary", &workload), ("iam:PolicyARN", admin_policy)],
            ),
        ),
        ("remove a stack role's boundary", request("iam:DeleteRolePermissionsBoundary", &stack_role, &[])),
        (
            "swap a stack role's boundary",
            request("iam:PutRolePermissionsBoundary", &stack_role, &[("iam:PermissionsBoundary", admin_policy)]),
        ),
        (
            "pass an existing administrator role to Lambda",
            request("iam:PassRole", &arn("iam", "role/admin"), &[("iam:PassedToService", "lambda.amazonaws.com")]),
        ),
        (
            "pass a stack role to a service that is not the stack's",
            request("iam:PassRole", &stack_role, &[("iam:PassedToService", "cloudformation.amazonaws.com")]),
        ),
        (
            "change the trust of a role outside the path",
            request("iam:UpdateAssumeRolePolicy", &arn("iam", "role/github-onyx-plan"), &[]),
        ),
        ("rewrite the workload boundary", request("iam:CreatePolicyVersion", &workload, &[])),
        ("create a policy", request("iam:CreatePolicy", &arn("iam", "policy/onyx-anything"), &[])),
        ("create an access key", request("iam:CreateAccessKey", &arn("iam", "user/someone"), &[])),
        ("assume another role", request("sts:AssumeRole", &stack_role, &[])),
        (
            "read a secret's value",
            request("secretsmanager:GetSecretValue", &arn("secretsmanager", "secret:onyx/source-db-AbCdEf"), &[]),
        ),
        (
            "rewrite a secret's value (point the load elsewhere)",
            request("secretsmanager:PutSecretValue", &arn("secretsmanager", "secret:onyx/warehouse-db-AbCdEf"), &[]),
        ),
        (
            "rewrite a secret's value through UpdateSecret",
            request("secretsmanager:UpdateSecret", &arn("secretsmanager", "secret:onyx/warehouse-db-AbCdEf"), &[]),
        ),
        (
            "read the warehouse master password",
            request("secretsmanager:GetSecretValue", &arn("secretsmanager", "secret:rds!db-1234-AbCdEf"), &[]),
        ),
        (
            "manage another stack's secret",
            request("secretsmanager:CreateSecret", &arn("secretsmanager", "secret:payroll/db"), &[]),
        ),
        ("read a data object", in_account("s3:GetObject", &format!("onyx-ingestion-{ACCOUNT}/sales_order/x.jsonl"))),
        (
            "read a processed object",
            in_account("s3:GetObject", &format!("onyx-processed-{ACCOUNT}/fact_sales_order/x.parquet")),
        ),
        (
            "delete an object version of the source of truth",
            in_account("s3:DeleteObjectVersion", &format!("onyx-ingestion-{ACCOUNT}/sales_order/x.jsonl")),
        ),
        (
            "expire the source of truth with a lifecycle rule",
            in_account("s3:PutLifecycleConfiguration", &format!("onyx-ingestion-{ACCOUNT}")),
        ),
        (
            "suspend versioning of the source of truth",
            in_account("s3:PutBucketVersioning", &format!("onyx-ingestion-{ACCOUNT}")),
        ),
        (
            "open the processed bucket with a bucket policy",
            in_account("s3:PutBucketPolicy", &format!("onyx-processed-{ACCOUNT}")),
        ),
        (
            "write to a bucket of another account that matches the name pattern",
            request("s3:PutObject", &arn("s3", "onyx-code-attacker/x.zip"), &[("s3:ResourceAccount", OTHER_ACCOUNT)]),
        ),
        (
            "give a function a public URL",
            request("lambda:CreateFunctionUrlConfig", &arn("lambda", "function:onyx-load"), &[]),
        ),
        (
            "let anyone invoke a function",
            request("lambda:AddPermission", &arn("lambda", "function:onyx-load"), &[("lambda:Principal", "*")]),
        ),
        ("invoke a function", request("lambda:InvokeFunction", &arn("lambda", "function:onyx-extract"), &[])),
        (
            "open a security group it did not create",
            request("ec2:AuthorizeSecurityGroupIngress", &arn("ec2", "security-group/sg-0123"), &[]),
        ),
        (
            "tag someone else's security group into the stack",
            request("ec2:CreateTags", &arn("ec2", "security-group/sg-0123"), &[("aws:RequestTag/OnyxStack", "onyx")]),
        ),
        ("create an untagged VPC", request("ec2:CreateVpc", &arn("ec2", "vpc/*"), &[])),
        ("launch an untagged instance", request("ec2:RunInstances", &arn("ec2", "instance/*"), &[])),
        ("stop an instance it did not launch", request("ec2:StopInstances", &arn("ec2", "instance/i-0123"), &[])),
        ("delete a VPC it did not create", request("ec2:DeleteVpc", &arn("ec2", "vpc/vpc-0123"), &[])),
        (
            "create RDS's service-linked role",
            request(
                "iam:CreateServiceLinkedRole",
                &arn("iam", "role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"),
                &[],
            ),
        ),
        ("change the state key's policy", request("kms:PutKeyPolicy", &arn("kms", "key/state-key"), &[])),
        ("delete another key", request("kms:ScheduleKeyDeletion", &arn("kms", "key/payroll"), &[])),
        (
            "delete a state version",
            request(
                "s3:DeleteObjectVersion",
                &arn("s3", &format!("onyx-tfstate-{ACCOUNT}/onyx/terraform.tfstate")),
                &[],
            ),
        ),
    ];
    let mut failures = mismatches("the deploy role", &deploy, None, &denied, &[]);

    // The guardrails hold on their own: with an administrator's Allow added to the deploy role
    // (a careless later edit), what the issue says it must never do is still explicitly denied.
    let never = [
        "create a stack role without a boundary",
        "create a stack role with another boundary",
        "create a role outside the stack's path, even with the boundary",
        "give itself a policy",
        "remove a stack role's boundary",
        "swap a stack role's boundary",
        "pass an existing administrator role to Lambda",
        "change the trust of a role outside the path",
        "rewrite the workload boundary",
        "create a policy",
        "read a secret's value",
        "rewrite a secret's value (point the load elsewhere)",
        "rewrite a secret's value through UpdateSecret",
        "read a data object",
        "read a processed object",
        "delete an object version of the source of truth",
        "expire the source of truth with a lifecycle rule",
        "suspend versioning of the source of truth",
        "open the processed bucket with a bucket policy",
        "give a function a public URL",
        "let anyone invoke a function",
        "invoke a function",
        "tag someone else's security group into the stack",
        "create RDS's service-linked role",
        "delete a state version",
    ];
    let careless: Vec<Statement> = deploy.iter().cloned().chain(administrator()).collect();
    for what in never {
        let (_, attempt) =
            denied.iter().find(|(w, _)| *w == what).unwrap_or_else(|| panic!("no attempt named {what:?}"));
        if !matches!(decide(&careless, None, attempt), Decision::Denied(_)) {
            failures.push(format!("no guardrail denies: {what}"));
        }
    }

    let tagged = [("aws:ResourceTag/OnyxStack", "onyx")];
    let allowed: Vec<(&str, Request)> = vec![
        (
            "create a stack role with the workload boundary",
            request("iam:CreateRole", &stack_role, &[("iam:PermissionsBoundary", &workload)]),
        ),
        (
            "give a stack role its policy",
            request("iam:PutRolePolicy", &stack_role, &[("iam:PermissionsBoundary", &workload)]),
        ),
        (
            "attach Session Manager's policy to the bastion role",
            request(
                "iam:AttachRolePolicy",
                &arn("iam", "role/onyx/onyx-bastion"),
                &[
                    ("iam:PermissionsBoundary", &workload),
                    ("iam:PolicyARN", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"),
                ],
            ),
        ),
        (
            "pass a stack role to Lambda",
            request("iam:PassRole", &stack_role, &[("iam:PassedToService", "lambda.amazonaws.com")]),
        ),
        (
            "pass the flow logs' role to VPC Flow Logs",
            request(
                "iam:PassRole",
                &arn("iam", "role/onyx/onyx-vpc-flow-logs"),
                &[("iam:PassedToService", "vpc-flow-logs.amazonaws.com")],
            ),
        ),
        (
            "create the bastion's instance profile",
            request("iam:CreateInstanceProfile", &arn("iam", "instance-profile/onyx/onyx-bastion"), &[]),
        ),
        (
            "change a stack role's trust (confined by the boundary, see the next test)",
            request("iam:UpdateAssumeRolePolicy", &stack_role, &[]),
        ),
        (
            "create a stack secret, empty",
            request("secretsmanager:CreateSecret", &arn("secretsmanager", "secret:onyx/source-db-readonly"), &[]),
        ),
        ("create a stack bucket", request("s3:CreateBucket", &arn("s3", &format!("onyx-ingestion-{ACCOUNT}")), &[])),
        ("upload a function zip", in_account("s3:PutObject", &format!("onyx-code-{ACCOUNT}/onyx-load/bootstrap.zip"))),
        (
            "set up the stage notifications",
            in_account("s3:PutBucketNotification", &format!("onyx-processed-{ACCOUNT}")),
        ),
        ("update a function's code", request("lambda:UpdateFunctionCode", &arn("lambda", "function:onyx-load"), &[])),
        (
            "let S3 invoke the next stage",
            request(
                "lambda:AddPermission",
                &arn("lambda", "function:onyx-load"),
                &[("lambda:Principal", "s3.amazonaws.com")],
            ),
        ),
        (
            "create the tagged VPC",
            request("ec2:CreateVpc", &arn("ec2", "vpc/*"), &[("aws:RequestTag/OnyxStack", "onyx")]),
        ),
        (
            "tag the VPC it is creating",
            request("ec2:CreateTags", &arn("ec2", "vpc/vpc-new"), &[("ec2:CreateAction", "CreateVpc")]),
        ),
        (
            "open its own security group",
            request("ec2:AuthorizeSecurityGroupEgress", &arn("ec2", "security-group/sg-stack"), &tagged),
        ),
        ("delete its own NAT gateway", request("ec2:DeleteNatGateway", &arn("ec2", "natgateway/nat-stack"), &tagged)),
        (
            "launch the tagged bastion",
            request("ec2:RunInstances", &arn("ec2", "instance/*"), &[("aws:RequestTag/OnyxStack", "onyx")]),
        ),
        ("give the bastion its disk", request("ec2:RunInstances", &arn("ec2", "volume/*"), &[])),
        ("create the warehouse", request("rds:CreateDBInstance", &arn("rds", "db:onyx-warehouse"), &[])),
        (
            "let RDS create the master password secret",
            request("secretsmanager:CreateSecret", &arn("secretsmanager", "secret:rds!db-1234-AbCdEf"), &[]),
        ),
        (
            "write the state",
            request("s3:PutObject", &arn("s3", &format!("onyx-tfstate-{ACCOUNT}/onyx/terraform.tfstate")), &[]),
        ),
    ];
    failures.extend(mismatches("the deploy role", &deploy, None, &[], &allowed));

    // The sweep the issue asks for: no statement lets the deploy role write, pass or re-trust a
    // role outside the stack's path (whatever boundary it names), nor write a role's policies or
    // boundary without the workload boundary, nor touch a policy, whatever the Sid or wording.
    let role_writes = [
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:DeleteRolePermissionsBoundary",
        "iam:UpdateAssumeRolePolicy",
        "iam:PassRole",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:UpdateRole",
        "iam:DeleteRole",
        "iam:AddRoleToInstanceProfile",
        "iam:CreateServiceLinkedRole",
    ];
    let services =
        ["lambda.amazonaws.com", "ec2.amazonaws.com", "monitoring.rds.amazonaws.com", "vpc-flow-logs.amazonaws.com"];
    for action in role_writes {
        for outside in
            ["role/admin", "role/github-onyx-deploy", "role/github-onyx-plan", "role/onyx-x", "role/other/onyx/x"]
        {
            for service in services {
                let attempt = request(
                    action,
                    &arn("iam", outside),
                    &[("iam:PermissionsBoundary", &workload), ("iam:PassedToService", service)],
                );
                if decide(&deploy, None, &attempt) == Decision::Allowed {
                    failures.push(format!("the deploy role may {action} on {outside} (outside the stack's path)"));
                }
            }
        }
        if action == "iam:UpdateAssumeRolePolicy" || action == "iam:PassRole" || action.contains("Tag") {
            continue; // no boundary condition exists for these: the path above is what confines them
        }
        for boundary in [None, Some(admin_policy)] {
            let mut context = vec![("iam:PolicyARN", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")];
            context.extend(boundary.map(|b| ("iam:PermissionsBoundary", b)));
            let writes_policy_or_boundary = ["Put", "Attach", "Create"].iter().any(|verb| action.contains(verb));
            if writes_policy_or_boundary
                && decide(&deploy, None, &request(action, &stack_role, &context)) == Decision::Allowed
            {
                failures.push(format!("the deploy role may {action} on a stack role with boundary {boundary:?}"));
            }
        }
    }
    for action in ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy", "iam:CreatePolicy"] {
        for policy in [workload.as_str(), "arn:aws:iam::111122223333:policy/github-onyx-deploy-guardrails"] {
            if decide(&deploy, None, &request(action, policy, &[])) == Decision::Allowed {
                failures.push(format!("the deploy role may {action} on {policy}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue #21 (mechanism: workload_boundary's allow list and its lambda:SourceFunctionArn deny,
/// evaluated as the boundary of a role the deploy role could create with an administrator's
/// inline policy and any trust policy): such a role cannot read a database secret or the
/// ingestion bucket unless the request comes from the code of one of the stack's functions, and
/// can do nothing outside the stack's services and resources.
#[test]
fn a_role_the_deploy_role_creates_is_confined_by_the_workload_boundary() {
    let boot = Bootstrap::load();
    let boundary = boot.document("workload_boundary");
    let admin = administrator();
    let from_function = ("lambda:SourceFunctionArn", arn("lambda", "function:onyx-extract"));
    let ingestion_object = arn("s3", &format!("onyx-ingestion-{ACCOUNT}/sales_order/x.jsonl"));
    let this_account = ("s3:ResourceAccount", ACCOUNT);
    let source_secret = arn("secretsmanager", "secret:onyx/source-db-AbCdEf");

    let denied = vec![
        ("read the source password from outside Lambda", request("secretsmanager:GetSecretValue", &source_secret, &[])),
        (
            "read the source password from another account's function",
            request(
                "secretsmanager:GetSecretValue",
                &source_secret,
                &[(
                    "lambda:SourceFunctionArn",
                    &format!("arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:onyx-extract"),
                )],
            ),
        ),
        ("read the source of truth from outside Lambda", request("s3:GetObject", &ingestion_object, &[this_account])),
        (
            "delete a version of the source of truth",
            request("s3:DeleteObjectVersion", &ingestion_object, &[this_account]),
        ),
        ("create a role", request("iam:CreateRole", &arn("iam", "role/onyx/x"), &[])),
        ("assume a role", request("sts:AssumeRole", &arn("iam", "role/admin"), &[])),
        ("launch an instance", request("ec2:RunInstances", &arn("ec2", "instance/*"), &[])),
        ("read another bucket", request("s3:GetObject", &arn("s3", "payroll/x"), &[this_account])),
        (
            "read a bucket of another account that matches the name pattern",
            request("s3:GetObject", &arn("s3", "onyx-processed-attacker/x"), &[("s3:ResourceAccount", OTHER_ACCOUNT)]),
        ),
        ("change a function", request("lambda:UpdateFunctionCode", &arn("lambda", "function:onyx-load"), &[])),
        (
            "read another stack's secret",
            request(
                "secretsmanager:GetSecretValue",
                &arn("secretsmanager", "secret:payroll/db"),
                &[(from_function.0, &from_function.1)],
            ),
        ),
    ];
    let allowed = vec![
        (
            "the extract reads its source secret",
            request("secretsmanager:GetSecretValue", &source_secret, &[(from_function.0, &from_function.1)]),
        ),
        (
            "the extract writes the ingestion bucket",
            request("s3:PutObject", &ingestion_object, &[this_account, (from_function.0, &from_function.1)]),
        ),
        (
            "the lake analyst reads a star table",
            request(
                "s3:GetObject",
                &arn("s3", &format!("onyx-processed-{ACCOUNT}/fact_sales_order/x.parquet")),
                &[this_account],
            ),
        ),
        ("the load writes its dead-letter queue", request("sqs:SendMessage", &arn("sqs", "onyx-load-dlq"), &[])),
        ("the bastion opens a Session Manager channel", request("ssmmessages:OpenDataChannel", "*", &[])),
        (
            "VPC Flow Logs delivers the VPC's flow logs",
            request("logs:PutLogEvents", &arn("logs", "log-group:/aws/vpc/onyx-flow-logs:log-stream:eni-1"), &[]),
        ),
    ];
    let failures = mismatches("a boundary-capped role", &admin, Some(&boundary), &denied, &allowed);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue #21 (mechanism: deploy_trust / plan_trust evaluated with the example repository): the
/// deploy role trusts GitHub's customised subject naming the production environment AND
/// deploy.yml on the deploy branch; the environment alone, another branch, another workflow or
/// another repository is refused. The plan role trusts ci.yml on pull requests only.
#[test]
fn the_github_roles_trust_the_workflow_and_branch_not_only_the_environment() {
    let boot = Bootstrap::load();
    let deploy = boot.document("deploy_trust");
    let plan = boot.document("plan_trust");
    let token = |sub: &str| {
        request(
            "sts:AssumeRoleWithWebIdentity",
            &arn("iam", "role/github-onyx-deploy"),
            &[
                ("token.actions.githubusercontent.com:aud", "sts.amazonaws.com"),
                ("token.actions.githubusercontent.com:sub", sub),
            ],
        )
    };
    let repo = format!("{OWNER}/{REPOSITORY}");
    let good = format!(
        "repo:{repo}:environment:production:job_workflow_ref:{repo}/.github/workflows/deploy.yml@refs/heads/main"
    );
    assert_eq!(decide(&deploy, None, &token(&good)), Decision::Allowed, "{deploy:?}");
    for bad in [
        format!("repo:{repo}:environment:production"),
        format!(
            "repo:{repo}:environment:production:job_workflow_ref:{repo}/.github/workflows/deploy.yml@refs/heads/feature"
        ),
        format!(
            "repo:{repo}:environment:production:job_workflow_ref:{repo}/.github/workflows/evil.yml@refs/heads/main"
        ),
        format!(
            "repo:{repo}:environment:production:job_workflow_ref:other/{REPOSITORY}/.github/workflows/deploy.yml@refs/heads/main"
        ),
        format!(
            "repo:other/{REPOSITORY}:environment:production:job_workflow_ref:{repo}/.github/workflows/deploy.yml@refs/heads/main"
        ),
        format!("repo:{repo}:pull_request:job_workflow_ref:{repo}/.github/workflows/ci.yml@refs/pull/7/merge"),
    ] {
        assert_ne!(decide(&deploy, None, &token(&bad)), Decision::Allowed, "the deploy role trusts {bad}");
    }
    let pr = format!("repo:{repo}:pull_request:job_workflow_ref:{repo}/.github/workflows/ci.yml@refs/pull/7/merge");
    assert_eq!(decide(&plan, None, &token(&pr)), Decision::Allowed);
    assert_ne!(decide(&plan, None, &token(&good)), Decision::Allowed);
    assert_ne!(
        decide(
            &plan,
            None,
            &token(&format!(
                "repo:{repo}:pull_request:job_workflow_ref:{repo}/.github/workflows/x.yml@refs/pull/7/merge"
            ))
        ),
        Decision::Allowed
    );
    // The subjects name the workflows that really assume the roles: deploy.yml (called by ci.yml
    // for pushes to the deploy branch) runs in the production environment with the deploy role,
    // ci.yml's pull-request plan with the plan role.
    let workflows = terraform_dir().join("../.github/workflows");
    let deploy_yml = fs::read_to_string(workflows.join("deploy.yml")).expect("deploy.yml");
    assert!(deploy_yml.contains("environment: production") && deploy_yml.contains("vars.AWS_DEPLOY_ROLE_ARN"));
    let ci_yml = fs::read_to_string(workflows.join("ci.yml")).expect("ci.yml");
    assert_eq!(boot.vars.get("deploy_branch"), Some(&s("main")));
    assert!(
        ci_yml.contains("uses: ./.github/workflows/deploy.yml") && ci_yml.contains("github.ref == 'refs/heads/main'")
    );
    assert!(ci_yml.contains("github.event_name == 'pull_request'") && ci_yml.contains("vars.AWS_PLAN_ROLE_ARN"));

    // The documented template is what the subjects assume (docs/deploy.md shows the gh command).
    let deploy_md = fs::read_to_string(terraform_dir().join("../docs/deploy.md")).expect("docs/deploy.md");
    for key in ["repo", "context", "job_workflow_ref"] {
        assert!(deploy_md.contains(&format!("include_claim_keys[]={key}")), "docs/deploy.md sets the claim key {key}");
    }
}

/// Issue #21 (mechanism: the documents above rendered as IAM JSON without whitespace, which is
/// how IAM counts): each deploy policy and the workload boundary fit a managed policy (6,144
/// characters), so the bootstrap's apply cannot fail on size.
#[test]
fn every_deploy_policy_and_the_boundary_fit_a_managed_policy() {
    let boot = Bootstrap::load();
    for name in ["deploy_services", "deploy_roles", "deploy_network", "deploy_guardrails", "workload_boundary"] {
        let statements: Vec<serde_json::Value> = boot
            .document(name)
            .iter()
            .map(|st| {
                let mut json = serde_json::json!({
                    "Sid": st.sid, "Effect": if st.deny { "Deny" } else { "Allow" }, "Action": st.actions,
                });
                if st.not_resources.is_empty() {
                    json["Resource"] = serde_json::json!(st.resources);
                } else {
                    json["NotResource"] = serde_json::json!(st.not_resources);
                }
                let mut conditions = serde_json::Map::new();
                for c in &st.conditions {
                    conditions.entry(c.test.clone()).or_insert_with(|| serde_json::json!({}))[&c.variable] =
                        serde_json::json!(c.values);
                }
                if !conditions.is_empty() {
                    json["Condition"] = serde_json::Value::Object(conditions);
                }
                json
            })
            .collect();
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        assert!(policy.len() < 6144, "{name} is {} characters: over IAM's 6,144 for a managed policy", policy.len());
    }
}

/// Issue #21 (mechanism: terraform/ read with hcl-rs and its locals evaluated for the example
/// account): every role and instance profile of the main root and its modules is under the
/// stack's path and carries the workload boundary, whose ARN and path the main root derives
/// exactly as the bootstrap names them; EC2 resources get the stack tag the deploy role's
/// conditions test.
#[test]
fn every_stack_role_is_under_the_path_with_the_workload_boundary_the_bootstrap_creates() {
    let boot = Bootstrap::load();
    let root = parse_dir(".");
    let root_locals: BTreeMap<String, Expression> = root
        .iter()
        .flat_map(|b| b.blocks())
        .filter(|b| b.identifier.as_str() == "locals")
        .flat_map(|b| b.body.attributes())
        .map(|a| (a.key.as_str().to_owned(), a.expr.clone()))
        .collect();
    let mut ctx = Context::new();
    ctx.declare_var("var", object(vec![("name_prefix", s("onyx"))]));
    ctx.declare_var("local", object(vec![("partition", s("aws")), ("account_id", s(ACCOUNT))]));
    let derived =
        |name: &str| root_locals[name].evaluate(&ctx).unwrap_or_else(|e| panic!("local.{name} of terraform/: {e}"));
    assert_eq!(&derived("permissions_boundary_arn"), boot.local("workload_boundary_arn"));
    assert_eq!(&derived("iam_path"), boot.local("iam_path"));
    assert!(matches!(boot.local("arn"), Value::Object(o) if o.get("roles") == Some(&s(&arn("iam", "role/onyx/*")))));

    let mut roles = 0;
    let mut files = Vec::new();
    collect_tf_files(&terraform_dir(), &mut files);
    for path in files.iter().filter(|p| !p.starts_with(terraform_dir().join("bootstrap"))) {
        let module = path.parent().expect("dir") != terraform_dir();
        let body = hcl::parse(&fs::read_to_string(path).expect("readable")).expect("parses");
        for resource in body.blocks().filter(|b| b.identifier.as_str() == "resource") {
            let kind = label(resource, 0);
            if kind != "aws_iam_role" && kind != "aws_iam_instance_profile" {
                continue;
            }
            let name = format!("{}: {kind}.{}", path.display(), label(resource, 1));
            let text = |key: &str| attr(&resource.body, key).map(|e| e.to_string());
            let expected_path = if module { "var.iam_path" } else { "local.iam_path" };
            assert_eq!(text("path").as_deref(), Some(expected_path), "{name} is not under the stack's path");
            if kind == "aws_iam_role" {
                roles += 1;
                let expected = if module { "var.permissions_boundary_arn" } else { "local.permissions_boundary_arn" };
                assert_eq!(text("permissions_boundary").as_deref(), Some(expected), "{name} has no workload boundary");
            }
        }
    }
    assert!(roles >= 3, "found {roles} roles");

    let providers = fs::read_to_string(terraform_dir().join("providers.tf")).expect("providers.tf");
    assert!(providers.contains("OnyxStack   = var.name_prefix"), "default_tags carry the stack tag");
    let tag = boot.local("stack_tag");
    assert!(
        matches!(tag, Value::Object(o) if o.get("key") == Some(&s("OnyxStack")) && o.get("value") == Some(&s("onyx")))
    );
}

/// Issue #21, "one configuration for laptop and CI" (mechanism: the workflows' text, make's
/// infra targets and terraform/env/prod.tfvars read as files): no workflow sets a TF_VAR_, every
/// Terraform command of make/infra.mk that plans or applies passes the environment's file, and
/// that file sets the settings that used to differ (e-mails, network), each a declared variable.
#[test]
fn laptop_and_ci_apply_the_same_configuration() {
    let repo = terraform_dir().join("..");
    for workflow in fs::read_dir(repo.join(".github/workflows")).expect("workflows") {
        let path = workflow.expect("entry").path();
        let text = fs::read_to_string(&path).expect("readable");
        assert!(
            !text.contains("TF_VAR_"),
            "{} sets a TF_VAR_: put the setting in terraform/env/<env>.tfvars",
            path.display()
        );
    }
    let make = fs::read_to_string(repo.join("make/infra.mk")).expect("make/infra.mk");
    for line in make.lines().filter(|l| {
        l.contains("$(INFRA_TF) plan") || l.contains("$(INFRA_TF) apply") || l.contains("$(INFRA_TF) destroy")
    }) {
        assert!(
            line.contains("-var-file=$(INFRA_VAR_FILE)"),
            "make runs Terraform without the environment's file: {line}"
        );
    }
    let declared: Vec<String> = parse_dir(".")
        .iter()
        .flat_map(|b| {
            b.blocks()
                .filter(|b| b.identifier.as_str() == "variable")
                .map(|b| label(b, 0).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let prod =
        hcl::parse(&fs::read_to_string(terraform_dir().join("env/prod.tfvars")).expect("prod.tfvars")).expect("parses");
    let set: Vec<&str> = prod.attributes().map(|a| a.key.as_str()).collect();
    for key in &set {
        assert!(declared.iter().any(|d| d == key), "env/prod.tfvars sets {key}, which terraform/ does not declare");
    }
    for key in ["region", "name_prefix", "network", "alarm_emails"] {
        assert!(set.contains(&key), "env/prod.tfvars does not set {key}");
    }
}

/// terraform/'s locals the role policies use, evaluated for the example account.
fn root_context(function_name: &str) -> Context<'static> {
    let bodies = parse_dir(".");
    let tf = terraform_dir();
    let bucket = |name: &str| {
        object(vec![
            ("arn", s(&arn("s3", &format!("onyx-{name}-{ACCOUNT}")))),
            ("id", s(&format!("onyx-{name}-{ACCOUNT}"))),
        ])
    };
    let one_arn =
        |value: String| object(vec![("arn", s(&value)), ("name", s(value.rsplit([':', '/']).next().unwrap_or("")))]);
    let base = move |locals: &hcl::Map<String, Value>| {
        let mut ctx = Context::new();
        declare_functions(&mut ctx);
        ctx.declare_var("path", object(vec![("module", s(&tf.display().to_string()))]));
        ctx.declare_var(
            "var",
            object(vec![
                ("name_prefix", s("onyx")),
                ("function_name", s(function_name)),
                ("kms_key_arn", s(&arn("kms", "key/onyx-key"))),
                ("verify_with_extract_credentials", Value::Bool(false)),
                ("create_lake", Value::Bool(true)),
                ("network", s("vpc")),
                ("vpc_config", object(vec![("subnet_ids", Value::Array(vec![]))])),
            ]),
        );
        ctx.declare_var(
            "data",
            object(vec![
                ("aws_partition", object(vec![("current", object(vec![("partition", s("aws"))]))])),
                ("aws_caller_identity", object(vec![("current", object(vec![("account_id", s(ACCOUNT))]))])),
                ("aws_region", object(vec![("current", object(vec![("region", s(REGION))]))])),
            ]),
        );
        ctx.declare_var(
            "module",
            object(vec![
                ("ingestion_bucket", bucket("ingestion")),
                ("processed_bucket", bucket("processed")),
                ("code_bucket", bucket("code")),
                ("athena_results_bucket", Value::Array(vec![bucket("athena-results")])),
            ]),
        );
        let secret = |name: &str| one_arn(arn("secretsmanager", &format!("secret:onyx/{name}-AbCdEf")));
        ctx.declare_var(
            "aws_secretsmanager_secret",
            object(vec![
                ("source", secret("source-db")),
                ("source_readonly", secret("source-db-readonly")),
                ("warehouse", secret("warehouse-db")),
            ]),
        );
        ctx.declare_var("aws_kms_key", object(vec![("onyx", one_arn(arn("kms", "key/onyx-key")))]));
        ctx.declare_var(
            "aws_athena_workgroup",
            object(vec![("lake", Value::Array(vec![one_arn(arn("athena", "workgroup/onyx-lake"))]))]),
        );
        ctx.declare_var(
            "aws_glue_catalog_database",
            object(vec![("lake", Value::Array(vec![one_arn(arn("glue", "database/onyx_lake"))]))]),
        );
        ctx.declare_var(
            "aws_cloudwatch_log_group",
            object(vec![
                ("this", one_arn(arn("logs", &format!("log-group:/aws/lambda/{function_name}")))),
                ("flow_logs", Value::Array(vec![one_arn(arn("logs", "log-group:/aws/vpc/onyx-flow-logs"))])),
            ]),
        );
        ctx.declare_var("aws_sqs_queue", object(vec![("dlq", one_arn(arn("sqs", &format!("{function_name}-dlq"))))]));
        ctx.declare_var("local", Value::Object(locals.clone()));
        ctx
    };
    let locals = resolve_locals(&local_expressions(&bodies), &base);
    base(&locals)
}

/// The Allow statements of a policy document of terraform/ (or of the Lambda module), with
/// `dynamic "statement"` contents included, evaluated in `ctx`.
fn root_document(relative_dir: &str, name: &str, ctx: &Context) -> Vec<Statement> {
    let block = parse_dir(relative_dir)
        .into_iter()
        .flat_map(|b| b.into_blocks())
        .find(|b| b.identifier.as_str() == "data" && label(b, 0) == "aws_iam_policy_document" && label(b, 1) == name)
        .unwrap_or_else(|| panic!("{relative_dir}: data.aws_iam_policy_document.{name} is not declared"));
    evaluate_statements(&block.body, ctx, name).into_iter().filter(|st| !st.deny).collect()
}

/// Issue #21 (mechanism: every Allow statement of the functions' policies — iam.tf's extract,
/// transform and load documents and the Lambda module's runtime document — the lake analyst's
/// and the flow logs', evaluated with example values, each action on each resource decided
/// against the workload boundary with the request context the statement's own conditions and
/// the caller give): the boundary allows everything the stack's roles are granted, so adding it
/// cannot break the pipeline with an AccessDenied that only a deployed stack would show.
#[test]
fn the_workload_boundary_allows_everything_the_stacks_roles_are_granted() {
    let boot = Bootstrap::load();
    let boundary = boot.document("workload_boundary");
    let everything = administrator();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut check = |who: &str, statements: Vec<Statement>, caller: &[(&str, String)]| {
        assert!(!statements.is_empty(), "{who}: no statements");
        for st in &statements {
            for action in &st.actions {
                for resource in &st.resources {
                    let mut context: Vec<(String, String)> =
                        caller.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                    context.push(("s3:ResourceAccount".into(), ACCOUNT.into()));
                    context.push(("kms:ResourceAliases".into(), "alias/onyx".into()));
                    for c in &st.conditions {
                        if let Some(value) = c.values.first() {
                            context.push((c.variable.clone(), value.replace('*', "x")));
                        }
                    }
                    let pairs: Vec<(&str, &str)> = context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    let attempt = request(action, resource, &pairs);
                    checked += 1;
                    let decision = decide(&everything, Some(&boundary), &attempt);
                    if decision != Decision::Allowed {
                        failures.push(format!("{who} {} ({decision:?}): {action} on {resource}", st.sid));
                    }
                }
            }
        }
    };
    for function in ["extract", "transform", "load"] {
        let name = format!("onyx-{function}");
        let ctx = root_context(&name);
        let source = [("lambda:SourceFunctionArn", arn("lambda", &format!("function:{name}")))];
        check(&name, root_document(".", function, &ctx), &source);
        check(&name, root_document("modules/lambda_function", "runtime", &ctx), &source);
    }
    let ctx = root_context("none");
    check("the lake analyst", root_document(".", "lake_analyst", &ctx), &[]);
    check("VPC Flow Logs", root_document(".", "flow_logs", &ctx), &[]);
    assert!(checked > 40, "only {checked} grants checked");
    assert!(failures.is_empty(), "the workload boundary blocks what the stack grants:\n{}", failures.join("\n"));
}
