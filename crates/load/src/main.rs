//! The load Lambda: an S3 event for a new processed run manifest → the warehouse
//! (see `onyx_core::handlers`).

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use onyx_core::handlers::{LoadFunction, StageError};

#[derive(Debug)]
struct Failure(StageError);

impl From<Failure> for Diagnostic {
    fn from(Failure(error): Failure) -> Diagnostic {
        Diagnostic { error_type: error.error_type().into(), error_message: error.to_string() }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    onyx_core::telemetry::init(true);
    let function = match LoadFunction::from_env().await {
        Ok(function) => function,
        Err(error) => {
            tracing::error!(stage = "load", error = %error.message, "configuration is invalid");
            return Err(error.into());
        }
    };
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        function.handle(event.payload).await.map_err(Failure)
    }))
    .await
}
