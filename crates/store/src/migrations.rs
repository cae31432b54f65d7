//! The schema, as an ordered list of migrations. Append new ones; never edit a shipped one:
//! a database records how many it has applied in `schema_version`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: tasks and their append-only events.
    "CREATE TABLE tasks (
        id TEXT PRIMARY KEY NOT NULL,
        spec_json TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        result_json TEXT
    );
    CREATE INDEX tasks_by_created_at ON tasks (created_at);
    CREATE TABLE events (
        task_id TEXT NOT NULL REFERENCES tasks (id),
        seq INTEGER NOT NULL,
        ts TEXT NOT NULL,
        type TEXT NOT NULL,
        body_json TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
    ) WITHOUT ROWID;
    -- Events are the record of what happened: the database itself refuses to rewrite them.
    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;",
];

/// What [`migrate`] found: the schema version is newer than this build knows.
pub(crate) struct TooNew {
    pub(crate) found: i64,
    pub(crate) supported: i64,
}

/// Brings the schema up to date in one immediate transaction, so two processes opening the
/// same new database at once cannot both apply a migration.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<Result<(), TooNew>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")?;
    let current: Option<i64> = tx
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .optional()?;
    let current = current.unwrap_or(0);
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > supported {
        return Ok(Err(TooNew {
            found: current,
            supported,
        }));
    }
    // `current` is in 0..=supported here, so the conversion cannot fail.
    let applied = usize::try_from(current).unwrap_or(0);
    for migration in &MIGRATIONS[applied..] {
        tx.execute_batch(migration)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [supported],
    )?;
    tx.commit()?;
    Ok(Ok(()))
}
