//! The embedded backend: one SQLite file, WAL mode, one connection behind a mutex.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nightshift_protocol::{Event, EventKind, TaskId, TaskSpec, TaskStatus};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::record::{
    RawTask, TASK_COLUMNS, encode_event, encode_spec, hash_token, millis, new_token, now,
    now_millis, unfinished_statuses,
};
use crate::{Store, StoreError, TaskFilter, TaskRecord, migrations};

/// How long a write waits for another process holding the database lock before giving up.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Tasks and their events in one SQLite database.
///
/// `Send + Sync`: one connection behind a mutex, so share it with an `Arc`. Other processes
/// may open the same file; SQLite's locks (and the busy timeout) keep them consistent.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens or creates the database (parent dir created), WAL mode, busy_timeout, runs migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::sqlite(path, e))?;
        Self::init(conn, path.to_path_buf())
    }

    /// A private database that lives as long as the `SqliteStore`; for tests and dry runs.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| StoreError::sqlite(&path, e))?;
        Self::init(conn, path)
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<SqliteStore, StoreError> {
        let sql = |e| StoreError::sqlite(&path, e);
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(sql)?;
        // WAL lets readers (`nightshift logs -f`) follow a task while a worker writes to it.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(sql)?;
        // In WAL mode NORMAL still makes every committed append survive the process being
        // killed (kill -9, a crash); only an OS crash or power cut can lose the last few. FULL
        // flushed the disk on every event: ~4 ms each here, which made the daemon's event
        // delivery and queue latency disk-bound (docs/BENCHMARKS.md, daemon throughput).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql)?;
        if let Err(too_new) = migrations::migrate_sqlite(&mut conn).map_err(sql)? {
            return Err(StoreError::TooNew {
                path,
                found: too_new.found,
                supported: too_new.supported,
            });
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file this store writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes how long a write waits for another process's lock before failing with
    /// [`StoreError::Locked`].
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), StoreError> {
        self.conn()
            .busy_timeout(timeout)
            .map_err(|e| self.sql_error(e))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held leaves the connection usable: any open transaction
        // was rolled back when it was dropped during unwinding. So poisoning is not fatal.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An IMMEDIATE transaction: it takes the write lock up front, so what it reads cannot
    /// change under it before it writes, even from another process.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql_error(e))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| self.sql_error(e))?;
        Ok(value)
    }

    fn insert(
        &self,
        id: &TaskId,
        spec: &TaskSpec,
        lease: Option<(&str, Duration)>,
    ) -> Result<(), StoreError> {
        let spec_json = encode_spec(spec)?;
        let now = now();
        let (owner, expires) = match lease {
            Some((worker, lease)) => (
                Some(worker),
                Some(now_millis().saturating_add(millis(lease))),
            ),
            None => (None, None),
        };
        self.write(|tx| {
            let inserted = tx
                .execute(
                    "INSERT INTO tasks (id, spec_json, status, created_at, updated_at, repo,
                                        lease_owner, lease_expires_ms)
                     VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)
                     ON CONFLICT (id) DO NOTHING",
                    params![
                        id.as_str(),
                        spec_json,
                        TaskStatus::Queued.as_str(),
                        now,
                        spec.repo,
                        owner,
                        expires
                    ],
                )
                .map_err(|e| self.sql_error(e))?;
            if inserted == 0 {
                return Err(StoreError::DuplicateTask { id: id.clone() });
            }
            for label in &spec.labels {
                tx.execute(
                    "INSERT OR IGNORE INTO task_labels (task_id, label) VALUES (?1, ?2)",
                    params![id.as_str(), label],
                )
                .map_err(|e| self.sql_error(e))?;
            }
            Ok(())
        })
    }

    fn sql_error(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }
}

impl Store for SqliteStore {
    fn insert_task(&self, id: &TaskId, spec: &TaskSpec) -> Result<(), StoreError> {
        self.insert(id, spec, None)
    }

    fn insert_claimed_task(
        &self,
        id: &TaskId,
        spec: &TaskSpec,
        worker: &str,
        lease: Duration,
    ) -> Result<(), StoreError> {
        self.insert(id, spec, Some((worker, lease)))
    }

    fn append_event(&self, task_id: &TaskId, kind: EventKind) -> Result<Event, StoreError> {
        let encoded = encode_event(&kind)?;
        // Inside the write lock, so reading MAX(seq) and inserting the next one cannot
        // interleave with another process doing the same.
        let (seq, ts) = self.write(|tx| {
            let ts = now();
            let updated = tx
                .execute(
                    "UPDATE tasks SET
                        updated_at = ?2,
                        status = COALESCE(?3, status),
                        result_json = COALESCE(?4, result_json)
                     WHERE id = ?1",
                    params![task_id.as_str(), ts, encoded.status, encoded.result_json],
                )
                .map_err(|e| self.sql_error(e))?;
            if updated == 0 {
                return Err(StoreError::UnknownTask {
                    id: task_id.clone(),
                });
            }
            let last: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM events WHERE task_id = ?1",
                    [task_id.as_str()],
                    |row| row.get(0),
                )
                .map_err(|e| self.sql_error(e))?;
            let seq = last + 1;
            tx.execute(
                "INSERT INTO events (task_id, seq, ts, type, body_json)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    task_id.as_str(),
                    seq,
                    ts,
                    encoded.kind_name,
                    encoded.body_json
                ],
            )
            .map_err(|e| self.sql_error(e))?;
            Ok((seq, ts))
        })?;
        Ok(Event {
            task_id: task_id.clone(),
            seq: u64::try_from(seq).map_err(|e| StoreError::decode(&self.path, "event seq", e))?,
            ts,
            kind,
        })
    }

    fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
                [id.as_str()],
                raw_task,
            )
            .optional()
            .map_err(|e| self.sql_error(e))?;
        row.map(|raw| raw.decode(&self.path)).transpose()
    }

    fn events(&self, id: &TaskId, after_seq: u64) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn();
        let exists = conn
            .query_row("SELECT 1 FROM tasks WHERE id = ?1", [id.as_str()], |_| {
                Ok(())
            })
            .optional()
            .map_err(|e| self.sql_error(e))?;
        if exists.is_none() {
            return Err(StoreError::UnknownTask { id: id.clone() });
        }
        // Seqs beyond i64::MAX cannot exist, so clamping asks for "nothing after the end".
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, ts, body_json FROM events
                 WHERE task_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(|e| self.sql_error(e))?;
        let rows = stmt
            .query_map(params![id.as_str(), after], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.sql_error(e))?;
        let mut events = Vec::new();
        for row in rows {
            let (seq, ts, body) = row.map_err(|e| self.sql_error(e))?;
            let what = || format!("event {seq} of task {id}");
            let kind: EventKind = serde_json::from_str(&body)
                .map_err(|e| StoreError::decode(&self.path, what(), e))?;
            let seq = u64::try_from(seq).map_err(|e| StoreError::decode(&self.path, what(), e))?;
            events.push(Event {
                task_id: id.clone(),
                seq,
                ts,
                kind,
            });
        }
        Ok(events)
    }

    fn list_tasks_filtered(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.conn();
        let cursor: Option<(String, i64)> = match &filter.before {
            None => None,
            Some(before) => Some(
                conn.query_row(
                    "SELECT created_at, rowid FROM tasks WHERE id = ?1",
                    [before.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(|e| self.sql_error(e))?
                .ok_or_else(|| StoreError::UnknownTask { id: before.clone() })?,
            ),
        };
        // SQLite cannot bind a list, so the statuses travel as a JSON array.
        let statuses = (!filter.statuses.is_empty()).then(|| {
            let names: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
            serde_json::Value::from(names).to_string()
        });
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks
                 WHERE (?1 IS NULL OR status IN (SELECT value FROM json_each(?1)))
                   AND (?2 IS NULL OR repo = ?2)
                   AND (?3 IS NULL OR EXISTS (
                        SELECT 1 FROM task_labels WHERE task_id = tasks.id AND label = ?3))
                   AND (?4 IS NULL OR (created_at, rowid) < (?4, ?5))
                 ORDER BY created_at DESC, rowid DESC LIMIT ?6"
            ))
            .map_err(|e| self.sql_error(e))?;
        let rows = stmt
            .query_map(
                params![
                    statuses,
                    filter.repo,
                    filter.label,
                    cursor.as_ref().map(|c| &c.0),
                    cursor.as_ref().map(|c| c.1),
                    limit
                ],
                raw_task,
            )
            .map_err(|e| self.sql_error(e))?;
        let mut tasks = Vec::new();
        for row in rows {
            let raw = row.map_err(|e| self.sql_error(e))?;
            tasks.push(raw.decode(&self.path)?);
        }
        Ok(tasks)
    }

    fn claim_next(&self, worker: &str, lease: Duration) -> Result<Option<TaskRecord>, StoreError> {
        let unfinished = serde_json::Value::from(unfinished_statuses()).to_string();
        let raw = self.write(|tx| {
            let now = now_millis();
            let id: Option<String> = tx
                .query_row(
                    "SELECT id FROM tasks
                     WHERE status IN (SELECT value FROM json_each(?1))
                       AND (lease_owner IS NULL OR lease_expires_ms <= ?2)
                     ORDER BY created_at, rowid LIMIT 1",
                    params![unfinished, now],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| self.sql_error(e))?;
            let Some(id) = id else { return Ok(None) };
            tx.query_row(
                &format!(
                    "UPDATE tasks SET lease_owner = ?2, lease_expires_ms = ?3 WHERE id = ?1
                     RETURNING {TASK_COLUMNS}"
                ),
                params![id, worker, now.saturating_add(millis(lease))],
                raw_task,
            )
            .map(Some)
            .map_err(|e| self.sql_error(e))
        })?;
        raw.map(|raw| raw.decode(&self.path)).transpose()
    }

    fn claim(
        &self,
        id: &TaskId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<TaskRecord>, StoreError> {
        let unfinished = serde_json::Value::from(unfinished_statuses()).to_string();
        let now = now_millis();
        let raw = self
            .conn()
            .query_row(
                &format!(
                    "UPDATE tasks SET lease_owner = ?2, lease_expires_ms = ?3
                     WHERE id = ?1
                       AND status IN (SELECT value FROM json_each(?4))
                       AND (lease_owner IS NULL OR lease_expires_ms <= ?5)
                     RETURNING {TASK_COLUMNS}"
                ),
                params![
                    id.as_str(),
                    worker,
                    now.saturating_add(millis(lease)),
                    unfinished,
                    now
                ],
                raw_task,
            )
            .optional()
            .map_err(|e| self.sql_error(e))?;
        raw.map(|raw| raw.decode(&self.path)).transpose()
    }

    fn renew_lease(&self, id: &TaskId, worker: &str, lease: Duration) -> Result<bool, StoreError> {
        let expires = now_millis().saturating_add(millis(lease));
        let updated = self
            .conn()
            .execute(
                "UPDATE tasks SET lease_expires_ms = ?3 WHERE id = ?1 AND lease_owner = ?2",
                params![id.as_str(), worker, expires],
            )
            .map_err(|e| self.sql_error(e))?;
        Ok(updated > 0)
    }

    fn release(&self, id: &TaskId, worker: &str) -> Result<bool, StoreError> {
        let updated = self
            .conn()
            .execute(
                "UPDATE tasks SET lease_owner = NULL, lease_expires_ms = NULL
                 WHERE id = ?1 AND lease_owner = ?2",
                params![id.as_str(), worker],
            )
            .map_err(|e| self.sql_error(e))?;
        Ok(updated > 0)
    }

    fn create_token(&self, name: &str) -> Result<String, StoreError> {
        let (token, hash) = new_token()?;
        self.conn()
            .execute(
                "INSERT INTO api_tokens (sha256, name, created_at) VALUES (?1, ?2, ?3)",
                params![hash, name, now()],
            )
            .map_err(|e| self.sql_error(e))?;
        Ok(token)
    }

    fn verify_token(&self, token: &str) -> Result<bool, StoreError> {
        let found = self
            .conn()
            .query_row(
                "SELECT 1 FROM api_tokens WHERE sha256 = ?1",
                [hash_token(token)],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.sql_error(e))?;
        Ok(found.is_some())
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn raw_task(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawTask> {
    Ok(RawTask {
        id: row.get(0)?,
        spec_json: row.get(1)?,
        status: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        result_json: row.get(5)?,
    })
}
