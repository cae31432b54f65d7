//! Persistence and the task queue for Nightshift: tasks, their append-only event streams, leases
//! and API tokens, in SQLite (the embedded default) or PostgreSQL (scale-out).
//!
//! [`Store`] is the one interface; [`SqliteStore`] and [`PostgresStore`] implement it with the
//! same behaviour, checked by one set of contract tests run against both. [`open`] picks the
//! backend from a location: a `postgres://` URL or a file path. Each task's spec, current
//! status and final result are recorded, and every [`Event`] it produced with a gap-free,
//! 1-based sequence number. Workers take tasks with [`Store::claim_next`], which hands each task
//! to one worker at a time under a lease that they renew; a task whose lease lapses is handed
//! out again. This is the only crate that knows SQL.
//!
//! It does not decide anything: it does not check that state transitions make sense or run
//! tasks; callers append events and the store keeps the task row in step with them
//! (`state_changed` sets a status that is not final; `task_finished` sets the final status and
//! the result together, so no reader sees a finished task without its result). It knows nothing of
//! HTTP: an API token is only created and checked here.
//!
//! [`Event`]: nightshift_protocol::Event

mod error;
mod migrations;
mod postgres;
mod record;
mod sqlite;

use std::path::Path;
use std::time::Duration;

use nightshift_protocol::{Event, EventKind, TaskId, TaskSpec, TaskStatus};

pub use error::StoreError;
pub use postgres::{PostgresStore, hide_password};
pub use record::TaskRecord;
pub use sqlite::SqliteStore;

/// Tasks, their events, the queue and API tokens, whatever database holds them.
///
/// Every method is synchronous and may be called from any thread, including from inside an
/// async runtime (the PostgreSQL backend runs its connections on threads of its own). Share a
/// store between threads with an `Arc`.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Records a new task with status `queued`. Appends no event: the caller decides what
    /// the stream says (normally `task_created` first).
    fn insert_task(&self, id: &TaskId, spec: &TaskSpec) -> Result<(), StoreError>;

    /// Like [`Store::insert_task`], but the task is born leased to `worker` for `lease`, so no
    /// other worker can claim it: for a task that the caller runs itself (`nightshift run`).
    fn insert_claimed_task(
        &self,
        id: &TaskId,
        spec: &TaskSpec,
        worker: &str,
        lease: Duration,
    ) -> Result<(), StoreError>;

    /// Appends an event with the next seq for this task (1-based, gap-free, in one transaction)
    /// and the current time; returns it. Keeps the task's status in step with `state_changed`
    /// (until it is final) and stores the final status and the result carried by
    /// `task_finished`.
    fn append_event(&self, task_id: &TaskId, kind: EventKind) -> Result<Event, StoreError>;

    /// The task with this id, or `None` when there is none.
    fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>, StoreError>;

    /// Events with seq > after_seq, in order. [`StoreError::UnknownTask`] when there is no
    /// such task, so a typo in an id is not mistaken for a task with no events yet.
    fn events(&self, id: &TaskId, after_seq: u64) -> Result<Vec<Event>, StoreError>;

    /// At most `limit` tasks, newest first.
    fn list_tasks(&self, limit: usize) -> Result<Vec<TaskRecord>, StoreError> {
        self.list_tasks_filtered(&TaskFilter {
            limit,
            ..TaskFilter::default()
        })
    }

    /// One page of the tasks that match `filter`, newest first (ties broken by insertion
    /// order, so the order is stable). The next page is the same filter with `before` set to
    /// the id of the last task of this page. [`StoreError::UnknownTask`] when `before` names
    /// no task.
    fn list_tasks_filtered(&self, filter: &TaskFilter) -> Result<Vec<TaskRecord>, StoreError>;

    /// Leases the next task to `worker` for `lease` and returns it: the oldest task that is not
    /// finished and that no live lease holds. That is a queued task, or one whose worker let
    /// its lease lapse, which the new worker resumes (its status tells which). Never hands the
    /// same task to two workers at once, across threads, processes and machines.
    fn claim_next(&self, worker: &str, lease: Duration) -> Result<Option<TaskRecord>, StoreError>;

    /// Leases this one task to `worker` for `lease` if it is not finished and no live lease
    /// holds it; `None` otherwise. For acting on a particular queued task (cancelling it)
    /// without racing the workers.
    fn claim(
        &self,
        id: &TaskId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<TaskRecord>, StoreError>;

    /// Extends `worker`'s lease on the task to `lease` from now. `false` when the lease is no
    /// longer `worker`'s (released, or lapsed and claimed by another worker): stop working on
    /// the task. A lapsed lease that nobody claimed in the meantime is still renewed.
    fn renew_lease(&self, id: &TaskId, worker: &str, lease: Duration) -> Result<bool, StoreError>;

    /// Gives up `worker`'s lease on the task, so another worker may claim it at once if it is
    /// not finished. `false` when `worker` did not hold it.
    fn release(&self, id: &TaskId, worker: &str) -> Result<bool, StoreError>;

    /// Creates an API token labelled `name` and returns it. Only its SHA-256 is stored, so the
    /// token is shown this once and cannot be recovered from the database.
    fn create_token(&self, name: &str) -> Result<String, StoreError>;

    /// Whether `token` is one that [`Store::create_token`] returned.
    fn verify_token(&self, token: &str) -> Result<bool, StoreError>;
}

/// Which tasks [`Store::list_tasks_filtered`] returns; the default is the newest 50 tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskFilter {
    /// Only tasks in one of these states; empty means any state.
    pub statuses: Vec<TaskStatus>,
    /// Only tasks of this repository (exactly as in their spec).
    pub repo: Option<String>,
    /// Only tasks carrying this label.
    pub label: Option<String>,
    /// At most this many tasks.
    pub limit: usize,
    /// Only tasks listed after this one: the cursor for the next page.
    pub before: Option<TaskId>,
}

impl TaskFilter {
    /// The page size when none is given.
    pub const DEFAULT_LIMIT: usize = 50;
}

impl Default for TaskFilter {
    fn default() -> Self {
        TaskFilter {
            statuses: Vec::new(),
            repo: None,
            label: None,
            limit: Self::DEFAULT_LIMIT,
            before: None,
        }
    }
}

/// Opens the store at `location`: a `postgres://` or `postgresql://` URL opens PostgreSQL,
/// anything else is the path of a SQLite database file (created if missing).
pub fn open(location: &str) -> Result<Box<dyn Store>, StoreError> {
    if is_postgres_url(location) {
        Ok(Box::new(PostgresStore::open(location)?))
    } else {
        Ok(Box::new(SqliteStore::open(Path::new(location))?))
    }
}

/// Whether [`open`] takes `location` for a PostgreSQL URL.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}
