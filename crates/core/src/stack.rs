//! A deployed Onyx stack as its Terraform outputs describe it (`terraform output -json`): the one
//! place the operator's commands (`onyx logs`, `onyx status --stack`, `onyx dlq`) learn the
//! function, log group, queue, bucket and alarm-topic names. The output names are declared here
//! once; a wiring test checks that `terraform/outputs.tf` declares each of them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// `--stack` / `ONYX_STACK`: a file holding `terraform output -json`, or the Terraform directory.
pub const ENV_STACK: &str = "ONYX_STACK";

/// The three functions, in pipeline order (the keys of the per-stage outputs).
pub const STAGES: [&str; 3] = ["extract", "transform", "load"];

/// Output: Lambda function name per stage.
pub const OUTPUT_FUNCTION_NAMES: &str = "function_names";
/// Output: CloudWatch log group per stage.
pub const OUTPUT_LOG_GROUPS: &str = "log_groups";
/// Output: dead-letter queue name per stage.
pub const OUTPUT_DEAD_LETTER_QUEUES: &str = "dead_letter_queues";
/// Output: the SNS topic every Onyx alarm notifies (how the stack's alarms are recognised).
pub const OUTPUT_ALARM_TOPIC: &str = "alarm_topic_arn";
/// The data-quality alarms' topic (quarantined rows, schema changes, verification differences).
/// Optional when read: a stack applied before it existed has only the outage topic.
pub const OUTPUT_DATA_QUALITY_TOPIC: &str = "data_quality_topic_arn";
/// Output: the ingestion bucket's name.
pub const OUTPUT_INGESTION_BUCKET: &str = "ingestion_bucket";
/// Output: the processed bucket's name.
pub const OUTPUT_PROCESSED_BUCKET: &str = "processed_bucket";

/// Every output the CLI reads, with whether it is a per-stage map.
pub const OUTPUTS_READ: [(&str, bool); 7] = [
    (OUTPUT_FUNCTION_NAMES, true),
    (OUTPUT_LOG_GROUPS, true),
    (OUTPUT_DEAD_LETTER_QUEUES, true),
    (OUTPUT_ALARM_TOPIC, false),
    (OUTPUT_DATA_QUALITY_TOPIC, false),
    (OUTPUT_INGESTION_BUCKET, false),
    (OUTPUT_PROCESSED_BUCKET, false),
];

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "{ENV_STACK} / --stack is not set: give the Terraform directory, or a file holding `terraform output -json`"
    )]
    NotConfigured,
    #[error("reading the stack outputs {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("the stack outputs {path} have no output {output:?}{detail}: apply this version's terraform/ (outputs.tf)")]
    MissingOutput { path: String, output: &'static str, detail: String },
}

/// One stage's deployed resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageResources {
    pub stage: &'static str,
    pub function: String,
    pub log_group: String,
    pub dead_letter_queue: String,
}

/// What the operator's commands need to know about a deployed stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// Where the outputs came from (for messages).
    pub origin: String,
    pub stages: Vec<StageResources>,
    pub alarm_topic_arn: String,
    pub data_quality_topic_arn: Option<String>,
    pub ingestion_bucket: String,
    pub processed_bucket: String,
}

impl Stack {
    /// Reads the outputs from `explicit` or `ONYX_STACK`: a directory runs `terraform output -json`
    /// there; a file is read as that command's output.
    pub fn locate(explicit: Option<String>) -> Result<Stack, StackError> {
        let path = explicit
            .or_else(|| std::env::var(ENV_STACK).ok())
            .filter(|p| !p.trim().is_empty())
            .ok_or(StackError::NotConfigured)?;
        let unreadable = |reason: String| StackError::Unreadable { path: path.clone(), reason };
        let text = if Path::new(&path).is_dir() {
            let out = std::process::Command::new("terraform")
                .arg(format!("-chdir={path}"))
                .args(["output", "-json"])
                .output()
                .map_err(|e| unreadable(format!("running `terraform output -json`: {e}")))?;
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(unreadable(format!("`terraform output -json` failed: {}", stderr.trim())));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            std::fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?
        };
        let outputs: Value = serde_json::from_str(&text).map_err(|e| unreadable(format!("not JSON: {e}")))?;
        Stack::from_outputs(&path, &outputs)
    }

    /// The stack from the JSON of `terraform output -json` (`{"name": {"value": …}, …}`).
    pub fn from_outputs(origin: &str, outputs: &Value) -> Result<Stack, StackError> {
        let missing = |output: &'static str, detail: String| StackError::MissingOutput {
            path: origin.to_string(),
            output,
            detail,
        };
        let text = |output: &'static str| -> Result<String, StackError> {
            outputs[output]["value"].as_str().map(str::to_string).ok_or_else(|| missing(output, " (a string)".into()))
        };
        let per_stage = |output: &'static str| -> Result<BTreeMap<&'static str, String>, StackError> {
            STAGES
                .iter()
                .map(|stage| {
                    outputs[output]["value"][*stage]
                        .as_str()
                        .map(|name| (*stage, name.to_string()))
                        .ok_or_else(|| missing(output, format!(" with the key {stage:?}")))
                })
                .collect()
        };
        let functions = per_stage(OUTPUT_FUNCTION_NAMES)?;
        let log_groups = per_stage(OUTPUT_LOG_GROUPS)?;
        let queues = per_stage(OUTPUT_DEAD_LETTER_QUEUES)?;
        let stages = STAGES
            .iter()
            .map(|stage| StageResources {
                stage,
                function: functions[stage].clone(),
                log_group: log_groups[stage].clone(),
                dead_letter_queue: queues[stage].clone(),
            })
            .collect();
        Ok(Stack {
            origin: origin.to_string(),
            stages,
            alarm_topic_arn: text(OUTPUT_ALARM_TOPIC)?,
            data_quality_topic_arn: text(OUTPUT_DATA_QUALITY_TOPIC).ok(),
            ingestion_bucket: text(OUTPUT_INGESTION_BUCKET)?,
            processed_bucket: text(OUTPUT_PROCESSED_BUCKET)?,
        })
    }

    /// The stages named by `only` (all when `None`); an unknown name is an error naming the choices.
    pub fn select(&self, only: Option<&str>) -> Result<Vec<&StageResources>, String> {
        match only {
            None => Ok(self.stages.iter().collect()),
            Some(name) => {
                let found: Vec<_> = self.stages.iter().filter(|s| s.stage == name || s.function == name).collect();
                if found.is_empty() {
                    Err(format!("no stage or function {name:?} in the stack (stages: {})", STAGES.join(", ")))
                } else {
                    Ok(found)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outputs() -> Value {
        let per_stage = |suffix: &str| {
            json!({"value": {"extract": format!("onyx-extract{suffix}"), "transform": format!("onyx-transform{suffix}"),
                             "load": format!("onyx-load{suffix}")}})
        };
        json!({
            "function_names": per_stage(""),
            "log_groups": {"value": {"extract": "/aws/lambda/onyx-extract", "transform": "/aws/lambda/onyx-transform",
                                      "load": "/aws/lambda/onyx-load"}},
            "dead_letter_queues": per_stage("-dlq"),
            "alarm_topic_arn": {"value": "arn:aws:sns:eu-west-2:123456789012:onyx-alarms"},
            "ingestion_bucket": {"value": "onyx-ingestion"},
            "processed_bucket": {"value": "onyx-processed"},
        })
    }

    #[test]
    fn reads_every_stage_from_terraform_outputs() {
        let stack = Stack::from_outputs("outputs.json", &outputs()).expect("stack");
        assert_eq!(
            stack.stages[1],
            StageResources {
                stage: "transform",
                function: "onyx-transform".into(),
                log_group: "/aws/lambda/onyx-transform".into(),
                dead_letter_queue: "onyx-transform-dlq".into(),
            }
        );
        assert_eq!(stack.select(Some("onyx-load")).expect("by function")[0].stage, "load");
        assert!(stack.select(Some("loader")).expect_err("unknown").contains("extract, transform, load"));
    }

    #[test]
    fn a_missing_output_is_named() {
        let mut outputs = outputs();
        outputs["log_groups"]["value"].as_object_mut().expect("map").remove("load");
        let error = Stack::from_outputs("outputs.json", &outputs).expect_err("missing").to_string();
        assert_eq!(
            error,
            "the stack outputs outputs.json have no output \"log_groups\" with the key \"load\": apply this \
             version's terraform/ (outputs.tf)"
        );
    }
}
