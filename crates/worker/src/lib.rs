//! One task end to end: validate its spec, prepare a worktree on `nightshift/<task-id>`, drive
//! the agent, run the checks in the sandbox, persist every event, and hand back a commit.
//!
//! This crate owns the order of those steps and the guarantees around them (events appended
//! before they are shown; no branch left behind by a run that changed nothing; the user's own
//! checkout never touched). It does not parse arguments or print: callers get each [`Event`]
//! through a callback and the [`TaskResult`] at the end.

mod checks;
mod spec;
mod task;

pub use spec::{SpecError, ValidSpec, validate};
pub use task::{
    WorkerConfig, WorkerError, finish_unstarted, new_task_id, run_claimed, run_task,
    unrecorded_failure,
};

pub use nightshift_agent::{EditFormat, ModelClient, Scaffold};
pub use nightshift_protocol::{Event, TaskResult};

/// The unified diff of `tip` against `base` in the repository at `repo`.
pub fn diff(repo: &str, base: &str, tip: &str) -> Result<String, nightshift_git::GitError> {
    nightshift_git::Repo::open(std::path::Path::new(repo))?.diff(base, tip)
}
