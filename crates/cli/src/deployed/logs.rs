//! `onyx logs`: the functions' CloudWatch Logs as one time-ordered stream, one line per event,
//! rendered from the JSON lines the functions write (`onyx_core::telemetry::lambda_subscriber`).
//! The level and run filters go to CloudWatch as a JSON filter pattern, so only matching events
//! cross the network; each event is checked again here against the same filter (lines that are
//! not the functions' JSON — the Lambda platform's START/REPORT lines, EMF metric records — are
//! shown only when nothing is filtered, and metric records never).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Duration;

use onyx_core::stack::StageResources;
use serde_json::{Map, Value};

use super::{Clients, explain};

/// The levels the functions log, least severe first.
const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/// Fields every line has or that the line's columns already show.
const SHOWN_AS_COLUMNS: [&str; 4] = ["level", "message", "stage", "run_id"];

/// Which events to fetch.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only events at this level or more severe (e.g. `WARN`: warnings and errors).
    pub min_level: Option<&'static str>,
    /// Only events of this run (the `run_id` field).
    pub run_id: Option<String>,
    /// Only events with this numeric field (e.g. `WarehouseFreshnessSeconds`, an EMF record).
    pub metric: Option<&'static str>,
}

/// `--level`: a level name, any case.
pub fn parse_level(text: &str) -> Result<&'static str, String> {
    let upper = text.trim().to_ascii_uppercase();
    let upper = if upper == "WARNING" { "WARN".to_string() } else { upper };
    LEVELS
        .iter()
        .find(|level| **level == upper)
        .copied()
        .ok_or_else(|| format!("{text:?} is not a level: use one of {}", LEVELS.join(", ").to_lowercase()))
}

impl LogFilter {
    /// The CloudWatch Logs filter pattern (JSON syntax) that selects the same events, or `None`
    /// when every event is wanted.
    pub fn pattern(&self) -> Option<String> {
        let mut terms = Vec::new();
        if let Some(min) = self.min_level {
            let wanted: Vec<String> = LEVELS
                .iter()
                .skip_while(|level| **level != min)
                .map(|level| format!("$.level = \"{level}\""))
                .collect();
            terms.push(if wanted.len() == 1 { wanted[0].clone() } else { format!("({})", wanted.join(" || ")) });
        }
        if let Some(run) = &self.run_id {
            terms.push(format!("$.run_id = \"{}\"", run.replace('"', "")));
        }
        if let Some(metric) = self.metric {
            terms.push(format!("$.{metric} >= 0"));
        }
        (!terms.is_empty()).then(|| format!("{{ {} }}", terms.join(" && ")))
    }

    fn is_empty(&self) -> bool {
        self.min_level.is_none() && self.run_id.is_none() && self.metric.is_none()
    }

    /// Whether one event's message passes the filter (the same test the pattern makes).
    pub fn matches(&self, message: &str) -> bool {
        let Some(fields) = json_object(message) else {
            return self.is_empty();
        };
        if let Some(metric) = self.metric {
            return fields.get(metric).and_then(Value::as_f64).is_some_and(|v| v >= 0.0)
                && self.run_id.is_none()
                && self.min_level.is_none();
        }
        if fields.contains_key("_aws") {
            return false;
        }
        if let Some(min) = self.min_level {
            let rank = |level: &str| LEVELS.iter().position(|l| *l == level);
            let level = fields.get("level").and_then(Value::as_str).and_then(rank);
            if level.is_none_or(|level| Some(level) < rank(min)) {
                return false;
            }
        }
        if let Some(run) = &self.run_id
            && fields.get("run_id").and_then(Value::as_str) != Some(run.as_str())
        {
            return false;
        }
        true
    }
}

fn json_object(message: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(message.trim()) {
        Ok(Value::Object(fields)) => Some(fields),
        _ => None,
    }
}

/// One log event of one stage.
#[derive(Debug, Clone)]
pub struct Event {
    pub timestamp_ms: i64,
    pub stage: &'static str,
    pub event_id: String,
    pub message: String,
}

impl Event {
    /// The event's JSON fields, when it is one of the functions' JSON lines.
    pub fn fields(&self) -> Option<Map<String, Value>> {
        json_object(&self.message)
    }

    /// One line: time, stage, level, run id, message, then the other fields as `key=value`.
    pub fn render(&self) -> String {
        let time = onyx_core::chrono::DateTime::from_timestamp_millis(self.timestamp_ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_else(|| self.timestamp_ms.to_string());
        let Some(fields) = self.fields() else {
            return format!("{time}  {:<9}  {:<5}  {:<23}  {}", self.stage, "-", "-", self.message.trim_end());
        };
        let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or("-").to_string();
        let mut line =
            format!("{time}  {:<9}  {:<5}  {:<23}  {}", self.stage, text("level"), text("run_id"), text("message"));
        for (key, value) in fields.iter().filter(|(key, _)| !SHOWN_AS_COLUMNS.contains(&key.as_str())) {
            match value {
                Value::String(s) if !s.contains(char::is_whitespace) && !s.is_empty() => {
                    let _ = write!(line, "  {key}={s}");
                }
                other => {
                    let _ = write!(line, "  {key}={other}");
                }
            }
        }
        line
    }
}

/// The events of the given stages since `start_ms` that pass `filter`, oldest first (ties in
/// pipeline order), at most `limit` per stage (the newest `limit` are kept).
pub async fn fetch(
    clients: &Clients,
    stages: &[&StageResources],
    start_ms: i64,
    filter: &LogFilter,
    limit: usize,
) -> anyhow::Result<Vec<Event>> {
    let pattern = filter.pattern();
    let mut events = Vec::new();
    for stage in stages {
        let mut token: Option<String> = None;
        let mut stage_events = Vec::new();
        loop {
            let page = clients
                .logs
                .filter_log_events()
                .log_group_name(&stage.log_group)
                .start_time(start_ms)
                .set_filter_pattern(pattern.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    if super::error_code(&e) == Some("ResourceNotFoundException") {
                        anyhow::anyhow!(
                            "log group {} of the {} function does not exist: has the stack been applied, and do AWS_REGION \
                             and the stack outputs ({}) name the same deployment?",
                            stage.log_group,
                            stage.stage,
                            onyx_core::stack::OUTPUT_LOG_GROUPS
                        )
                    } else {
                        explain(e, &format!("reading log group {}", stage.log_group))
                    }
                })?;
            for event in page.events() {
                let message = event.message().unwrap_or_default();
                if !filter.matches(message) {
                    continue;
                }
                stage_events.push(Event {
                    timestamp_ms: event.timestamp().unwrap_or(0),
                    stage: stage.stage,
                    event_id: event.event_id().unwrap_or_default().to_string(),
                    message: message.to_string(),
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() || page.events().is_empty() {
                break;
            }
        }
        if stage_events.len() > limit {
            stage_events.drain(..stage_events.len() - limit);
        }
        events.extend(stage_events);
    }
    let order = |stage: &str| onyx_core::stack::STAGES.iter().position(|s| *s == stage);
    events.sort_by(|a, b| a.timestamp_ms.cmp(&b.timestamp_ms).then(order(a.stage).cmp(&order(b.stage))));
    Ok(events)
}

/// Prints the events, then (with `follow`) keeps polling for new ones every `poll` until killed.
pub async fn print(
    clients: &Clients,
    stages: &[&StageResources],
    start_ms: i64,
    filter: &LogFilter,
    limit: usize,
    follow: Option<Duration>,
) -> anyhow::Result<()> {
    let mut events = fetch(clients, stages, start_ms, filter, limit).await?;
    if events.is_empty() && follow.is_none() {
        println!("no log events match since {}", time_text(start_ms));
        return Ok(());
    }
    let Some(poll) = follow else {
        for event in &events {
            println!("{}", event.render());
        }
        return Ok(());
    };
    // Each poll asks again from the newest time seen (inclusive: more events may share it) and
    // skips the ids already printed at that time.
    let mut newest = start_ms;
    let mut printed_at_newest: HashSet<String> = HashSet::new();
    loop {
        for event in events.iter().filter(|e| !printed_at_newest.contains(&e.event_id)) {
            println!("{}", event.render());
        }
        if let Some(last) = events.iter().map(|e| e.timestamp_ms).max() {
            if last > newest {
                printed_at_newest.clear();
                newest = last;
            }
            printed_at_newest.extend(events.iter().filter(|e| e.timestamp_ms == newest).map(|e| e.event_id.clone()));
        }
        // Flush so a pipe (`| grep`) sees each batch as it comes.
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tokio::time::sleep(poll).await;
        events = fetch(clients, stages, newest, filter, limit).await?;
    }
}

fn time_text(ms: i64) -> String {
    onyx_core::chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_and_run_become_one_json_filter_pattern() {
        let filter =
            LogFilter { min_level: Some("WARN"), run_id: Some("20261128T070146578-4f77".into()), metric: None };
        assert_eq!(
            filter.pattern().as_deref(),
            Some(r#"{ ($.level = "WARN" || $.level = "ERROR") && $.run_id = "20261128T070146578-4f77" }"#)
        );
        let errors = LogFilter { min_level: Some("ERROR"), ..Default::default() };
        assert_eq!(errors.pattern().as_deref(), Some(r#"{ $.level = "ERROR" }"#));
        assert_eq!(LogFilter::default().pattern(), None);
    }

    #[test]
    fn the_local_check_agrees_with_the_pattern() {
        let filter = LogFilter { min_level: Some("WARN"), run_id: Some("r1".into()), metric: None };
        assert!(filter.matches(r#"{"level":"ERROR","message":"load failed","run_id":"r1"}"#));
        assert!(!filter.matches(r#"{"level":"INFO","message":"loaded","run_id":"r1"}"#));
        assert!(!filter.matches(r#"{"level":"ERROR","message":"load failed","run_id":"r2"}"#));
        assert!(!filter.matches("REPORT RequestId: 1 Duration: 2 ms"));
        assert!(LogFilter::default().matches("REPORT RequestId: 1 Duration: 2 ms"));
        assert!(!LogFilter::default().matches(r#"{"_aws":{},"Rows":3}"#));
        assert_eq!(parse_level("warning"), Ok("WARN"));
        assert!(parse_level("loud").is_err());
    }

    #[test]
    fn an_event_renders_as_one_line_with_its_fields() {
        let event = Event {
            timestamp_ms: 1_795_000_000_123,
            stage: "load",
            event_id: "1".into(),
            message: r#"{"level":"ERROR","message":"load failed","stage":"load","run_id":"r1","retryable":false,"error":"duplicate key"}"#.into(),
        };
        assert_eq!(
            event.render(),
            "2026-11-18T11:06:40.123Z  load       ERROR  r1                       load failed  error=\"duplicate key\"  retryable=false"
        );
    }
}
