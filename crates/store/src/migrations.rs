//! The schema, as one ordered list of migrations per backend. Append new ones; never edit a
//! shipped one: a database records how many it has applied in `schema_version`.
//!
//! Both lists have the same length and migration `i` means the same change in both; only the
//! SQL dialect differs (SQLite orders tasks by `rowid`, PostgreSQL by an identity column `n`;
//! SQLite keeps lease expiry as Unix milliseconds from the local clock, PostgreSQL as a
//! `timestamptz` from the server's clock, so workers on several machines agree on it).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// Migration `i` brings a SQLite schema from version `i` to `i + 1`.
pub(crate) const SQLITE: &[&str] = &[
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
    // 2: the queue (leases), columns to filter the task list by, and API tokens.
    "ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
    ALTER TABLE tasks ADD COLUMN lease_expires_ms INTEGER;
    ALTER TABLE tasks ADD COLUMN repo TEXT NOT NULL DEFAULT '';
    UPDATE tasks SET repo = COALESCE(json_extract(spec_json, '$.repo'), '');
    CREATE INDEX tasks_by_repo ON tasks (repo, created_at);
    CREATE INDEX tasks_by_status ON tasks (status, created_at);
    CREATE TABLE task_labels (
        task_id TEXT NOT NULL REFERENCES tasks (id),
        label TEXT NOT NULL,
        PRIMARY KEY (label, task_id)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO task_labels (task_id, label)
        SELECT tasks.id, labels.value FROM tasks, json_each(tasks.spec_json, '$.labels') AS labels;
    -- Only the SHA-256 of a token is kept: a copy of the database does not let anyone in.
    CREATE TABLE api_tokens (
        sha256 TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );",
];

/// Migration `i` brings a PostgreSQL schema from version `i` to `i + 1`.
pub(crate) const POSTGRES: &[&str] = &[
    // 1: tasks and their append-only events.
    "CREATE TABLE tasks (
        n BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
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
        seq BIGINT NOT NULL,
        ts TEXT NOT NULL,
        type TEXT NOT NULL,
        body_json TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
    );
    -- Events are the record of what happened: the database itself refuses to rewrite them.
    CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
    CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();",
    // 2: the queue (leases), columns to filter the task list by, and API tokens.
    "ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
    ALTER TABLE tasks ADD COLUMN lease_expires_at TIMESTAMPTZ;
    ALTER TABLE tasks ADD COLUMN repo TEXT NOT NULL DEFAULT '';
    UPDATE tasks SET repo = COALESCE(spec_json::jsonb ->> 'repo', '');
    CREATE INDEX tasks_by_repo ON tasks (repo, created_at);
    CREATE INDEX tasks_by_status ON tasks (status, created_at);
    CREATE TABLE task_labels (
        task_id TEXT NOT NULL REFERENCES tasks (id),
        label TEXT NOT NULL,
        PRIMARY KEY (label, task_id)
    );
    INSERT INTO task_labels (task_id, label)
        SELECT id, jsonb_array_elements_text(COALESCE(spec_json::jsonb -> 'labels', '[]'))
        FROM tasks
        ON CONFLICT DO NOTHING;
    -- Only the SHA-256 of a token is kept: a copy of the database does not let anyone in.
    CREATE TABLE api_tokens (
        sha256 TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );",
];

/// What a migration run found: the schema version is newer than this build knows.
pub(crate) struct TooNew {
    pub(crate) found: i64,
    pub(crate) supported: i64,
}

fn supported(list: &[&str]) -> i64 {
    i64::try_from(list.len()).unwrap_or(i64::MAX)
}

/// The migrations still to apply on top of `current`, or [`TooNew`].
fn pending<'a>(list: &'a [&'a str], current: i64) -> Result<&'a [&'a str], TooNew> {
    let supported = supported(list);
    if current > supported {
        return Err(TooNew {
            found: current,
            supported,
        });
    }
    // `current` is in 0..=supported here (a negative version is treated as none applied).
    let applied = usize::try_from(current).unwrap_or(0);
    Ok(&list[applied..])
}

/// Brings a SQLite schema up to date in one immediate transaction, so two processes opening
/// the same new database at once cannot both apply a migration.
pub(crate) fn migrate_sqlite(conn: &mut Connection) -> rusqlite::Result<Result<(), TooNew>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")?;
    let current: Option<i64> = tx
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .optional()?;
    let pending = match pending(SQLITE, current.unwrap_or(0)) {
        Ok(pending) => pending,
        Err(too_new) => return Ok(Err(too_new)),
    };
    for migration in pending {
        tx.execute_batch(migration)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [supported(SQLITE)],
    )?;
    tx.commit()?;
    Ok(Ok(()))
}

/// Brings a PostgreSQL schema up to date in one transaction. An advisory lock keyed on the
/// schema serialises processes that open the same new database at once (PostgreSQL's DDL is
/// transactional, so a failed migration leaves nothing half-applied).
pub(crate) fn migrate_postgres(
    client: &mut postgres::Client,
) -> Result<Result<(), TooNew>, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(1853318516, hashtext(COALESCE(current_schema(), '')))",
        &[],
    )?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);")?;
    let current: Option<i64> = tx
        .query_opt("SELECT version FROM schema_version", &[])?
        .map(|row| row.get(0));
    let pending = match pending(POSTGRES, current.unwrap_or(0)) {
        Ok(pending) => pending,
        Err(too_new) => return Ok(Err(too_new)),
    };
    for migration in pending {
        tx.batch_execute(migration)?;
    }
    tx.execute("DELETE FROM schema_version", &[])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&supported(POSTGRES)],
    )?;
    tx.commit()?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_the_same_number_of_migrations() {
        assert_eq!(super::SQLITE.len(), super::POSTGRES.len());
    }
}
