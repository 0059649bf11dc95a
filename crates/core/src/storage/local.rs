use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{ObjectStore, StorageError};

/// A local directory standing in for a bucket: key `a/b/c` is the file `<root>/a/b/c`.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn io(&self, key: &str, operation: &'static str, err: std::io::Error) -> StorageError {
        StorageError::Io {
            location: self.location(),
            key: key.to_string(),
            operation,
            message: err.to_string(),
            retryable: false,
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        if key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(StorageError::Io {
                location: self.location(),
                key: key.to_string(),
                operation: "resolve",
                message: "keys must be relative paths without empty, '.' or '..' segments".into(),
                retryable: false,
            });
        }
        Ok(self.root.join(key))
    }

    fn put_blocking(&self, key: &str, body: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|e| self.io(key, "create directory", e))?;
        // Write a temporary file, then hard-link it into place: the link fails if the key
        // exists, so an object appears whole and is never replaced.
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::write(&tmp, body).map_err(|e| self.io(key, "write", e))?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let existing = std::fs::read(&path).map_err(|e| self.io(key, "read", e))?;
                if existing == body {
                    Ok(())
                } else {
                    Err(StorageError::Conflict { location: self.location(), key: key.to_string() })
                }
            }
            Err(e) => Err(self.io(key, "write", e)),
        }
    }

    fn walk(&self, dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), StorageError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io(rel, "list", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.io(rel, "list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                continue;
            }
            let key = format!("{rel}{name}");
            let file_type = entry.file_type().map_err(|e| self.io(&key, "list", e))?;
            if file_type.is_dir() {
                self.walk(&entry.path(), &format!("{key}/"), out)?;
            } else {
                out.push(key);
            }
        }
        Ok(())
    }

    /// The directory to walk for `prefix` and the key prefix of that directory.
    fn split_prefix(prefix: &str) -> (&str, &str) {
        match prefix.rfind('/') {
            Some(i) => (&prefix[..=i], &prefix[i + 1..]),
            None => ("", prefix),
        }
    }
}

#[async_trait]
impl ObjectStore for LocalDir {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        let this = self.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || this.put_blocking(&key, &body)).await.map_err(|e| StorageError::Io {
            location: self.location(),
            key: String::new(),
            operation: "write",
            message: e.to_string(),
            retryable: false,
        })?
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(StorageError::NotFound { location: self.location(), key: key.to_string() })
            }
            Err(e) => Err(self.io(key, "read", e)),
        }
    }

    async fn modified(&self, key: &str) -> Result<chrono::DateTime<chrono::Utc>, StorageError> {
        let path = self.path(key)?;
        match std::fs::metadata(&path).and_then(|m| m.modified()) {
            Ok(at) => Ok(at.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound { location: self.location(), key: key.to_string() })
            }
            Err(e) => Err(self.io(key, "stat", e)),
        }
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, StorageError> {
        let (dir, _) = Self::split_prefix(prefix);
        let mut keys = Vec::new();
        self.walk(&self.root.join(dir), dir, &mut keys)?;
        keys.retain(|k| k.starts_with(prefix) && start_after.is_none_or(|after| k.as_str() > after));
        keys.sort();
        Ok(keys)
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let (dir, _) = Self::split_prefix(prefix);
        let mut dirs = Vec::new();
        let entries = match std::fs::read_dir(self.root.join(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(dirs),
            Err(e) => return Err(self.io(prefix, "list", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.io(prefix, "list", e))?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let key = format!("{dir}{}/", entry.file_name().to_string_lossy());
                if key.starts_with(prefix) {
                    dirs.push(key);
                }
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}
