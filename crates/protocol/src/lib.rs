//! The types that cross a boundary: the task spec, task statuses, the event stream, chat
//! messages and tool calls.
//!
//! Every front end (human CLI output, `--json` JSONL, database rows, tests) reads the same
//! [`Event`] stream. This crate is serde and little else: no I/O, no clocks, no randomness
//! beyond what callers hand in.

mod event;
mod message;
mod task;

pub use event::{CheckOutcome, CommandReport, DiffStat, Event, EventKind, TaskResult};
pub use message::{Message, Prices, Role, ToolCall, ToolSpec, Usage};
pub use task::{Budget, StatusParseError, TaskId, TaskSpec, TaskStatus};
