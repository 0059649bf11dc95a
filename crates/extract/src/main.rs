//! The extract Lambda: an EventBridge schedule → one extraction run.
//! All logic is in `onyx_core::handlers`; this binary only hands it to the Lambda runtime.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    onyx_core::lambda::serve::<onyx_core::handlers::ExtractFunction>().await
}
