//! Operating a deployed stack from one terminal: `onyx logs`, `onyx status --stack`, `onyx dlq`.
//! The stack's resource names come from its Terraform outputs (`onyx_core::stack`); the AWS
//! clients use the standard configuration chain (`AWS_PROFILE`, `AWS_REGION`, …; an emulator via
//! `AWS_ENDPOINT_URL`, or per service, e.g. `AWS_ENDPOINT_URL_LAMBDA`).

pub mod dlq;
pub mod logs;
pub mod status;

use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};

/// The AWS clients the operator's commands use, built once from the environment.
pub struct Clients {
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
}

impl Clients {
    pub async fn from_env() -> anyhow::Result<Clients> {
        let config = checked_config().await?;
        Ok(Clients {
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
        })
    }
}

/// The standard AWS configuration, checked before the first call: a region, and credentials that
/// resolve. Otherwise one line that says which is missing and how to set it — instead of a
/// `DispatchFailure` labelled a network problem on the first request.
pub async fn checked_config() -> anyhow::Result<aws_config::SdkConfig> {
    // Once per command: the buckets, the stack's clients and the audit all need it.
    static CHECKED: tokio::sync::OnceCell<aws_config::SdkConfig> = tokio::sync::OnceCell::const_new();
    CHECKED.get_or_try_init(load_checked_config).await.cloned()
}

async fn load_checked_config() -> anyhow::Result<aws_config::SdkConfig> {
    use aws_sdk_cloudwatchlogs::config::ProvideCredentials;

    let config = aws_config::load_from_env().await;
    if config.region().is_none() {
        anyhow::bail!("no AWS region: set AWS_REGION (e.g. eu-west-2), or AWS_PROFILE to a profile that has one");
    }
    let Some(provider) = config.credentials_provider() else {
        anyhow::bail!("no AWS credentials provider is configured: set AWS_PROFILE, or log in with `aws sso login`");
    };
    if let Err(e) = provider.provide_credentials().await {
        anyhow::bail!(
            "no usable AWS credentials ({}): set AWS_PROFILE and log in (`aws sso login --profile …`), or export \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; expired ones need a new login",
            error_chain(&e)
        );
    }
    Ok(config)
}

/// An error and its sources as one line of text (never the debug form).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text.replace('\n', " ")
}

/// One line that says what the operator can do about a failed AWS call: `doing` names the call
/// and the resource ("reading log group /aws/lambda/onyx-load").
pub fn explain<E, R>(error: SdkError<E, R>, doing: &str) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let (code, message) = match &error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            (e.code().unwrap_or("").to_string(), e.message().unwrap_or("").to_string())
        }
        SdkError::DispatchFailure(failure) => {
            let detail = std::error::Error::source(&error).map(error_chain).unwrap_or_default();
            let what = if failure.is_timeout() { "timed out" } else { "could not be sent" };
            return anyhow::anyhow!(
                "{doing}: the request to AWS {what} (network, or AWS_ENDPOINT_URL / AWS_REGION wrong?): {detail}"
            );
        }
        SdkError::ConstructionFailure(_) => {
            let detail = std::error::Error::source(&error).map(|s| s.to_string()).unwrap_or_default();
            return anyhow::anyhow!(
                "{doing}: no usable AWS credentials or region ({detail}): set AWS_PROFILE (and AWS_REGION), or log in with `aws sso login`"
            );
        }
        other => return anyhow::anyhow!("{doing}: {}", error_chain(other)),
    };
    let message = message.trim();
    let hint = if code.starts_with("AccessDenied") || code == "UnauthorizedOperation" || code == "AuthorizationError" {
        "permission denied: the AWS identity in use is not allowed this action (see docs/runbook.md#permissions)"
    } else if code.starts_with("ExpiredToken") || code == "RequestExpired" || code == "TokenRefreshRequired" {
        "the AWS credentials have expired: refresh them (`aws sso login`, or a new session token) and run again"
    } else if code == "UnrecognizedClientException"
        || code == "InvalidClientTokenId"
        || code == "InvalidSignatureException"
    {
        "the AWS credentials are not valid for this account/region: check AWS_PROFILE and AWS_REGION"
    } else {
        ""
    };
    if code.is_empty() {
        // Not an AWS error document (a proxy's page, an emulator's gap): say what came back.
        return anyhow::anyhow!("{doing}: {}", aws_sdk_cloudwatchlogs::error::DisplayErrorContext(&error));
    }
    if hint.is_empty() {
        anyhow::anyhow!("{doing}: {code}: {message}")
    } else {
        anyhow::anyhow!("{doing}: {hint} ({code}: {message})")
    }
}

/// The error code of a service error, when the call failed with one.
pub fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// `2h`, `30m`, `90s`, `1d`, `1h30m`: a look-back window (humantime's syntax), more than zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(format!("{text:?} is not a duration: use e.g. 30m, 2h, 1d or 1h30m")),
    }
}

/// `3h 12m`, `45s`: an age for people (humantime's format), to the second under two minutes,
/// to the minute under two days, to the hour beyond.
pub fn human_age(seconds: i64) -> String {
    let seconds = seconds.max(0) as u64;
    let unit = match seconds {
        s if s < 120 => 1,
        s if s < 172_800 => 60,
        _ => 3600,
    };
    humantime::format_duration(Duration::from_secs(seconds / unit * unit)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("2").is_err());
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_duration("2x").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn ages_read_like_people_say_them() {
        assert_eq!(human_age(45), "45s");
        assert_eq!(human_age(11_520), "3h 12m");
        assert_eq!(human_age(200_000), "2days 7h");
    }
}
