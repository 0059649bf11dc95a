//! The transform Lambda: an S3 event for a new ingestion run manifest → star-schema Parquet.
//! All logic is in `onyx_core::handlers`; this binary only hands it to the Lambda runtime.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    onyx_core::lambda::serve::<onyx_core::handlers::TransformFunction>().await
}
