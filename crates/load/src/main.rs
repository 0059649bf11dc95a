//! The load Lambda: an S3 event for a new processed run manifest → the warehouse.
//! All logic is in `onyx_core::handlers`; this binary only hands it to the Lambda runtime.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    onyx_core::lambda::serve::<onyx_core::handlers::LoadFunction>().await
}
