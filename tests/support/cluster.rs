//! A private PostgreSQL cluster (initdb + pg_ctl on a free loopback port, in a temp dir) for the
//! tests that need to copy, stop or rewind a database: failover and restore. As root the server
//! runs as `postgres` (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_postgres::{Client, NoTls};

pub struct PrivateCluster {
    pub dir: PathBuf,
    pub port: u16,
}

const SUPERUSER: &str = "onyx_test";

fn bindir() -> PathBuf {
    let out = Command::new("pg_config").arg("--bindir").output();
    if let Some(out) = out.ok().filter(|o| o.status.success()) {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    let found = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
        d.filter_map(Result::ok).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).max()
    });
    found.unwrap_or_else(|| panic!("initdb is missing: install PostgreSQL's server binaries (Debian: postgresql)"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Runs a PostgreSQL binary as the user that owns the cluster.
fn run(program: &str, args: &[&str]) {
    let path = bindir().join(program);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    let out = command.args(args).output().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn own(dir: &Path) {
    if is_root() {
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir).status().expect("chown");
        assert!(status.success(), "chown {}", dir.display());
    }
}

impl PrivateCluster {
    /// A new cluster, initialised and started.
    pub fn start_new(prefix: &str) -> PrivateCluster {
        let dir = std::env::temp_dir().join(super::unique(&format!("onyx-cluster-{prefix}-")));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        own(&dir);
        let data = dir.join("data");
        run("initdb", &["-D", data.to_str().expect("path"), "-A", "trust", "-U", SUPERUSER, "--no-sync", "-E", "UTF8"]);
        let cluster = PrivateCluster { dir, port: free_port() };
        cluster.start();
        cluster
    }

    /// A new cluster whose TCP logins need `password` (scram-sha-256), as on a laptop or a
    /// managed server; `url` still names no password.
    pub fn start_with_password(prefix: &str, password: &str) -> PrivateCluster {
        let dir = std::env::temp_dir().join(super::unique(&format!("onyx-cluster-{prefix}-")));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, password).expect("pwfile");
        own(&dir);
        let data = dir.join("data");
        let pwfile = format!("--pwfile={}", pwfile.display());
        run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("path"),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &pwfile,
                "-U",
                SUPERUSER,
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let cluster = PrivateCluster { dir, port: free_port() };
        cluster.start();
        cluster
    }

    /// The superuser's name.
    pub fn user(&self) -> &'static str {
        SUPERUSER
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    pub fn stop(&self) {
        run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// A cold copy of this (stopped) cluster's data directory, as a cluster of its own that
    /// serves on the same port when started: a restore from a file-level snapshot.
    pub fn cold_copy(&self) -> PrivateCluster {
        let dir = std::env::temp_dir().join(super::unique("onyx-cluster-copy-"));
        let status = Command::new("cp").arg("-a").arg(&self.dir).arg(&dir).status().expect("cp");
        assert!(status.success(), "copy {}", self.dir.display());
        PrivateCluster { dir, port: self.port }
    }

    /// A streaming standby of this (running) cluster made with `pg_basebackup -R`, not started:
    /// started later, after this one stopped, it stays at the backup's point — a lagging replica
    /// — until promoted. It serves on this cluster's port.
    pub fn base_backup(&self) -> PrivateCluster {
        let dir = std::env::temp_dir().join(super::unique("onyx-cluster-standby-"));
        std::fs::create_dir_all(&dir).expect("standby dir");
        own(&dir);
        let data = dir.join("data").to_string_lossy().into_owned();
        let port = self.port.to_string();
        run(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, "-D", &data, "-R", "-X", "stream", "-c", "fast"],
        );
        PrivateCluster { dir, port: self.port }
    }

    /// Promotes a standby to a primary (a new WAL timeline).
    pub fn promote(&self) {
        run("pg_ctl", &["-D", &self.data(), "-w", "promote"]);
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    pub async fn connect(&self, database: &str) -> Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), NoTls).await.expect("connect to the private cluster");
        tokio::spawn(connection);
        client
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new(bindir().join("pg_ctl")).args(["-D", &self.data(), "-m", "immediate", "stop"]).output();
        if is_root() {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bindir().join("pg_ctl"))
                .args(["-D", &self.data(), "-m", "immediate", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
