//! Object storage: the ingestion and processed "buckets", either an S3 bucket (with an optional
//! key prefix) or a local directory, behind one small trait.

mod local;
mod s3;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

pub use local::LocalDir;
pub use s3::{S3Store, client as s3_client};

/// What went wrong with which object. Every variant names the location and key.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {key} not found in {location}")]
    NotFound { location: String, key: String },
    #[error(
        "object {key} in {location} already exists with different content; objects are immutable, so it was not overwritten"
    )]
    Conflict { location: String, key: String },
    #[error("{operation} of {key} in {location} failed: {message}")]
    Io {
        location: String,
        key: String,
        operation: &'static str,
        message: String,
        /// Whether trying again later may succeed (network trouble, throttling).
        retryable: bool,
    },
    #[error("invalid location {location:?}: {reason}")]
    BadLocation { location: String, reason: String },
    #[error("{location} does not exist: {reason}")]
    Missing { location: String, reason: String },
}

impl StorageError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Io { retryable: true, .. })
    }
}

/// A bucket of immutable objects addressed by `/`-separated keys.
///
/// Contract: writes create objects and never change them. [`ObjectStore::put`] may be called
/// twice for the same key (a retried run): writing the same bytes again succeeds without change,
/// different bytes fail with [`StorageError::Conflict`]. A single `put` is atomic: readers see the
/// whole object or none of it. Listings are in lexicographic key order.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Creates `key` holding `body` (see the trait's contract for repeated calls).
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError>;

    /// Reads a whole object.
    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError>;

    /// Lists every key that starts with `prefix` and sorts after `start_after`, in order.
    async fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, StorageError>;

    /// When the store wrote `key`, by the store's own clock (S3's `Last-Modified`, a file's
    /// modification time): ages compared on it do not depend on the clocks of the machines
    /// that wrote or read the object.
    async fn modified(&self, key: &str) -> Result<chrono::DateTime<chrono::Utc>, StorageError>;

    /// Lists the immediate "sub-directories" of `prefix` (which ends in `/`): the distinct
    /// `prefix + segment + "/"` of the keys below it, in order.
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Where the objects live, e.g. `s3://bucket/prefix` or a directory path (never a secret).
    fn location(&self) -> String;
}

pub type Store = Arc<dyn ObjectStore>;

/// A configured place for objects: a local directory or `s3://bucket[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    pub fn parse(text: &str) -> Result<Location, StorageError> {
        let bad = |reason: &str| StorageError::BadLocation { location: text.to_string(), reason: reason.to_string() };
        if text.trim().is_empty() {
            return Err(bad("it is empty; give a directory or s3://bucket/prefix"));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("the bucket name is missing"));
            }
            let prefix = prefix.trim_matches('/');
            let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix });
        }
        if text.contains("://") {
            return Err(bad("only local directories and s3:// locations are supported"));
        }
        Ok(Location::Local(text.into()))
    }

    /// Opens a location a command only reads: it must exist already, so that a mistyped
    /// directory or bucket is an error and never reads as an empty bucket ("nothing to do").
    /// The S3 check is the bucket's (`HeadBucket`); a prefix may be empty.
    pub async fn open_existing(&self) -> Result<Store, StorageError> {
        let missing = |reason: &str| StorageError::Missing { location: self.to_string(), reason: reason.into() };
        match self {
            Location::Local(dir) if !dir.is_dir() => {
                return Err(missing("no such directory (nothing was ever written there; a mistyped path?)"));
            }
            Location::Local(_) => {}
            Location::S3 { bucket, .. } => {
                let head = s3::client().await.head_bucket().bucket(bucket).send().await;
                if let Err(error) = head
                    && error.as_service_error().is_some_and(|e| e.is_not_found())
                {
                    return Err(missing("no such bucket (a mistyped name, or another account or region?)"));
                }
                // Other answers (no permission to HeadBucket, say) are left to the reads, whose
                // errors name the object.
            }
        }
        self.open().await
    }

    /// Opens the location. S3 clients come from the standard AWS configuration chain (and
    /// `AWS_ENDPOINT_URL` for emulators).
    pub async fn open(&self) -> Result<Store, StorageError> {
        match self {
            Location::Local(dir) => Ok(Arc::new(LocalDir::new(dir.clone()))),
            Location::S3 { bucket, prefix } => {
                let client = s3::client().await;
                Ok(Arc::new(S3Store::new(client, bucket.clone(), prefix.clone())))
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(dir) => write!(f, "{}", dir.display()),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The run ids of the run manifests in a bucket, oldest first — only those after run `after`
/// when given, found with one listing that starts past it, so the cost follows the runs returned,
/// not the length of the history.
pub async fn manifest_run_ids(store: &dyn ObjectStore, after: Option<&str>) -> Result<Vec<String>, StorageError> {
    let start = after.map(crate::keys::manifest);
    let keys = store.list(crate::keys::MANIFEST_PREFIX, start.as_deref()).await?;
    Ok(keys.iter().filter_map(|k| crate::keys::run_id_of_manifest(k)).map(str::to_string).collect())
}

/// The key of the newest run manifest in a bucket, if any.
pub async fn latest_manifest_key(store: &dyn ObjectStore) -> Result<Option<String>, StorageError> {
    latest_key(store, crate::keys::MANIFEST_PREFIX, crate::keys::MANIFEST_SUFFIX).await
}

/// The greatest key under `prefix` whose name ends in `suffix`, found by walking the
/// `YYYY/MM/DD/` partitions from the newest: a handful of listings however long the history.
pub async fn latest_key(store: &dyn ObjectStore, prefix: &str, suffix: &str) -> Result<Option<String>, StorageError> {
    latest_in(store, prefix, suffix, 3).await
}

fn latest_in<'a>(
    store: &'a dyn ObjectStore,
    prefix: &'a str,
    suffix: &'a str,
    depth: usize,
) -> futures_util::future::BoxFuture<'a, Result<Option<String>, StorageError>> {
    Box::pin(async move {
        if depth == 0 {
            let keys = store.list(prefix, None).await?;
            return Ok(keys.into_iter().rev().find(|k| k.ends_with(suffix)));
        }
        // Newest partition first; fall back to older ones only if a partition holds no match.
        for dir in store.list_dirs(prefix).await?.into_iter().rev() {
            if let Some(key) = latest_in(store, &dir, suffix, depth - 1).await? {
                return Ok(Some(key));
            }
        }
        Ok(None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://b/p/q/").expect("valid location"),
            Location::S3 { bucket: "b".into(), prefix: "p/q/".into() }
        );
        assert_eq!(
            Location::parse("s3://b").expect("valid location"),
            Location::S3 { bucket: "b".into(), prefix: "".into() }
        );
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("gs://x").is_err());
        assert_eq!(Location::parse("/tmp/x").expect("valid location"), Location::Local("/tmp/x".into()));
    }
}
