//! Issue #21, "private by default" (mechanism: terraform/network.tf, bastion.tf, warehouse.tf and
//! the function modules of main.tf, *evaluated* with hcl-rs). The main root's variables, locals,
//! `count` / `for_each` and the attributes under test are evaluated for a few settings of the
//! variables (the default, `network = "public"`, a reused VPC, a created warehouse), with every
//! resource standing in as its address (`aws_security_group.functions[0].id` evaluates to that
//! string), so a test reads what Terraform would plan: which resources exist, which subnets and
//! security groups a function gets, which preconditions fail. No provider, no AWS account.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use hcl::eval::{Context, Evaluate};
use hcl::{Block, Body, Expression, Value};

use crate::support::terraform::{
    attr, declare_functions, label, local_expressions, object, parse_dir, s, strings, terraform_dir, variables,
};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "eu-west-2";
const ZONES: [&str; 3] = ["eu-west-2a", "eu-west-2b", "eu-west-2c"];
/// Attributes every stand-in resource, data source and module has, each `"<address>.<name>"`.
const ATTRIBUTES: [&str; 18] = [
    "id",
    "arn",
    "name",
    "public_ip",
    "address",
    "prefix_list_id",
    "identifier",
    "function_name",
    "json",
    "availability_zone",
    "vpc_id",
    "insecure_value",
    "dashboard_name",
    "key_id",
    "log_group_name",
    "dlq_name",
    "bucket",
    "secret_arn",
];

fn nested<'a>(body: &'a Body, kind: &str) -> Vec<&'a Body> {
    body.blocks().filter(|b| b.identifier.as_str() == kind).map(|b| &b.body).collect()
}

/// The top-level blocks of the main root's `.tf` files.
fn root_blocks() -> Vec<Block> {
    parse_dir(".").into_iter().flat_map(|body| body.into_blocks()).collect()
}

/// One instance of a resource or data source: `count.index`, `each.key` / `each.value`, or neither.
#[derive(Clone, Debug)]
enum Key {
    Single,
    Index(usize),
    Each(String, Value),
}

impl Key {
    fn suffix(&self) -> String {
        match self {
            Key::Single => String::new(),
            Key::Index(i) => format!("[{i}]"),
            Key::Each(k, _) => format!("[\"{k}\"]"),
        }
    }
}

/// A security-group rule as planned.
#[derive(Debug)]
struct Rule {
    address: String,
    egress: bool,
    group: Value,
    protocol: Value,
    ports: (Value, Value),
    cidr: Value,
    referenced_group: Value,
    prefix_list: Value,
}

fn port(n: u64) -> (Value, Value) {
    (Value::Number(hcl::Number::from(n)), Value::Number(hcl::Number::from(n)))
}

/// The main root evaluated for one setting of the variables.
struct Plan {
    blocks: Vec<Block>,
    vars: hcl::Map<String, Value>,
    locals: hcl::Map<String, Value>,
    /// ("resource" | "data", type, name) -> instances
    instances: BTreeMap<(String, String, String), Vec<Key>>,
    /// "<address>.<attribute>" -> value, for stand-ins whose attribute matters (data.aws_subnet).
    overrides: BTreeMap<String, Value>,
}

impl Plan {
    fn new(settings: &[(&str, Value)]) -> Plan {
        Plan::with_overrides(settings, &[])
    }

    fn with_overrides(settings: &[(&str, Value)], overrides: &[(&str, Value)]) -> Plan {
        let blocks = root_blocks();
        let vars = variables(&parse_dir("."), settings);
        let mut plan = Plan {
            blocks,
            vars,
            locals: hcl::Map::new(),
            instances: BTreeMap::new(),
            overrides: overrides.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
        };
        let locals = local_expressions(&parse_dir("."));
        let objects: Vec<(String, String, String, Body)> = plan
            .blocks
            .iter()
            .filter(|b| ["resource", "data"].contains(&b.identifier.as_str()))
            .map(|b| (b.identifier.to_string(), label(b, 0).to_owned(), label(b, 1).to_owned(), b.body.clone()))
            .collect();
        // Locals, counts and for_each refer to each other in any order: evaluate until nothing more
        // resolves. What stays unresolved (a local using a function not declared here) is unused.
        loop {
            let mut progress = false;
            for (name, expr) in &locals {
                if !plan.locals.contains_key(name)
                    && let Ok(value) = expr.evaluate(&plan.context(&[]))
                {
                    plan.locals.insert(name.clone(), value);
                    progress = true;
                }
            }
            for (kind, kind_type, name, body) in &objects {
                let id = (kind.clone(), kind_type.clone(), name.clone());
                if plan.instances.contains_key(&id) {
                    continue;
                }
                let ctx = plan.context(&[]);
                let keys = if let Some(count) = attr(body, "count") {
                    match count.evaluate(&ctx) {
                        Ok(Value::Number(n)) => {
                            Some((0..n.as_u64().expect("whole count") as usize).map(Key::Index).collect())
                        }
                        _ => None,
                    }
                } else if let Some(for_each) = attr(body, "for_each") {
                    match for_each.evaluate(&ctx) {
                        Ok(Value::Array(items)) => Some(
                            items
                                .into_iter()
                                .map(|item| Key::Each(item.as_str().expect("a set of strings").to_owned(), item))
                                .collect(),
                        ),
                        Ok(Value::Object(fields)) => Some(fields.into_iter().map(|(k, v)| Key::Each(k, v)).collect()),
                        _ => None,
                    }
                } else {
                    Some(vec![Key::Single])
                };
                if let Some(keys) = keys {
                    plan.instances.insert(id, keys);
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        plan
    }

    fn stand_in(&self, address: &str, kind_type: &str) -> Value {
        let mut fields: hcl::Map<String, Value> =
            ATTRIBUTES.iter().map(|a| ((*a).to_owned(), s(&format!("{address}.{a}")))).collect();
        match kind_type {
            "aws_availability_zones" => {
                fields.insert("names".into(), strings(&ZONES));
            }
            "aws_caller_identity" => {
                fields.insert("account_id".into(), s(ACCOUNT));
            }
            "aws_partition" => {
                fields.insert("partition".into(), s("aws"));
            }
            "aws_region" => {
                fields.insert("region".into(), s(REGION));
                fields.insert("name".into(), s(REGION));
            }
            _ => {}
        }
        for (key, value) in &self.overrides {
            if let Some(attribute) = key.strip_prefix(&format!("{address}.")) {
                fields.insert(attribute.to_owned(), value.clone());
            }
        }
        Value::Object(fields)
    }

    /// The evaluation context: var, local, every resolved resource and data source (as stand-ins),
    /// every module, plus `extra` (count, each).
    fn context(&self, extra: &[(&str, Value)]) -> Context<'static> {
        let mut ctx = Context::new();
        declare_functions(&mut ctx);
        ctx.declare_var("var", Value::Object(self.vars.clone()));
        ctx.declare_var("local", Value::Object(self.locals.clone()));
        let mut resources: BTreeMap<String, hcl::Map<String, Value>> = BTreeMap::new();
        let mut data: BTreeMap<String, hcl::Map<String, Value>> = BTreeMap::new();
        for ((kind, kind_type, name), keys) in &self.instances {
            let prefix =
                if kind == "data" { format!("data.{kind_type}.{name}") } else { format!("{kind_type}.{name}") };
            let instance = |key: &Key| self.stand_in(&format!("{prefix}{}", key.suffix()), kind_type);
            let value = match keys.first() {
                Some(Key::Single) => instance(&Key::Single),
                Some(Key::Each(..)) => Value::Object(
                    keys.iter()
                        .map(|k| (if let Key::Each(k, _) = k { k.clone() } else { unreachable!() }, instance(k)))
                        .collect(),
                ),
                _ => Value::Array(keys.iter().map(instance).collect()),
            };
            // An empty for_each is an empty object, an empty count an empty list: both index-fail.
            let value =
                match (keys.is_empty(), self.block(kind, kind_type, name).map(|b| attr(&b.body, "for_each").is_some()))
                {
                    (true, Some(true)) => Value::Object(hcl::Map::new()),
                    _ => value,
                };
            let target = if kind == "data" { &mut data } else { &mut resources };
            target.entry(kind_type.clone()).or_default().insert(name.clone(), value);
        }
        for (kind_type, names) in resources {
            ctx.declare_var(kind_type, Value::Object(names.into_iter().collect()));
        }
        ctx.declare_var("data", Value::Object(data.into_iter().map(|(k, v)| (k, Value::Object(v))).collect()));
        let modules: hcl::Map<String, Value> = self
            .blocks
            .iter()
            .filter(|b| b.identifier.as_str() == "module")
            .map(|b| (label(b, 0).to_owned(), self.stand_in(&format!("module.{}", label(b, 0)), "module")))
            .collect();
        ctx.declare_var("module", Value::Object(modules));
        for (name, value) in extra {
            ctx.declare_var(*name, value.clone());
        }
        ctx
    }

    fn block(&self, kind: &str, kind_type: &str, name: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| {
            b.identifier.as_str() == kind
                && label(b, 0) == kind_type
                && (kind == "module" || kind == "variable" || kind == "output" || label(b, 1) == name)
        })
    }

    fn resource(&self, kind_type: &str, name: &str) -> &Body {
        &self
            .block("resource", kind_type, name)
            .unwrap_or_else(|| panic!("resource {kind_type}.{name} is not declared"))
            .body
    }

    fn keys(&self, kind_type: &str, name: &str) -> Vec<Key> {
        self.instances
            .get(&("resource".to_owned(), kind_type.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_else(|| panic!("the count / for_each of {kind_type}.{name} did not evaluate"))
    }

    fn count(&self, kind_type: &str, name: &str) -> usize {
        self.keys(kind_type, name).len()
    }

    fn key_context(&self, key: &Key) -> Context<'static> {
        match key {
            Key::Single => self.context(&[]),
            Key::Index(i) => {
                self.context(&[("count", object(vec![("index", Value::Number(hcl::Number::from(*i as u64)))]))])
            }
            Key::Each(k, v) => self.context(&[("each", object(vec![("key", s(k)), ("value", v.clone())]))]),
        }
    }

    fn eval(&self, expr: &Expression, what: &str) -> Value {
        expr.evaluate(&self.context(&[])).unwrap_or_else(|e| panic!("{what} does not evaluate: {e}"))
    }

    /// An attribute of one instance (inside nested blocks when `path` has several names), evaluated;
    /// Null when it is not set.
    fn instance_attr(&self, kind_type: &str, name: &str, key: &Key, path: &[&str]) -> Value {
        let mut body = self.resource(kind_type, name);
        for block_name in &path[..path.len() - 1] {
            body = nested(body, block_name)
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("{kind_type}.{name} has no {block_name} block"));
        }
        match attr(body, path[path.len() - 1]) {
            Some(expr) => expr.evaluate(&self.key_context(key)).unwrap_or_else(|e| {
                panic!("{kind_type}.{name}{}.{} does not evaluate: {e}", key.suffix(), path.join("."))
            }),
            None => Value::Null,
        }
    }

    /// The attribute of a resource with exactly one instance.
    fn only(&self, kind_type: &str, name: &str, path: &[&str]) -> Value {
        let keys = self.keys(kind_type, name);
        assert_eq!(keys.len(), 1, "{kind_type}.{name} has {} instances", keys.len());
        self.instance_attr(kind_type, name, &keys[0], path)
    }

    fn module_attr(&self, module: &str, key: &str) -> Value {
        let block = self.block("module", module, "").unwrap_or_else(|| panic!("module {module} is not declared"));
        attr(&block.body, key).map(|e| self.eval(e, &format!("module.{module}.{key}"))).unwrap_or(Value::Null)
    }

    fn output(&self, name: &str) -> Value {
        let block = self.block("output", name, "").unwrap_or_else(|| panic!("output {name} is not declared"));
        self.eval(attr(&block.body, "value").expect("an output has a value"), &format!("output {name}"))
    }

    fn local(&self, name: &str) -> Value {
        self.locals.get(name).cloned().unwrap_or_else(|| panic!("local.{name} does not evaluate"))
    }

    /// Every security-group rule of the plan (the aws_vpc_security_group_*_rule resources).
    fn rules(&self) -> Vec<Rule> {
        let mut rules = Vec::new();
        for (kind_type, egress) in
            [("aws_vpc_security_group_ingress_rule", false), ("aws_vpc_security_group_egress_rule", true)]
        {
            let names: Vec<String> = self
                .blocks
                .iter()
                .filter(|b| b.identifier.as_str() == "resource" && label(b, 0) == kind_type)
                .map(|b| label(b, 1).to_owned())
                .collect();
            for name in names {
                for key in self.keys(kind_type, &name) {
                    let get = |field: &str| self.instance_attr(kind_type, &name, &key, &[field]);
                    rules.push(Rule {
                        address: format!("{kind_type}.{name}{}", key.suffix()),
                        egress,
                        group: get("security_group_id"),
                        protocol: get("ip_protocol"),
                        ports: (get("from_port"), get("to_port")),
                        cidr: get("cidr_ipv4"),
                        referenced_group: get("referenced_security_group_id"),
                        prefix_list: get("prefix_list_id"),
                    });
                }
            }
        }
        rules
    }

    /// (address, error message) of every precondition that evaluates to false on a planned instance.
    fn failing_preconditions(&self) -> Vec<(String, String)> {
        let mut failing = Vec::new();
        for ((kind, kind_type, name), keys) in &self.instances {
            let block = self.block(kind, kind_type, name).expect("declared");
            let conditions: Vec<&Body> = nested(&block.body, "lifecycle")
                .into_iter()
                .flat_map(|lifecycle| nested(lifecycle, "precondition"))
                .collect();
            for key in keys {
                let ctx = self.key_context(key);
                for condition in &conditions {
                    let holds = attr(condition, "condition").expect("condition").evaluate(&ctx);
                    if matches!(holds, Ok(Value::Bool(false))) {
                        let message = attr(condition, "error_message").expect("error_message").evaluate(&ctx);
                        let message = message.ok().and_then(|m| m.as_str().map(str::to_owned)).unwrap_or_default();
                        failing.push((format!("{kind_type}.{name}{}", key.suffix()), message));
                    }
                }
            }
        }
        failing
    }
}

fn field(value: &Value, key: &str) -> Value {
    value.as_object().and_then(|o| o.get(key)).cloned().unwrap_or(Value::Null)
}

fn reused_vpc() -> Vec<(&'static str, Value)> {
    vec![
        ("vpc_id", s("vpc-0reused")),
        ("private_subnet_ids", strings(&["subnet-0a", "subnet-0b"])),
        ("private_route_table_ids", strings(&["rtb-0private"])),
    ]
}

/// Subnet id -> route table id, from the planned aws_route_table_association resources.
fn route_table_of(plan: &Plan) -> BTreeMap<String, String> {
    let text = |v: Value| v.as_str().unwrap_or_default().to_owned();
    plan.keys("aws_route_table_association", "private")
        .iter()
        .map(|k| ("private", k.clone()))
        .chain(plan.keys("aws_route_table_association", "public").iter().map(|k| ("public", k.clone())))
        .map(|(name, key)| {
            (
                text(plan.instance_attr("aws_route_table_association", name, &key, &["subnet_id"])),
                text(plan.instance_attr("aws_route_table_association", name, &key, &["route_table_id"])),
            )
        })
        .collect()
}

#[test]
fn the_network_defaults_to_the_private_vpc() {
    let plan = Plan::new(&[]);
    assert_eq!(plan.vars["network"], s("vpc"), "variable network defaults to \"vpc\"");
    let variable = plan.block("variable", "network", "").expect("variable network");
    let validation = nested(&variable.body, "validation");
    let condition = attr(validation.first().expect("network has a validation"), "condition").expect("condition");
    for (value, valid) in [("vpc", true), ("public", true), ("private", false), ("", false)] {
        let mut ctx = Context::new();
        declare_functions(&mut ctx);
        ctx.declare_var("var", object(vec![("network", s(value))]));
        assert!(matches!(condition.evaluate(&ctx), Ok(Value::Bool(b)) if b == valid), "network = {value:?}");
    }
    // The default plan builds the VPC the functions run in.
    assert_eq!(plan.count("aws_vpc", "this"), 1);
    assert_eq!(plan.count("aws_security_group", "functions"), 1);
}

#[test]
fn in_vpc_mode_extract_and_load_run_in_the_private_subnets_behind_the_functions_group_and_transform_does_not() {
    let plan = Plan::new(&[]);
    let subnets = plan.keys("aws_subnet", "private");
    assert_eq!(subnets.len(), 2, "two private subnets");
    let zones: BTreeSet<String> = subnets
        .iter()
        .map(|k| {
            plan.instance_attr("aws_subnet", "private", k, &["availability_zone"]).as_str().expect("a zone").to_owned()
        })
        .collect();
    assert_eq!(zones.len(), 2, "the private subnets are in two Availability Zones: {zones:?}");
    for key in &subnets {
        let public = plan.instance_attr("aws_subnet", "private", key, &["map_public_ip_on_launch"]);
        assert!(public != Value::Bool(true), "a private subnet gives public addresses");
    }
    let subnet_ids = Value::Array((0..2).map(|i| s(&format!("aws_subnet.private[{i}].id"))).collect());
    let expected = object(vec![
        ("subnet_ids", subnet_ids),
        ("security_group_ids", strings(&["aws_security_group.functions[0].id"])),
    ]);
    for module in ["extract", "load"] {
        assert_eq!(
            plan.module_attr(module, "vpc_config"),
            expected,
            "module.{module}'s vpc_config in network = \"vpc\""
        );
    }
    assert_eq!(plan.module_attr("transform", "vpc_config"), Value::Null, "the transform touches only S3: no VPC");

    let reused = Plan::new(&reused_vpc());
    assert_eq!(reused.count("aws_vpc", "this"), 0, "a reused VPC is not created");
    for module in ["extract", "load"] {
        let config = reused.module_attr(module, "vpc_config");
        assert_eq!(
            field(&config, "subnet_ids"),
            strings(&["subnet-0a", "subnet-0b"]),
            "module.{module} in a reused VPC"
        );
        assert_eq!(field(&config, "security_group_ids"), strings(&["aws_security_group.functions[0].id"]));
    }

    let public = Plan::new(&[("network", s("public"))]);
    for module in ["extract", "transform", "load"] {
        assert_eq!(public.module_attr(module, "vpc_config"), Value::Null, "module.{module} in network = \"public\"");
    }
    assert_eq!(public.count("aws_security_group", "functions"), 0);

    // The Lambda module puts var.vpc_config on the function (and grants the ENI actions with it).
    let module = fs::read_to_string(terraform_dir().join("modules/lambda_function/main.tf")).expect("lambda module");
    let module = hcl::parse(&module).expect("parses");
    let function = module
        .blocks()
        .find(|b| b.identifier.as_str() == "resource" && label(b, 0) == "aws_lambda_function")
        .expect("aws_lambda_function");
    let dynamic = function
        .body
        .blocks()
        .find(|b| b.identifier.as_str() == "dynamic" && label(b, 0) == "vpc_config")
        .expect("a dynamic vpc_config block");
    assert!(attr(&dynamic.body, "for_each").expect("for_each").to_string().contains("var.vpc_config"));
}

#[test]
fn the_functions_group_admits_nothing_and_lets_out_only_postgresql_and_https() {
    let plan = Plan::new(&[("create_warehouse", Value::Bool(true))]);
    let group = s("aws_security_group.functions[0].id");
    let body = plan.resource("aws_security_group", "functions");
    assert!(nested(body, "ingress").is_empty() && nested(body, "egress").is_empty(), "no inline rules");
    assert!(
        !plan.blocks.iter().any(|b| b.identifier.as_str() == "resource" && label(b, 0) == "aws_security_group_rule"),
        "rules are aws_vpc_security_group_*_rule resources only"
    );
    let rules: Vec<Rule> = plan.rules().into_iter().filter(|r| r.group == group).collect();
    assert!(!rules.is_empty());
    let mut destinations = BTreeSet::new();
    for rule in &rules {
        assert!(rule.egress, "{} lets something into the functions", rule.address);
        assert_eq!(rule.protocol, s("tcp"), "{}", rule.address);
        assert_eq!(rule.prefix_list, Value::Null, "{}", rule.address);
        if rule.ports == port(443) {
            assert_eq!(rule.cidr, s("0.0.0.0/0"), "{}: HTTPS to AWS's endpoints", rule.address);
            destinations.insert("443 anywhere".to_owned());
        } else if rule.ports == port(5432) {
            match (&rule.cidr, &rule.referenced_group) {
                (Value::String(cidr), Value::Null) => destinations.insert(format!("5432 {cidr}")),
                (Value::Null, Value::String(g)) if g == "aws_security_group.warehouse[0].id" => {
                    destinations.insert("5432 warehouse".to_owned())
                }
                other => panic!("{} goes to {other:?}", rule.address),
            };
        } else {
            panic!("{} opens {:?}: only 5432 and 443", rule.address, rule.ports);
        }
    }
    let expected: BTreeSet<String> =
        ["443 anywhere", "5432 0.0.0.0/0", "5432 warehouse"].map(str::to_owned).into_iter().collect();
    assert_eq!(destinations, expected);

    // The PostgreSQL destinations are the variable's.
    let narrow = Plan::new(&[("database_egress_cidr_blocks", strings(&["198.51.100.7/32"]))]);
    let cidrs: Vec<Value> =
        narrow.rules().into_iter().filter(|r| r.group == group && r.ports == port(5432)).map(|r| r.cidr).collect();
    assert_eq!(cidrs, [s("198.51.100.7/32")]);
}

#[test]
fn one_nat_gateway_with_an_elastic_ip_is_the_way_out_and_its_address_is_the_egress_ip_output() {
    let plan = Plan::new(&[]);
    assert_eq!(plan.count("aws_nat_gateway", "this"), 1, "one NAT gateway");
    assert_eq!(plan.only("aws_nat_gateway", "this", &["allocation_id"]), s("aws_eip.nat[0].id"));
    assert_eq!(plan.only("aws_eip", "nat", &["domain"]), s("vpc"));
    let nat_subnet = plan.only("aws_nat_gateway", "this", &["subnet_id"]);
    assert_eq!(nat_subnet, s("aws_subnet.public[0].id"));

    let route_tables = route_table_of(&plan);
    let default_route = |table: &str| -> (Value, Value) {
        let (name, key) = ["private_nat", "public_internet"]
            .iter()
            .flat_map(|n| plan.keys("aws_route", n).into_iter().map(move |k| (*n, k)))
            .find(|(n, k)| plan.instance_attr("aws_route", n, k, &["route_table_id"]) == s(table))
            .unwrap_or_else(|| panic!("route table {table} has no route"));
        assert_eq!(plan.instance_attr("aws_route", name, &key, &["destination_cidr_block"]), s("0.0.0.0/0"));
        (
            plan.instance_attr("aws_route", name, &key, &["nat_gateway_id"]),
            plan.instance_attr("aws_route", name, &key, &["gateway_id"]),
        )
    };
    for i in 0..2 {
        let table = route_tables.get(&format!("aws_subnet.private[{i}].id")).expect("private subnet associated");
        assert_eq!(
            default_route(table),
            (s("aws_nat_gateway.this[0].id"), Value::Null),
            "private subnet {i} leaves through the NAT"
        );
    }
    let table = route_tables.get(nat_subnet.as_str().expect("an id")).expect("the NAT's subnet is associated");
    assert_eq!(default_route(table), (Value::Null, s("aws_internet_gateway.this[0].id")));

    assert_eq!(plan.output("egress_ip"), s("aws_eip.nat[0].public_ip"));
    let output = plan.block("output", "egress_ip", "").expect("output egress_ip");
    let description = plan.eval(attr(&output.body, "description").expect("description"), "description");
    let description = description.as_str().expect("a string");
    assert!(description.contains("ToteSys") && description.contains("5432"), "{description}");
    assert_eq!(Plan::new(&[("network", s("public"))]).output("egress_ip"), Value::Null);
    assert_eq!(Plan::new(&reused_vpc()).output("egress_ip"), Value::Null);
}

#[test]
fn s3_goes_through_a_gateway_endpoint_on_the_private_route_tables() {
    let plan = Plan::new(&[]);
    assert_eq!(plan.only("aws_vpc_endpoint", "s3", &["vpc_endpoint_type"]), s("Gateway"));
    assert_eq!(plan.only("aws_vpc_endpoint", "s3", &["service_name"]), s(&format!("com.amazonaws.{REGION}.s3")));
    assert_eq!(plan.only("aws_vpc_endpoint", "s3", &["vpc_id"]), s("aws_vpc.this[0].id"));
    let private_tables: BTreeSet<String> = route_table_of(&plan)
        .into_iter()
        .filter(|(subnet, _)| subnet.starts_with("aws_subnet.private"))
        .map(|(_, table)| table)
        .collect();
    let endpoint_tables: BTreeSet<String> = plan
        .only("aws_vpc_endpoint", "s3", &["route_table_ids"])
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(endpoint_tables, private_tables, "the endpoint is on every private route table");

    let reused = Plan::new(&reused_vpc());
    assert_eq!(reused.only("aws_vpc_endpoint", "s3", &["route_table_ids"]), strings(&["rtb-0private"]));
    let mut without_tables = reused_vpc();
    without_tables[2].1 = Value::Array(vec![]);
    let failing = Plan::new(&without_tables).failing_preconditions();
    assert!(failing.iter().any(|(address, _)| address == "aws_vpc_endpoint.s3[0]"), "{failing:?}");
    let mut reuse_endpoint = reused_vpc();
    reuse_endpoint.push(("reuse_s3_endpoint", Value::Bool(true)));
    assert_eq!(Plan::new(&reuse_endpoint).count("aws_vpc_endpoint", "s3"), 0);
    assert_eq!(Plan::new(&[("network", s("public"))]).count("aws_vpc_endpoint", "s3"), 0);
}

#[test]
fn the_created_warehouse_is_never_publicly_accessible() {
    let plan = Plan::new(&[("create_warehouse", Value::Bool(true))]);
    let instances: Vec<&Block> = plan
        .blocks
        .iter()
        .filter(|b| b.identifier.as_str() == "resource" && label(b, 0) == "aws_db_instance")
        .collect();
    assert!(!instances.is_empty());
    for instance in instances {
        // Literally false: no variable, local or condition can make it public.
        assert_eq!(
            attr(&instance.body, "publicly_accessible"),
            Some(&Expression::Bool(false)),
            "aws_db_instance.{}: publicly_accessible must be the literal false",
            label(instance, 1)
        );
    }
    let variables: Vec<&str> =
        plan.blocks.iter().filter(|b| b.identifier.as_str() == "variable").map(|b| label(b, 0)).collect();
    assert!(!variables.iter().any(|v| v.contains("publicly")), "a variable about public access: {variables:?}");
    assert_eq!(
        plan.only("aws_db_subnet_group", "warehouse", &["subnet_ids"]),
        Value::Array((0..2).map(|i| s(&format!("aws_subnet.private[{i}].id"))).collect()),
        "the warehouse is in the private subnets"
    );
    assert_eq!(plan.only("aws_security_group", "warehouse", &["vpc_id"]), s("aws_vpc.this[0].id"));
}

#[test]
fn public_mode_refuses_a_created_warehouse_and_a_bastion_and_states_its_exposure() {
    let public_warehouse = Plan::new(&[("network", s("public")), ("create_warehouse", Value::Bool(true))]);
    let failing = public_warehouse.failing_preconditions();
    assert!(
        failing
            .iter()
            .any(|(_, message)| message.contains("create_warehouse") && message.contains("network = \"vpc\"")),
        "create_warehouse with network = \"public\" must stop at a precondition naming both: {failing:?}"
    );
    let public_bastion = Plan::new(&[("network", s("public")), ("create_bastion", Value::Bool(true))]);
    let failing = public_bastion.failing_preconditions();
    assert!(
        failing.iter().any(|(_, message)| message.contains("create_bastion") && message.contains("network = \"vpc\"")),
        "create_bastion with network = \"public\": {failing:?}"
    );
    for settings in
        [vec![], vec![("create_warehouse", Value::Bool(true))], vec![("network", s("public"))], reused_vpc()]
    {
        let failing = Plan::new(&settings).failing_preconditions();
        assert!(failing.is_empty(), "{settings:?} must plan: {failing:?}");
    }

    // Every plan and apply in public mode warns about the exposure (a check block).
    let check = |plan: &Plan| -> (Value, String) {
        let block =
            plan.blocks.iter().find(|b| b.identifier.as_str() == "check").expect("a check block on the network");
        let assert_block = nested(&block.body, "assert").into_iter().next().expect("assert");
        let holds = plan.eval(attr(assert_block, "condition").expect("condition"), "check condition");
        let message = plan.eval(attr(assert_block, "error_message").expect("message"), "check message");
        (holds, message.as_str().unwrap_or_default().to_owned())
    };
    let (holds, message) = check(&Plan::new(&[("network", s("public"))]));
    assert_eq!(holds, Value::Bool(false), "the check warns in public mode");
    assert!(message.contains("internet") && message.contains("verify-full"), "{message}");
    assert_eq!(check(&Plan::new(&[])).0, Value::Bool(true), "no warning in vpc mode");
}

#[test]
fn the_bastion_has_no_way_in_but_ssm_and_its_role_carries_the_stacks_path_and_boundary() {
    assert_eq!(Plan::new(&[]).count("aws_instance", "bastion"), 0, "no warehouse, no bastion by default");
    assert_eq!(
        Plan::new(&[("create_warehouse", Value::Bool(true)), ("create_bastion", Value::Bool(false))])
            .count("aws_instance", "bastion"),
        0
    );
    assert_eq!(Plan::new(&[("create_bastion", Value::Bool(true))]).count("aws_instance", "bastion"), 1);
    let plan = Plan::new(&[("create_warehouse", Value::Bool(true))]);
    assert_eq!(plan.count("aws_instance", "bastion"), 1, "create_warehouse brings the bastion");

    let group = s("aws_security_group.bastion[0].id");
    let body = plan.resource("aws_security_group", "bastion");
    assert!(nested(body, "ingress").is_empty() && nested(body, "egress").is_empty(), "no inline rules");
    let rules: Vec<Rule> = plan.rules().into_iter().filter(|r| r.group == group).collect();
    assert!(!rules.is_empty());
    for rule in &rules {
        assert!(rule.egress, "{} lets something into the bastion", rule.address);
        assert_eq!(rule.protocol, s("tcp"), "{}", rule.address);
        assert!(rule.ports == port(443) || rule.ports == port(5432), "{} opens {:?}", rule.address, rule.ports);
    }
    assert!(
        plan.rules().iter().any(|r| !r.egress
            && r.group == s("aws_security_group.warehouse[0].id")
            && r.referenced_group == group
            && r.ports == port(5432)),
        "the warehouse admits the bastion"
    );

    let instance = |path: &[&str]| plan.only("aws_instance", "bastion", path);
    assert_eq!(instance(&["associate_public_ip_address"]), Value::Bool(false), "no public address");
    assert_eq!(instance(&["metadata_options", "http_tokens"]), s("required"), "IMDSv2 only");
    assert_eq!(instance(&["root_block_device", "encrypted"]), Value::Bool(true));
    assert_eq!(instance(&["root_block_device", "kms_key_id"]), s("aws_kms_key.onyx.arn"));
    assert_eq!(instance(&["vpc_security_group_ids"]), Value::Array(vec![group]));
    assert_eq!(instance(&["subnet_id"]), s("aws_subnet.private[0].id"), "in a private subnet");
    assert_eq!(instance(&["key_name"]), Value::Null, "no SSH key");
    assert_eq!(instance(&["ami"]), s("data.aws_ssm_parameter.bastion_ami[0].insecure_value"));
    let parameter = plan.block("data", "aws_ssm_parameter", "bastion_ami").expect("the AMI parameter");
    assert_eq!(
        plan.eval(attr(&parameter.body, "name").expect("name"), "parameter name"),
        s("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")
    );

    assert_eq!(instance(&["iam_instance_profile"]), s("aws_iam_instance_profile.bastion[0].name"));
    let path = plan.local("iam_path");
    assert_eq!(path, s("/onyx/"));
    let boundary = plan.local("permissions_boundary_arn");
    assert_eq!(boundary, s(&format!("arn:aws:iam::{ACCOUNT}:policy/onyx-workload-boundary")));
    assert_eq!(plan.only("aws_iam_instance_profile", "bastion", &["path"]), path);
    assert_eq!(plan.only("aws_iam_instance_profile", "bastion", &["role"]), s("aws_iam_role.bastion[0].name"));
    assert_eq!(plan.only("aws_iam_role", "bastion", &["path"]), path);
    assert_eq!(plan.only("aws_iam_role", "bastion", &["permissions_boundary"]), boundary);
    let attachments: Vec<(Value, Value)> = plan
        .keys("aws_iam_role_policy_attachment", "bastion_ssm")
        .iter()
        .map(|k| {
            (
                plan.instance_attr("aws_iam_role_policy_attachment", "bastion_ssm", k, &["role"]),
                plan.instance_attr("aws_iam_role_policy_attachment", "bastion_ssm", k, &["policy_arn"]),
            )
        })
        .collect();
    assert_eq!(
        attachments,
        [(s("aws_iam_role.bastion[0].name"), s("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"))]
    );
    let trust = plan.block("data", "aws_iam_policy_document", "bastion_assume").expect("the bastion's trust");
    assert!(
        hcl::to_string(&trust.body).expect("prints").contains("\"ec2.amazonaws.com\""),
        "the bastion role trusts EC2"
    );
    assert_eq!(plan.output("bastion_instance_id"), s("aws_instance.bastion[0].id"));
}

#[test]
fn public_mode_makes_every_function_require_verify_full() {
    for (network, minimum) in [("public", "verify-full"), ("vpc", "require")] {
        let plan = Plan::new(&[("network", s(network))]);
        for module in ["extract", "transform", "load"] {
            let environment = plan.module_attr(module, "environment");
            assert_eq!(
                field(&environment, "ONYX_DB_MIN_SSLMODE"),
                s(minimum),
                "module.{module}'s ONYX_DB_MIN_SSLMODE with network = {network:?}"
            );
        }
    }
}
