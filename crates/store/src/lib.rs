//! Persistence for Nightshift: tasks and their append-only event streams in SQLite.
//!
//! [`Store`] owns one SQLite database (WAL mode, a busy timeout, versioned migrations). It
//! records each task's spec, current status and final result, and every [`Event`] the task
//! produced with a gap-free, 1-based sequence number. It is the only crate that knows SQL.
//!
//! It does not decide anything: it does not check that state transitions make sense, run
//! tasks, or lease them to workers; callers append events and the store keeps the task row in
//! step with them (`state_changed` sets the status, `task_finished` stores the result).
//!
//! [`Event`]: nightshift_protocol::Event

mod error;
mod migrations;
mod store;

pub use error::StoreError;
pub use store::{Store, TaskRecord};
