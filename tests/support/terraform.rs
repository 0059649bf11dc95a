//! Reading and evaluating the Terraform in `terraform/` with hcl-rs, for the tests that check it
//! without a provider: the files parsed, the Terraform functions the code uses, locals resolved.

use std::fs;
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Block, Body, Expression, Value};

pub fn terraform_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../terraform")).to_path_buf()
}

/// The `.tf` files of one directory under terraform/ ("." for the main root), parsed, in name order.
pub fn parse_dir(relative: &str) -> Vec<Body> {
    parse_dir_named(relative).into_iter().map(|(_, body)| body).collect()
}

/// As [`parse_dir`], each body with its file name.
pub fn parse_dir_named(relative: &str) -> Vec<(String, Body)> {
    let dir = terraform_dir().join(relative);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "tf"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no .tf files in {}", dir.display());
    paths
        .iter()
        .map(|path| {
            let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let body = hcl::parse(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
            (path.file_name().expect("file name").to_string_lossy().into_owned(), body)
        })
        .collect()
}

/// Every `.tf` file below `dir` (not under `.terraform/`), in name order.
pub fn collect_tf_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != ".terraform") {
                collect_tf_files(&path, out);
            }
        } else if path.extension().is_some_and(|ext| ext == "tf") {
            out.push(path);
        }
    }
}

pub fn label(block: &Block, index: usize) -> &str {
    block.labels.get(index).map(|l| l.as_str()).unwrap_or("")
}

pub fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key.as_str() == key).map(|a| &a.expr)
}

pub fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

pub fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|i| s(i)).collect())
}

pub fn object(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// `variable` defaults of the bodies (all literals), then `settings` over them.
pub fn variables(bodies: &[Body], settings: &[(&str, Value)]) -> hcl::Map<String, Value> {
    let mut vars = hcl::Map::new();
    for variable in bodies.iter().flat_map(|b| b.blocks()).filter(|b| b.identifier.as_str() == "variable") {
        let default = attr(&variable.body, "default").cloned().unwrap_or(Expression::Null);
        let value = default.evaluate(&Context::new()).expect("variable defaults are literals");
        vars.insert(label(variable, 0).to_owned(), value);
    }
    for (name, value) in settings {
        assert!(vars.contains_key(*name), "no variable {name} is declared");
        vars.insert((*name).to_owned(), value.clone());
    }
    vars
}

/// Every `locals` attribute of the bodies, as (name, expression).
pub fn local_expressions(bodies: &[Body]) -> Vec<(String, Expression)> {
    bodies
        .iter()
        .flat_map(|b| b.blocks())
        .filter(|b| b.identifier.as_str() == "locals")
        .flat_map(|b| b.body.attributes())
        .map(|a| (a.key.as_str().to_owned(), a.expr.clone()))
        .collect()
}

/// Locals refer to each other in any order: evaluates them in `context(locals so far)` until
/// nothing more resolves. Those naming computed values (a policy's JSON) stay unresolved.
pub fn resolve_locals(
    expressions: &[(String, Expression)],
    context: impl Fn(&hcl::Map<String, Value>) -> Context<'static>,
) -> hcl::Map<String, Value> {
    let mut locals = hcl::Map::new();
    loop {
        let before = locals.len();
        for (name, expr) in expressions {
            if !locals.contains_key(name)
                && let Ok(value) = expr.evaluate(&context(&locals))
            {
                locals.insert(name.clone(), value);
            }
        }
        if locals.len() == before {
            return locals;
        }
    }
}

/// The Terraform functions the evaluated code uses, as Terraform defines them (`try` excepted:
/// arguments are evaluated before the call, so it only sees the first one succeed).
pub fn declare_functions(ctx: &mut Context) {
    fn flat(value: &Value) -> Vec<Value> {
        match value {
            Value::Array(items) => items.iter().flat_map(flat).collect(),
            other => vec![other.clone()],
        }
    }
    fn unique(args: FuncArgs) -> Result<Value, String> {
        let items = args[0].as_array().cloned().ok_or("not a list")?;
        let mut out: Vec<Value> = Vec::new();
        for item in items {
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(Value::Array(out))
    }
    let any = || FuncDef::builder().param(ParamType::Any);
    let variadic = || FuncDef::builder().variadic_param(ParamType::Any);
    ctx.declare_func(
        "length",
        any().build(|args: FuncArgs| {
            let n = match &args[0] {
                Value::Array(items) => items.len(),
                Value::Object(fields) => fields.len(),
                Value::String(text) => text.chars().count(),
                other => return Err(format!("length({other:?})")),
            };
            Ok(Value::Number(hcl::Number::from(n as u64)))
        }),
    );
    ctx.declare_func("toset", any().build(unique));
    ctx.declare_func("distinct", any().build(unique));
    ctx.declare_func("flatten", any().build(|args: FuncArgs| Ok(Value::Array(flat(&args[0])))));
    ctx.declare_func(
        "one",
        any().build(|args: FuncArgs| Ok(args[0].as_array().and_then(|a| a.first().cloned()).unwrap_or(Value::Null))),
    );
    ctx.declare_func(
        "contains",
        FuncDef::builder()
            .params([ParamType::Any, ParamType::Any])
            .build(|args: FuncArgs| Ok(Value::Bool(args[0].as_array().is_some_and(|items| items.contains(&args[1]))))),
    );
    ctx.declare_func(
        "coalesce",
        variadic().build(|args: FuncArgs| {
            Ok(args.iter().find(|v| !v.is_null() && v.as_str() != Some("")).cloned().unwrap_or(Value::Null))
        }),
    );
    ctx.declare_func(
        "concat",
        variadic().build(|args: FuncArgs| {
            Ok(Value::Array(args.iter().flat_map(|a| a.as_array().cloned().unwrap_or_default()).collect()))
        }),
    );
    ctx.declare_func(
        "merge",
        variadic().build(|args: FuncArgs| {
            let mut merged = hcl::Map::new();
            for arg in args.iter() {
                merged.extend(arg.as_object().cloned().ok_or("merge of a non-object")?);
            }
            Ok(Value::Object(merged))
        }),
    );
    ctx.declare_func("try", variadic().build(|args: FuncArgs| Ok(args[0].clone())));
    ctx.declare_func(
        "replace",
        FuncDef::builder().params([ParamType::String, ParamType::String, ParamType::String]).build(|args: FuncArgs| {
            let text: Vec<&str> = args.iter().map(|v| v.as_str().unwrap_or_default()).collect();
            Ok(Value::String(text[0].replace(text[1], text[2])))
        }),
    );
    ctx.declare_func(
        "file",
        FuncDef::builder().param(ParamType::String).build(|args: FuncArgs| {
            fs::read_to_string(args[0].as_str().unwrap_or_default()).map(Value::String).map_err(|e| e.to_string())
        }),
    );
    ctx.declare_func(
        "jsondecode",
        FuncDef::builder().param(ParamType::String).build(|args: FuncArgs| {
            serde_json::from_str::<Value>(args[0].as_str().unwrap_or_default()).map_err(|e| e.to_string())
        }),
    );
}

/// IAM's wildcard match: `*` any run of characters, `?` one; case-insensitive for actions.
pub fn iam_glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
    fn go(p: &[u8], v: &[u8], ignore_case: bool) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v, ignore_case) || (!v.is_empty() && go(p, &v[1..], ignore_case)),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..], ignore_case),
            (Some(x), Some(y)) if x == y || (ignore_case && x.eq_ignore_ascii_case(y)) => {
                go(&p[1..], &v[1..], ignore_case)
            }
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes(), ignore_case)
}
