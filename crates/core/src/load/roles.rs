//! The warehouse's two login roles, created by `onyx migrate` when their passwords are given
//! (issue 13, item 3):
//!
//! - `onyx_loader`: what the load needs — usage and create on the schema, select/insert/update
//!   on its tables (the ledger and `refinery_schema_history` included), its sequences, and
//!   temporary tables (the load stages rows in `ON COMMIT DROP` temp tables);
//! - `onyx_reader`: read-only — usage on the schema and SELECT on every table and view, now and
//!   (default privileges) in later migrations. For Power BI and analysts.
//!
//! Passwords come from `ONYX_LOADER_PASSWORD_SECRET` / `ONYX_READER_PASSWORD_SECRET` (Secrets
//! Manager ids; the secret is the password, or JSON with a `password` field) or, locally,
//! `ONYX_LOADER_PASSWORD` / `ONYX_READER_PASSWORD`. A password never reaches a log or an error:
//! it is hashed here into a SCRAM-SHA-256 verifier (as `psql`'s `\password` does), and the
//! verifier is quoted by the server (`format('%L')`), so even the warehouse's `log_statement =
//! ddl` records only the verifier.

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::Client;

use crate::db::DbError;

pub const LOADER_ROLE: &str = "onyx_loader";
pub const READER_ROLE: &str = "onyx_reader";
pub const ENV_LOADER_PASSWORD: &str = "ONYX_LOADER_PASSWORD";
pub const ENV_LOADER_PASSWORD_SECRET: &str = "ONYX_LOADER_PASSWORD_SECRET";
pub const ENV_READER_PASSWORD: &str = "ONYX_READER_PASSWORD";
pub const ENV_READER_PASSWORD_SECRET: &str = "ONYX_READER_PASSWORD_SECRET";

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error(transparent)]
    Secret(#[from] DbError),
    #[error("{var} and {other} are both set: give the {role} password one way")]
    Ambiguous { role: &'static str, var: &'static str, other: &'static str },
    #[error("the {role} password is empty")]
    Empty { role: &'static str },
    #[error("setting up the warehouse role {role}: {reason}")]
    Database { role: &'static str, reason: String },
}

/// The passwords given for the two roles; a role without one is left as it is.
#[derive(Default)]
pub struct RolePasswords {
    pub loader: Option<SecretString>,
    pub reader: Option<SecretString>,
}

impl RolePasswords {
    /// From the environment: `…_PASSWORD_SECRET` (read from Secrets Manager) or `…_PASSWORD`.
    pub async fn from_env() -> Result<RolePasswords, RoleError> {
        Ok(RolePasswords {
            loader: password_from_env(LOADER_ROLE, ENV_LOADER_PASSWORD, ENV_LOADER_PASSWORD_SECRET).await?,
            reader: password_from_env(READER_ROLE, ENV_READER_PASSWORD, ENV_READER_PASSWORD_SECRET).await?,
        })
    }
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

async fn password_from_env(
    role: &'static str,
    plain_var: &'static str,
    secret_var: &'static str,
) -> Result<Option<SecretString>, RoleError> {
    let password = match (env(plain_var), env(secret_var)) {
        (Some(_), Some(_)) => return Err(RoleError::Ambiguous { role, var: plain_var, other: secret_var }),
        (Some(plain), None) => SecretString::from(plain),
        (None, Some(secret_id)) => password_in_secret(&crate::db::read_secret(role, &secret_id).await?),
        (None, None) => return Ok(None),
    };
    if password.expose_secret().is_empty() {
        return Err(RoleError::Empty { role });
    }
    Ok(Some(password))
}

/// The secret's string is the password, or JSON with a `password` field (the shape of the
/// warehouse secret).
pub fn password_in_secret(text: &str) -> SecretString {
    #[derive(serde::Deserialize)]
    struct Fields {
        password: SecretString,
    }
    match serde_json::from_str::<Fields>(text) {
        Ok(fields) => fields.password,
        Err(_) => SecretString::from(text.to_owned()),
    }
}

/// Creates or updates the roles whose passwords are given, and (re)grants their privileges on
/// the current schema. Idempotent; run after the migrations by the schema's owner (a role with
/// CREATEROLE, e.g. the RDS master user). Returns the roles it set up.
pub async fn ensure_roles(client: &Client, passwords: &RolePasswords) -> Result<Vec<&'static str>, RoleError> {
    let mut done = Vec::new();
    for (role, password, grants) in
        [(LOADER_ROLE, &passwords.loader, LOADER_GRANTS), (READER_ROLE, &passwords.reader, READER_GRANTS)]
    {
        let Some(password) = password else { continue };
        let failed = |e: tokio_postgres::Error| RoleError::Database { role, reason: crate::db::error_text(&e) };
        client
            .batch_execute(&format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                     CREATE ROLE {role} LOGIN;
                   END IF;
                 EXCEPTION WHEN duplicate_object THEN NULL; -- a concurrent migrate created it
                 END $$"
            ))
            .await
            .map_err(failed)?;
        // Only the verifier leaves this process; the server quotes it.
        let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
        let row = client
            .query_one("SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)", &[&role, &verifier])
            .await
            .map_err(failed)?;
        let alter: String = row.get(0);
        client.batch_execute(&alter).await.map_err(failed)?;
        let schema_and_db: (String, String) = {
            let row = client
                .query_one("SELECT quote_ident(current_schema()), quote_ident(current_database())", &[])
                .await
                .map_err(failed)?;
            (row.get(0), row.get(1))
        };
        let (schema, database) = schema_and_db;
        let sql = grants.replace("{schema}", &schema).replace("{database}", &database).replace("{role}", role);
        client.batch_execute(&sql).await.map_err(failed)?;
        tracing::info!(role, "warehouse role set up");
        done.push(role);
    }
    Ok(done)
}

const LOADER_GRANTS: &str = "
GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role};
GRANT USAGE, CREATE ON SCHEMA {schema} TO {role};
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} TO {role};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role};
";

const READER_GRANTS: &str = "
GRANT CONNECT ON DATABASE {database} TO {role};
GRANT USAGE ON SCHEMA {schema} TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role};
";
