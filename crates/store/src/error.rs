use std::path::{Path, PathBuf};

use nightshift_protocol::TaskId;
use rusqlite::ErrorCode;

/// Everything that can go wrong with the store; each message says what to do next.
///
/// Variants that name a `path` carry the database's location: a file path for SQLite, the URL
/// (password hidden) for PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "could not create the directory {path} for the task database: {source}\n\
         hint: check that the parent directory exists and is writable, or choose another data directory"
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the task database {path} stayed locked by another process past the busy timeout\n\
         hint: another nightshift process is probably writing to it; wait for it or stop it, then retry"
    )]
    Locked { path: PathBuf },

    #[error(
        "the task database {path} is corrupt or is not a nightshift database ({detail})\n\
         hint: move the file aside (keep it for inspection) and run again to start a fresh database"
    )]
    Corrupt { path: PathBuf, detail: String },

    #[error(
        "the task database {path} has schema version {found}, newer than the {supported} this \
         nightshift understands\nhint: upgrade nightshift, or point it at another data directory"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error(
        "no task with id {id} in the task database\n\
         hint: run `nightshift ls` to see the known task ids"
    )]
    UnknownTask { id: TaskId },

    #[error("a task with id {id} already exists in the task database; task ids must be unique")]
    DuplicateTask { id: TaskId },

    #[error(
        "stored {what} in the task database {path} could not be read back: {source}\n\
         hint: the database was probably written by a different nightshift version; upgrade nightshift"
    )]
    Decode {
        path: PathBuf,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("could not serialize {what} for the task database: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "SQLite error on the task database {path}: {source}\n\
         hint: check that the file and its directory are writable and the disk is not full"
    )]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "`{url}` is not a usable PostgreSQL URL: {source}\n\
         hint: write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    )]
    PostgresUrl {
        url: String,
        #[source]
        source: postgres::Error,
    },

    #[error(
        "could not connect to the PostgreSQL task database at {url}: {source}\n\
         hint: check that the server is running and reachable, that the database exists and that \
         the user may log in to it"
    )]
    PostgresConnect {
        url: String,
        #[source]
        source: postgres::Error,
    },

    #[error(
        "PostgreSQL error on the task database at {url}: {source}\n\
         hint: check that the server is up and that the user may create and write tables in the \
         database (or in the schema named by `options=-csearch_path=...`)"
    )]
    Postgres {
        url: String,
        #[source]
        source: postgres::Error,
    },

    #[error(
        "the connection thread of the PostgreSQL task database at {url} has stopped\n\
         hint: this is a bug in nightshift (the thread panicked); restart the process and report it"
    )]
    PostgresGone { url: String },

    #[error(
        "could not start a connection thread for the PostgreSQL task database at {url}: {source}\n\
         hint: the process may have hit its thread limit; raise it or open fewer connections"
    )]
    PostgresThread {
        url: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "could not get random bytes from the operating system for a new API token: {detail}\n\
         hint: check that /dev/urandom (or getrandom(2)) is available to this process"
    )]
    Random { detail: String },
}

impl StoreError {
    /// Turns a SQLite error into the variant that tells the user what to do about it.
    pub(crate) fn sqlite(path: &Path, source: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Locked { path }
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
                path,
                detail: source.to_string(),
            },
            _ => StoreError::Sqlite { path, source },
        }
    }

    /// Turns a PostgreSQL error into a variant; `url` must already have its password hidden.
    pub(crate) fn postgres(url: &str, source: postgres::Error) -> StoreError {
        StoreError::Postgres {
            url: url.to_owned(),
            source,
        }
    }

    pub(crate) fn decode(
        path: &Path,
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Decode {
            path: path.to_path_buf(),
            what: what.into(),
            source: Box::new(source),
        }
    }
}
