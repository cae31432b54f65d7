use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use nightshift_protocol::{Event, EventKind, TaskId, TaskResult, TaskSpec, TaskStatus};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::StoreError;
use crate::migrations;

/// How long a write waits for another process holding the database lock before giving up.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Tasks and their events in one SQLite database.
///
/// `Send + Sync`: one connection behind a mutex, so share it with an `Arc`. Other processes
/// may open the same file; SQLite's locks (and the busy timeout) keep them consistent.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// A task as stored: its spec, where it is now, and its result once finished.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    pub id: TaskId,
    pub spec: TaskSpec,
    pub status: TaskStatus,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
    /// RFC 3339 UTC with milliseconds; the time of the last event appended.
    pub updated_at: String,
    /// Set by the `task_finished` event.
    pub result: Option<TaskResult>,
}

impl Store {
    /// Opens or creates the database (parent dir created), WAL mode, busy_timeout, runs migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::sqlite(path, e))?;
        Self::init(conn, path.to_path_buf())
    }

    /// A private database that lives as long as the `Store`; for tests and dry runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| StoreError::sqlite(&path, e))?;
        Self::init(conn, path)
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        let sql = |e| StoreError::sqlite(&path, e);
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(sql)?;
        // WAL lets readers (`nightshift logs -f`) follow a task while a worker writes to it.
        // `synchronous` stays at its default (FULL): an appended event survives a power cut.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql)?;
        if let Err(too_new) = migrations::migrate(&mut conn).map_err(sql)? {
            return Err(StoreError::TooNew {
                path,
                found: too_new.found,
                supported: too_new.supported,
            });
        }
        Ok(Store {
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

    /// Records a new task with status `queued`. Appends no event: the caller decides what
    /// the stream says (normally `task_created` first).
    pub fn insert_task(&self, id: &TaskId, spec: &TaskSpec) -> Result<(), StoreError> {
        let spec_json = serde_json::to_string(spec).map_err(|source| StoreError::Encode {
            what: "the task spec",
            source,
        })?;
        let now = now();
        let conn = self.conn();
        let inserted = conn
            .execute(
                "INSERT INTO tasks (id, spec_json, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (id) DO NOTHING",
                params![id.as_str(), spec_json, TaskStatus::Queued.as_str(), now],
            )
            .map_err(|e| self.sql_error(e))?;
        if inserted == 0 {
            return Err(StoreError::DuplicateTask { id: id.clone() });
        }
        Ok(())
    }

    /// Appends an event with the next seq for this task (1-based, gap-free, in one transaction)
    /// and the current time; returns it. Keeps `tasks.status` in step with `state_changed` and
    /// stores the result carried by `task_finished`.
    pub fn append_event(&self, task_id: &TaskId, kind: EventKind) -> Result<Event, StoreError> {
        let body = serde_json::to_value(&kind).map_err(|source| StoreError::Encode {
            what: "the event",
            source,
        })?;
        // EventKind is an internally tagged enum, so its JSON always carries a string `type`.
        let kind_name = body
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("unknown")
            .to_owned();
        let body_json = body.to_string();
        let (status, result_json) = match &kind {
            EventKind::StateChanged { to, .. } => (Some(*to), None),
            EventKind::TaskFinished { result } => {
                let json = serde_json::to_string(result).map_err(|source| StoreError::Encode {
                    what: "the task result",
                    source,
                })?;
                (Some(result.status), Some(json))
            }
            _ => (None, None),
        };

        let mut conn = self.conn();
        // IMMEDIATE takes the write lock up front, so reading MAX(seq) and inserting the next
        // one cannot interleave with another process doing the same.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql_error(e))?;
        let ts = now();
        let updated = tx
            .execute(
                "UPDATE tasks SET
                    updated_at = ?2,
                    status = COALESCE(?3, status),
                    result_json = COALESCE(?4, result_json)
                 WHERE id = ?1",
                params![
                    task_id.as_str(),
                    ts,
                    status.map(TaskStatus::as_str),
                    result_json
                ],
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
            "INSERT INTO events (task_id, seq, ts, type, body_json) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![task_id.as_str(), seq, ts, kind_name, body_json],
        )
        .map_err(|e| self.sql_error(e))?;
        tx.commit().map_err(|e| self.sql_error(e))?;
        Ok(Event {
            task_id: task_id.clone(),
            seq: u64::try_from(seq).map_err(|e| StoreError::decode(&self.path, "event seq", e))?,
            ts,
            kind,
        })
    }

    /// The task with this id, or `None` when there is none.
    pub fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT id, spec_json, status, created_at, updated_at, result_json
                 FROM tasks WHERE id = ?1",
                [id.as_str()],
                RawTask::from_row,
            )
            .optional()
            .map_err(|e| self.sql_error(e))?;
        row.map(|raw| raw.decode(&self.path)).transpose()
    }

    /// Events with seq > after_seq, in order. [`StoreError::UnknownTask`] when there is no
    /// such task, so a typo in an id is not mistaken for a task with no events yet.
    pub fn events(&self, id: &TaskId, after_seq: u64) -> Result<Vec<Event>, StoreError> {
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

    /// At most `limit` tasks, newest first.
    pub fn list_tasks(&self, limit: usize) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.conn();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, spec_json, status, created_at, updated_at, result_json
                 FROM tasks ORDER BY created_at DESC, rowid DESC LIMIT ?1",
            )
            .map_err(|e| self.sql_error(e))?;
        let rows = stmt
            .query_map([limit], RawTask::from_row)
            .map_err(|e| self.sql_error(e))?;
        let mut tasks = Vec::new();
        for row in rows {
            let raw = row.map_err(|e| self.sql_error(e))?;
            tasks.push(raw.decode(&self.path)?);
        }
        Ok(tasks)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held leaves the connection usable: any open transaction
        // was rolled back when it was dropped during unwinding. So poisoning is not fatal.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sql_error(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// A `tasks` row before its JSON and status columns are parsed.
struct RawTask {
    id: String,
    spec_json: String,
    status: String,
    created_at: String,
    updated_at: String,
    result_json: Option<String>,
}

impl RawTask {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawTask> {
        Ok(RawTask {
            id: row.get(0)?,
            spec_json: row.get(1)?,
            status: row.get(2)?,
            created_at: row.get(3)?,
            updated_at: row.get(4)?,
            result_json: row.get(5)?,
        })
    }

    fn decode(self, path: &Path) -> Result<TaskRecord, StoreError> {
        let id = TaskId::parse(&self.id).ok_or_else(|| StoreError::Decode {
            path: path.to_path_buf(),
            what: format!("task id `{}`", self.id),
            source: "not a valid task id".into(),
        })?;
        let spec = serde_json::from_str(&self.spec_json)
            .map_err(|e| StoreError::decode(path, format!("spec of task {id}"), e))?;
        let status = self
            .status
            .parse()
            .map_err(|e| StoreError::decode(path, format!("status of task {id}"), e))?;
        let result = self
            .result_json
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| StoreError::decode(path, format!("result of task {id}"), e))?;
        Ok(TaskRecord {
            id,
            spec,
            status,
            created_at: self.created_at,
            updated_at: self.updated_at,
            result,
        })
    }
}

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T12:00:00.000Z`.
fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
