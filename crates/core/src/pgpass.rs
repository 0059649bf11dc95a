//! The password libpq would use for a connection whose URL has none: `PGPASSWORD`, else the
//! password file (`PGPASSFILE`, default `~/.pgpass`), so `postgres://user@host/db` works on a
//! password-authenticated server exactly as it does for `psql`. The format and rules are libpq's
//! (<https://www.postgresql.org/docs/current/libpq-pgpass.html>): `host:port:db:user:password`
//! lines, `*` matches anything, `\` escapes `:` and `\`, the first matching line wins, and a file
//! that others may read is ignored. Written here rather than taken from a crate: the crates that
//! read it pull in the synchronous `postgres` client or a whole proxy.

use std::path::{Path, PathBuf};

use tokio_postgres::Config;
use tokio_postgres::config::Host;

/// Fills in `config`'s password from `PGPASSWORD` or the password file when it has none.
pub fn fill_password(config: &mut Config) {
    if config.get_password().is_some() {
        return;
    }
    if let Some(password) = lookup(config, |var| std::env::var(var).ok(), home()) {
        config.password(password);
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// The password for `config` from `env` (`PGPASSWORD`, `PGPASSFILE`) or the password file in
/// `home`.
pub fn lookup(config: &Config, env: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Option<String> {
    if let Some(password) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
        return Some(password);
    }
    let path = env("PGPASSFILE").map(PathBuf::from).or_else(|| home.map(|h| h.join(".pgpass")))?;
    let text = readable_file(&path)?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        // A socket directory matches "localhost" (libpq's rule), as does no host at all.
        _ => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = config.get_user()?;
    let database = config.get_dbname().unwrap_or(user);
    find(&text, [host.as_str(), port.as_str(), database, user])
}

/// The file's text, unless it is missing or others may read it (then libpq ignores it too, and
/// says so).
fn readable_file(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "password file has group or world access; ignored (chmod 0600 it, as libpq requires)"
            );
            return None;
        }
    }
    std::fs::read_to_string(path).ok()
}

/// The password of the first line whose four fields match `wanted` (host, port, database, user).
fn find(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).find_map(|line| {
        let fields = split(line);
        let [host, port, database, user, password] = <[String; 5]>::try_from(fields).ok()?;
        let matches =
            [host, port, database, user].iter().zip(wanted).all(|(field, value)| field == "*" || field == value);
        matches.then_some(password)
    })
}

/// A line's fields: split at unescaped `:`, the escapes removed; the fifth field takes the rest.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("one field").extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn config(url: &str) -> Config {
        Config::from_str(url).expect("url")
    }

    #[test]
    fn pgpassword_wins_then_the_first_matching_line() {
        let dir = std::env::temp_dir().join(format!("onyx-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join(".pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:onyx:nope\n127.0.0.1:5433:*:onyx:wrong-port\n127.0.0.1:*:totesys:onyx:pa\\:ss\\\\word\n*:*:*:onyx:fallback\n",
        )
        .expect("write");
        #[cfg(unix)]
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
        let env = |password: Option<&'static str>| {
            move |var: &str| (var == "PGPASSWORD").then_some(password).flatten().map(String::from)
        };
        let url = config("postgres://onyx@127.0.0.1:5432/totesys");
        assert_eq!(lookup(&url, env(None), Some(dir.clone())).as_deref(), Some("pa:ss\\word"));
        assert_eq!(lookup(&url, env(Some("from-env")), Some(dir.clone())).as_deref(), Some("from-env"));
        let elsewhere = config("postgres://onyx@127.0.0.1:5432/warehouse");
        assert_eq!(lookup(&elsewhere, env(None), Some(dir.clone())).as_deref(), Some("fallback"));
        let someone_else = config("postgres://admin@127.0.0.1:5432/totesys");
        assert_eq!(lookup(&someone_else, env(None), Some(dir.clone())), None);
        // Readable by others: ignored, as libpq does.
        #[cfg(unix)]
        {
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).expect("chmod");
            assert_eq!(lookup(&url, env(None), Some(dir.clone())), None);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
