//! `onyx dlq`: the events each function gave up on. Lambda's on-failure destination writes an
//! invocation record per event to the function's queue: the original event (`requestPayload`),
//! why it failed (`requestContext.condition`, `responsePayload.errorMessage`) and when.
//! `onyx dlq redrive` invokes the function again, asynchronously, with the original event, and
//! deletes a message only once Lambda accepted that invocation: a message whose invocation was
//! refused stays in the queue. The pipeline is idempotent (runs already done are no-ops), so a
//! redrive repeated, or of an event that meanwhile succeeded, changes nothing.

use std::fmt::Write as _;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use onyx_core::chrono::{DateTime, Utc};
use onyx_core::stack::StageResources;
use serde_json::Value;

use super::{Clients, explain, human_age};

/// How many messages of one queue are read at most (listing, age).
pub const MAX_LISTED: usize = 1000;

/// One dead-lettered event.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    pub receipt_handle: String,
    pub sent_at: Option<DateTime<Utc>>,
    /// The original event, when the message is a Lambda invocation record.
    pub payload: Option<Value>,
    /// Why it failed, as the record says.
    pub error: String,
    pub body: String,
}

impl DeadLetter {
    fn parse(message: &aws_sdk_sqs::types::Message) -> DeadLetter {
        let body = message.body().unwrap_or_default().to_string();
        let record: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let payload = record.get("requestPayload").cloned();
        let condition = record["requestContext"]["condition"].as_str().unwrap_or("");
        let attempts = record["requestContext"]["approximateInvokeCount"].as_u64();
        let response = &record["responsePayload"];
        let mut error = match (response["errorType"].as_str(), response["errorMessage"].as_str()) {
            (Some(kind), Some(message)) => format!("{kind}: {message}"),
            (None, Some(message)) => message.to_string(),
            _ => record["responseContext"]["functionError"].as_str().unwrap_or("").to_string(),
        };
        if !condition.is_empty() {
            let after = attempts.map(|n| format!(" after {n} attempt(s)")).unwrap_or_default();
            error =
                if error.is_empty() { format!("{condition}{after}") } else { format!("{error} ({condition}{after})") };
        }
        if payload.is_none() {
            error = "not a Lambda invocation record (no requestPayload)".into();
        }
        let sent_at = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis);
        DeadLetter {
            message_id: message.message_id().unwrap_or_default().to_string(),
            receipt_handle: message.receipt_handle().unwrap_or_default().to_string(),
            sent_at,
            payload,
            error,
            body,
        }
    }
}

/// A queue's URL from its name.
pub async fn queue_url(clients: &Clients, stage: &StageResources) -> anyhow::Result<String> {
    let found = clients.sqs.get_queue_url().queue_name(&stage.dead_letter_queue).send().await.map_err(|e| {
        if super::error_code(&e).is_some_and(|c| c.contains("NonExistentQueue") || c.contains("QueueDoesNotExist")) {
            anyhow::anyhow!(
                "dead-letter queue {} of the {} function does not exist: do AWS_REGION and the stack outputs ({}) \
                 name the same deployment?",
                stage.dead_letter_queue,
                stage.stage,
                onyx_core::stack::OUTPUT_DEAD_LETTER_QUEUES
            )
        } else {
            explain(e, &format!("finding dead-letter queue {}", stage.dead_letter_queue))
        }
    })?;
    found
        .queue_url()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("SQS returned no URL for {}", stage.dead_letter_queue))
}

/// The approximate number of messages waiting (not in flight) in a queue.
pub async fn depth(clients: &Clients, stage: &StageResources, url: &str) -> anyhow::Result<u64> {
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| explain(e, &format!("reading the depth of {}", stage.dead_letter_queue)))?;
    Ok(attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Receives up to `max` messages, hidden for `hide_seconds` while we hold them.
async fn receive(
    clients: &Clients,
    stage: &StageResources,
    url: &str,
    max: usize,
    hide_seconds: i32,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters: Vec<DeadLetter> = Vec::new();
    while letters.len() < max {
        let batch = clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10.min((max - letters.len()) as i32))
            .visibility_timeout(hide_seconds)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| explain(e, &format!("reading dead-letter queue {}", stage.dead_letter_queue)))?;
        let messages = batch.messages();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let letter = DeadLetter::parse(message);
            if !letters.iter().any(|l| l.message_id == letter.message_id) {
                letters.push(letter);
            }
        }
    }
    Ok(letters)
}

/// Makes held messages visible again at once (a listing must not delay a redrive).
async fn release(clients: &Clients, stage: &StageResources, url: &str, letters: &[DeadLetter]) -> anyhow::Result<()> {
    for letter in letters {
        clients
            .sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(&letter.receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| {
                explain(e, &format!("releasing message {} of {}", letter.message_id, stage.dead_letter_queue))
            })?;
    }
    Ok(())
}

/// Every message of a queue (up to [`MAX_LISTED`]), left in the queue, oldest first.
pub async fn peek(clients: &Clients, stage: &StageResources, url: &str) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters = receive(clients, stage, url, MAX_LISTED, 30).await?;
    release(clients, stage, url, &letters).await?;
    letters.sort_by_key(|l| l.sent_at);
    Ok(letters)
}

/// `onyx dlq`: per function, its queue's messages with the original event and the error.
pub async fn list(clients: &Clients, stages: &[&StageResources]) -> anyhow::Result<String> {
    let mut out = String::new();
    let now = Utc::now();
    for stage in stages {
        let url = queue_url(clients, stage).await?;
        let letters = peek(clients, stage, &url).await?;
        let _ =
            writeln!(out, "{} ({}): {} dead-lettered event(s)", stage.stage, stage.dead_letter_queue, letters.len());
        for letter in &letters {
            let age = letter.sent_at.map(|t| format!("{} ago", human_age((now - t).num_seconds()))).unwrap_or_default();
            let _ = writeln!(out, "  message {}  {}", letter.message_id, age);
            let _ = writeln!(out, "    error: {}", letter.error);
            match &letter.payload {
                Some(payload) => {
                    let _ = writeln!(out, "    event: {payload}");
                }
                None => {
                    let _ = writeln!(out, "    body:  {}", letter.body);
                }
            }
        }
    }
    Ok(out)
}

/// What one redrive did.
#[derive(Debug, Default)]
pub struct Redriven {
    pub invoked: usize,
    pub kept: usize,
}

/// `onyx dlq redrive`: re-invoke each stage's function with each message's original event
/// (`InvocationType=Event`), delete the message once Lambda accepted (HTTP 202). With `dry_run`,
/// only print what would be invoked.
pub async fn redrive(clients: &Clients, stages: &[&StageResources], dry_run: bool) -> anyhow::Result<Redriven> {
    let mut done = Redriven::default();
    for stage in stages {
        let url = queue_url(clients, stage).await?;
        if dry_run {
            let letters = peek(clients, stage, &url).await?;
            for letter in &letters {
                match &letter.payload {
                    Some(payload) => {
                        println!("would invoke {} with {payload} (message {})", stage.function, letter.message_id)
                    }
                    None => println!(
                        "would keep message {} of {}: {}",
                        letter.message_id, stage.dead_letter_queue, letter.error
                    ),
                }
            }
            println!("{}: {} message(s); dry run, nothing invoked or deleted", stage.dead_letter_queue, letters.len());
            continue;
        }
        // Hidden for 5 minutes while we work on them; a message kept is made visible again.
        let letters = receive(clients, stage, &url, MAX_LISTED, 300).await?;
        let mut kept = Vec::new();
        let mut refused = None;
        for letter in letters {
            let Some(payload) = &letter.payload else {
                println!("kept message {} of {}: {}", letter.message_id, stage.dead_letter_queue, letter.error);
                kept.push(letter);
                continue;
            };
            if refused.is_some() {
                kept.push(letter);
                continue;
            }
            let invoked = clients
                .lambda
                .invoke()
                .function_name(&stage.function)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(payload)?))
                .send()
                .await;
            match invoked {
                Ok(response) if response.status_code() == 202 => {
                    clients
                        .sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(&letter.receipt_handle)
                        .send()
                        .await
                        .map_err(|e| {
                            explain(
                                e,
                                &format!(
                                    "deleting message {} of {} after {} accepted it (it would be redriven again: harmless)",
                                    letter.message_id, stage.dead_letter_queue, stage.function
                                ),
                            )
                        })?;
                    println!(
                        "invoked {} with message {}; deleted it from {}",
                        stage.function, letter.message_id, stage.dead_letter_queue
                    );
                    done.invoked += 1;
                }
                Ok(response) => {
                    refused = Some(anyhow::anyhow!(
                        "invoking {} for message {} returned HTTP {} instead of 202 (accepted); the message stays in {}",
                        stage.function,
                        letter.message_id,
                        response.status_code(),
                        stage.dead_letter_queue
                    ));
                    kept.push(letter);
                }
                Err(e) => {
                    refused = Some(explain(
                        e,
                        &format!(
                            "invoking {} for message {} (the message stays in {})",
                            stage.function, letter.message_id, stage.dead_letter_queue
                        ),
                    ));
                    kept.push(letter);
                }
            }
        }
        done.kept += kept.len();
        release(clients, stage, &url, &kept).await?;
        if let Some(error) = refused {
            return Err(error);
        }
    }
    Ok(done)
}
