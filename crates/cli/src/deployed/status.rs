//! `onyx status --stack`: the deployed stack's health on one screen — every alarm's state, each
//! dead-letter queue's depth and oldest message, each function's last ERROR line, the warehouse
//! freshness — and a one-line verdict.

use std::fmt::Write as _;

use aws_sdk_cloudwatch::types::StateValue;
use onyx_core::chrono::Utc;
use onyx_core::stack::Stack;

use super::logs::{self, LogFilter};
use super::{Clients, dlq, explain, human_age};

/// How far back the last ERROR line of each function is looked for.
pub const ERROR_WINDOW_HOURS: i64 = 24;

/// The section and whether everything is healthy (`Err` reasons otherwise).
pub struct Health {
    pub text: String,
    pub problems: Vec<String>,
}

impl Health {
    pub fn verdict(&self) -> String {
        if self.problems.is_empty() {
            "verdict: healthy".to_string()
        } else {
            format!("verdict: degraded: {}", self.problems.join("; "))
        }
    }
}

/// The stack's alarms: those that notify its outage or its data-quality topic.
async fn alarms(clients: &Clients, stack: &Stack) -> anyhow::Result<Vec<aws_sdk_cloudwatch::types::MetricAlarm>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = clients
            .cloudwatch
            .describe_alarms()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| explain(e, "reading the CloudWatch alarms"))?;
        for alarm in page.metric_alarms() {
            let ours = |a: &String| *a == stack.alarm_topic_arn || Some(a) == stack.data_quality_topic_arn.as_ref();
            let notifies = alarm.alarm_actions().iter().chain(alarm.ok_actions()).any(ours);
            if notifies {
                found.push(alarm.clone());
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    found.sort_by(|a, b| a.alarm_name().cmp(&b.alarm_name()));
    Ok(found)
}

/// The deployed part of `onyx status`. `warehouse_freshness` is the freshness read from the
/// warehouse itself when one is configured; otherwise the load's last report in its log is used.
pub async fn status(clients: &Clients, stack: &Stack, warehouse_freshness: Option<f64>) -> anyhow::Result<Health> {
    let mut out = String::new();
    let mut problems = Vec::new();
    let now = Utc::now();
    let _ = writeln!(out, "stack            {}", stack.origin);

    let alarms = alarms(clients, stack).await?;
    let firing = alarms.iter().filter(|a| a.state_value() == Some(&StateValue::Alarm)).count();
    let _ = writeln!(out, "alarms           {} of {} in ALARM", firing, alarms.len());
    for alarm in &alarms {
        let state = alarm.state_value().map(|s| s.as_str().to_string()).unwrap_or_else(|| "?".into());
        let name = alarm.alarm_name().unwrap_or_default();
        let since = alarm
            .state_updated_timestamp()
            .and_then(|t| onyx_core::chrono::DateTime::from_timestamp(t.secs(), 0))
            .map(|t| format!("  since {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        let _ = writeln!(out, "  {state:<17} {name}{since}");
        if alarm.state_value() == Some(&StateValue::Alarm) {
            if let Some(reason) = alarm.state_reason() {
                let _ = writeln!(out, "    {reason}");
            }
            problems.push(format!("alarm {name} is in ALARM"));
        }
    }
    if alarms.is_empty() {
        problems.push(format!("no alarm notifies {}: are the alarms deployed?", stack.alarm_topic_arn));
    }

    let _ = writeln!(out, "dead-letter queues");
    for stage in &stack.stages {
        let url = dlq::queue_url(clients, stage).await?;
        let depth = dlq::depth(clients, stage, &url).await?;
        if depth == 0 {
            let _ = writeln!(out, "  {:<9} {:<32} empty", stage.stage, stage.dead_letter_queue);
            continue;
        }
        let letters = dlq::peek(clients, stage, &url).await?;
        let oldest = letters
            .iter()
            .filter_map(|l| l.sent_at)
            .min()
            .map(|t| format!(", oldest {} old", human_age((now - t).num_seconds())))
            .unwrap_or_default();
        let _ = writeln!(out, "  {:<9} {:<32} {depth} message(s){oldest}", stage.stage, stage.dead_letter_queue);
        problems.push(format!("{depth} event(s) in {} (onyx dlq)", stage.dead_letter_queue));
    }

    let _ = writeln!(out, "last error per function (last {ERROR_WINDOW_HOURS} h)");
    let since = (now - onyx_core::chrono::Duration::hours(ERROR_WINDOW_HOURS)).timestamp_millis();
    let errors = LogFilter { min_level: Some("ERROR"), ..Default::default() };
    for stage in &stack.stages {
        let events = logs::fetch(clients, &[stage], since, &errors, 1).await?;
        match events.last() {
            Some(event) => {
                let _ = writeln!(out, "  {}", event.render());
            }
            None => {
                let _ = writeln!(out, "  {:<9} none", stage.stage);
            }
        }
    }

    match warehouse_freshness {
        Some(seconds) => {
            let _ = writeln!(out, "warehouse freshness: newest loaded run is {} old", human_age(seconds as i64));
        }
        None => {
            let freshness = LogFilter { metric: Some("WarehouseFreshnessSeconds"), ..Default::default() };
            let load: Vec<_> = stack.stages.iter().filter(|s| s.stage == "load").collect();
            let reported = logs::fetch(clients, &load, since, &freshness, 1).await?;
            match reported.last().and_then(|e| Some((e.timestamp_ms, e.fields()?))) {
                Some((at, fields)) => {
                    let seconds = fields["WarehouseFreshnessSeconds"].as_f64().unwrap_or(0.0) as i64;
                    let age_now = seconds + (now.timestamp_millis() - at) / 1000;
                    let _ = writeln!(
                        out,
                        "warehouse freshness: newest loaded run is {} old (the load's last report, {} ago)",
                        human_age(age_now),
                        human_age((now.timestamp_millis() - at) / 1000)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "warehouse freshness: the load reported none in the last {ERROR_WINDOW_HOURS} h (set ONYX_WAREHOUSE_URL to ask the warehouse)"
                    );
                    problems.push(format!("the load reported no warehouse freshness in {ERROR_WINDOW_HOURS} h"));
                }
            }
        }
    }
    Ok(Health { text: out, problems })
}
