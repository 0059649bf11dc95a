use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::{ObjectStore, StorageError};

/// Builds an S3 client from the standard AWS configuration chain. When `AWS_ENDPOINT_URL` points
/// at an emulator, path-style addressing is used (emulators rarely resolve bucket subdomains).
pub async fn client() -> aws_sdk_s3::Client {
    let config = aws_config::load_from_env().await;
    let force_path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let s3_config = aws_sdk_s3::config::Builder::from(&config).force_path_style(force_path_style).build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// An S3 bucket, with every key under `prefix`.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: String, prefix: String) -> Self {
        Self { client, bucket, prefix }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error<E, R>(&self, key: &str, operation: &'static str, err: SdkError<E, R>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let retryable =
            matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
                || matches!(err.code(), Some("SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout"));
        let message = match err.code() {
            Some(code) => format!("{code}: {}", err.message().unwrap_or("no message")),
            None => aws_sdk_s3::error::DisplayErrorContext(&err).to_string(),
        };
        StorageError::Io { location: self.location(), key: key.to_string(), operation, message, retryable }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .if_none_match("*")
            .body(ByteStream::from(body.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.code(), Some("PreconditionFailed" | "ConditionalRequestConflict")) => {
                // The key exists: a retried write of the same bytes is fine, anything else is not.
                if self.get(key).await? == body {
                    Ok(())
                } else {
                    Err(StorageError::Conflict { location: self.location(), key: key.to_string() })
                }
            }
            Err(err) => Err(self.error(key, "write", err)),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let result = self.client.get_object().bucket(&self.bucket).key(self.full(key)).send().await;
        let output = match result {
            Ok(output) => output,
            Err(err) if matches!(err.code(), Some("NoSuchKey")) => {
                return Err(StorageError::NotFound { location: self.location(), key: key.to_string() });
            }
            Err(err) => return Err(self.error(key, "read", err)),
        };
        let bytes = output.body.collect().await.map_err(|e| StorageError::Io {
            location: self.location(),
            key: key.to_string(),
            operation: "read",
            message: e.to_string(),
            retryable: true,
        })?;
        Ok(bytes.to_vec())
    }

    async fn modified(&self, key: &str) -> Result<chrono::DateTime<chrono::Utc>, StorageError> {
        let result = self.client.head_object().bucket(&self.bucket).key(self.full(key)).send().await;
        let output = match result {
            Ok(output) => output,
            Err(err) if matches!(err.code(), Some("NotFound" | "NoSuchKey")) => {
                return Err(StorageError::NotFound { location: self.location(), key: key.to_string() });
            }
            Err(err) => return Err(self.error(key, "stat", err)),
        };
        output.last_modified().and_then(|at| chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())).ok_or_else(
            || StorageError::Io {
                location: self.location(),
                key: key.to_string(),
                operation: "stat",
                message: "no Last-Modified in the response".into(),
                retryable: false,
            },
        )
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, StorageError> {
        let mut request = self.client.list_objects_v2().bucket(&self.bucket).prefix(self.full(prefix));
        if let Some(after) = start_after {
            request = request.start_after(self.full(after));
        }
        let mut pages = request.into_paginator().send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, "list", e))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(key.to_string());
                }
            }
        }
        Ok(keys)
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full(prefix))
            .delimiter("/")
            .into_paginator()
            .send();
        let mut dirs = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, "list", e))?;
            for common in page.common_prefixes() {
                if let Some(dir) = common.prefix().and_then(|p| p.strip_prefix(&self.prefix)) {
                    dirs.push(dir.to_string());
                }
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}
