//! The two backends the contract tests run against, each in a throwaway database.
//!
//! PostgreSQL is found through `NIGHTSHIFT_TEST_POSTGRES_URL`. Each test gets a schema of its
//! own (`nightshift_test_<random>`), dropped when the test ends, passing or panicking, so tests
//! run in parallel and leave nothing behind.

use std::path::PathBuf;
use std::sync::Mutex;

use nightshift_store::{Store, StoreError};

pub const POSTGRES_URL_VAR: &str = "NIGHTSHIFT_TEST_POSTGRES_URL";

/// Declares, for each contract `fn name(backend: &Backend)`, a module `name` with one test per
/// backend: `name::sqlite` and `name::postgres`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&$crate::suite::backend::Backend::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(backend) = $crate::suite::backend::Backend::postgres() {
                    super::$name(&backend);
                }
            }
        }
    )*};
}

pub enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        schema: Box<PgSchema>,
        url: String,
    },
}

impl Backend {
    pub fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nightshift.db");
        Backend::Sqlite { _dir: dir, path }
    }

    /// A fresh schema in the test PostgreSQL, or `None` (with a note) when none is configured
    /// outside CI. In CI a missing server is a failure, not a skip.
    #[expect(
        clippy::print_stderr,
        reason = "tell the developer why a test did nothing"
    )]
    pub fn postgres() -> Option<Backend> {
        let Some(base) = postgres_url() else {
            eprintln!("note: {POSTGRES_URL_VAR} is not set; skipping the PostgreSQL run");
            return None;
        };
        let schema = PgSchema::create(&base);
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{}", schema.name);
        Some(Backend::Postgres {
            schema: Box::new(schema),
            url,
        })
    }

    /// Where `nightshift_store::open` finds this database.
    pub fn location(&self) -> String {
        match self {
            Backend::Sqlite { path, .. } => path.display().to_string(),
            Backend::Postgres { url, .. } => url.clone(),
        }
    }

    /// Opens another store on the same database, as another process would.
    pub fn open(&self) -> Box<dyn Store> {
        self.try_open().unwrap()
    }

    pub fn try_open(&self) -> Result<Box<dyn Store>, StoreError> {
        nightshift_store::open(&self.location())
    }

    /// Runs SQL on a connection of the test's own, behind the store's back.
    pub fn raw_execute(&self, sql: &str) -> Result<(), String> {
        match self {
            Backend::Sqlite { path, .. } => rusqlite::Connection::open(path)
                .and_then(|conn| conn.execute_batch(sql))
                .map_err(|e| e.to_string()),
            Backend::Postgres { schema, .. } => schema
                .client()
                .batch_execute(sql)
                .map_err(|e| format!("{e:?}")),
        }
    }

    /// Every byte the database holds about API tokens, as text, to grep for secrets.
    pub fn token_storage_dump(&self) -> String {
        match self {
            Backend::Sqlite { path, .. } => {
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let file = PathBuf::from(format!("{}{suffix}", path.display()));
                    if let Ok(bytes) = std::fs::read(&file) {
                        all.extend(bytes);
                    }
                }
                String::from_utf8_lossy(&all).into_owned()
            }
            Backend::Postgres { schema, .. } => schema
                .client()
                .query_one(
                    "SELECT COALESCE(string_agg(t::text, E'\\n'), '') FROM api_tokens t",
                    &[],
                )
                .unwrap()
                .get(0),
        }
    }
}

fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{POSTGRES_URL_VAR} is not set, but CI is: the PostgreSQL contract tests must run \
             in CI. Set it to a database the tests may create schemas in, e.g. \
             postgres://postgres@127.0.0.1:5432/test"
        ),
        _ => None,
    }
}

/// A schema of the test's own, dropped (with everything in it) when this guard is dropped.
pub struct PgSchema {
    pub name: String,
    client: Mutex<postgres::Client>,
}

impl PgSchema {
    fn create(base_url: &str) -> PgSchema {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).unwrap();
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("nightshift_test_{suffix}");
        let mut client = postgres::Client::connect(base_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}={base_url}: {e}"));
        client
            .batch_execute(&format!("CREATE SCHEMA {name}; SET search_path TO {name}"))
            .unwrap();
        PgSchema {
            name,
            client: Mutex::new(client),
        }
    }

    pub fn client(&self) -> std::sync::MutexGuard<'_, postgres::Client> {
        self.client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for PgSchema {
    #[expect(
        clippy::print_stderr,
        reason = "a leftover schema is worth a warning, not a panic"
    )]
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(e) = self.client().batch_execute(&sql) {
            eprintln!("warning: could not drop test schema {}: {e}", self.name);
        }
    }
}
