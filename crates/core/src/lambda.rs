//! The Lambda runtime glue shared by the three function binaries: JSON logs, the function built
//! once per cold start from its environment, each event handed to the stage's handler, failures
//! reported as typed diagnostics (`Onyx.Retryable` or `Onyx.Fatal`).

use std::future::Future;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::handlers::{ExtractFunction, LoadFunction, StageError, TransformFunction};

impl From<StageError> for Diagnostic {
    fn from(error: StageError) -> Diagnostic {
        Diagnostic { error_type: error.error_type().into(), error_message: error.to_string() }
    }
}

/// A pipeline stage that runs as a Lambda function.
pub trait LambdaStage: Sized {
    const STAGE: &'static str;
    /// The event its trigger delivers.
    type Event: DeserializeOwned + Send + 'static;
    fn from_env() -> impl Future<Output = Result<Self, StageError>>;
    fn handle(&self, event: Self::Event) -> impl Future<Output = Result<Value, StageError>>;
}

/// Runs the stage under the Lambda runtime until the sandbox is shut down.
pub async fn serve<S: LambdaStage>() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init(true);
    let function = match S::from_env().await {
        Ok(function) => function,
        Err(error) => {
            tracing::error!(stage = S::STAGE, error = %error.message, "configuration is invalid");
            return Err(error.into());
        }
    };
    let function = &function;
    // Boxed: the handlers' futures are deep, and the runtime's types nest them further.
    let runtime = lambda_runtime::run(service_fn(move |event: LambdaEvent<S::Event>| async move {
        Box::pin(function.handle(event.payload)).await.map_err(Diagnostic::from)
    }));
    Box::pin(runtime).await
}

impl LambdaStage for ExtractFunction {
    const STAGE: &'static str = "extract";
    type Event = aws_lambda_events::event::eventbridge::EventBridgeEvent<Value>;
    fn from_env() -> impl Future<Output = Result<Self, StageError>> {
        ExtractFunction::from_env()
    }
    fn handle(&self, event: Self::Event) -> impl Future<Output = Result<Value, StageError>> {
        ExtractFunction::handle(self, event)
    }
}

impl LambdaStage for TransformFunction {
    const STAGE: &'static str = "transform";
    type Event = aws_lambda_events::event::s3::S3Event;
    fn from_env() -> impl Future<Output = Result<Self, StageError>> {
        TransformFunction::from_env()
    }
    fn handle(&self, event: Self::Event) -> impl Future<Output = Result<Value, StageError>> {
        TransformFunction::handle(self, event)
    }
}

impl LambdaStage for LoadFunction {
    const STAGE: &'static str = "load";
    type Event = crate::handlers::LoadEvent;
    fn from_env() -> impl Future<Output = Result<Self, StageError>> {
        LoadFunction::from_env()
    }
    fn handle(&self, event: Self::Event) -> impl Future<Output = Result<Value, StageError>> {
        LoadFunction::handle_event(self, event)
    }
}
