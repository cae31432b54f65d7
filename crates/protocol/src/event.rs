use serde::{Deserialize, Serialize};

use crate::{TaskId, TaskSpec, TaskStatus, ToolCall, Usage};

/// One step of a task, as appended to the store and streamed to every front end.
///
/// Serialized flat: `{"task_id":..., "seq":..., "ts":..., "type":"tool_call", ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub task_id: TaskId,
    /// 1-based, gap-free per task, assigned in append order.
    pub seq: u64,
    /// RFC 3339 UTC timestamp with millisecond precision.
    pub ts: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. The `type` tag is the snake_case variant name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The task was accepted with this (validated) spec.
    TaskCreated { spec: TaskSpec },
    StateChanged {
        from: Option<TaskStatus>,
        to: TaskStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The task's worktree exists and is checked out at `base_commit`.
    WorkspaceReady {
        path: String,
        branch: String,
        base_commit: String,
    },
    /// A note about how the task runs (e.g. the sandbox mode in force).
    Notice { message: String },
    /// A request is about to be sent to the model.
    ModelRequest {
        step: u32,
        model: String,
        /// SHA-256 of the system prompt template the conversation was built from.
        template_hash: String,
        messages: usize,
        estimated_tokens: u64,
    },
    /// A request failed and will be retried after `wait_ms`.
    ModelRetry {
        step: u32,
        attempt: u32,
        error: String,
        wait_ms: u64,
    },
    /// The model's complete answer to one request.
    ModelResponse {
        step: u32,
        content: String,
        tool_calls: Vec<ToolCall>,
        usage: Usage,
        /// What this request cost, when the provider profile has prices.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        latency_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_reason: Option<String>,
    },
    ToolCall {
        step: u32,
        call_id: String,
        name: String,
        arguments: String,
    },
    /// A tool's result as the model sees it (already trimmed).
    ToolResult {
        step: u32,
        call_id: String,
        name: String,
        output: String,
        is_error: bool,
        duration_ms: u64,
    },
    /// A command ran in the sandbox (a `shell` call or a check).
    CommandFinished(CommandReport),
    /// A sandboxed command asked the network proxy for a host, and was let through or not.
    NetworkRequest {
        host: String,
        port: u16,
        method: String,
        allowed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Verification round `round` ran every check.
    ChecksFinished {
        round: u32,
        passed: bool,
        checks: Vec<CheckOutcome>,
    },
    /// Older turns were replaced by a summary the model wrote, to stay inside the context window.
    ContextCompacted {
        /// Messages replaced by the summary.
        messages_compacted: usize,
        tokens_before: u64,
        tokens_after: u64,
        /// SHA-256 of the summary prompt template.
        template_hash: String,
        /// Why: `near_window` or `context_length_error`.
        trigger: String,
    },
    /// Old content was dropped from the conversation to stay inside the context window.
    ContextTrimmed {
        messages_trimmed: usize,
        tokens_before: u64,
        tokens_after: u64,
    },
    /// The work was committed on the task branch.
    Committed {
        branch: String,
        commit: String,
        message: String,
        diff_stat: DiffStat,
    },
    /// The task reached a final status; the last event of a turn (a follow-up starts another).
    TaskFinished { result: TaskResult },
    /// Someone asked for the task to stop; the worker running it stops it and ends it
    /// `cancelled`.
    CancelRequested {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A follow-up instruction: the finished task continues on its branch as a new turn.
    FollowUp { message: String },
}

/// Accounting for one sandboxed command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandReport {
    /// What ran it: `shell` (a tool call) or `check`.
    pub purpose: String,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub duration_ms: u64,
    /// Bytes the command wrote, before the output cap.
    pub output_bytes: u64,
    pub output_truncated: bool,
    /// The limit that ended the command, e.g. `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// The isolation in force: `bwrap` or `none`.
    pub sandbox: String,
    /// CPU time (user + system) of all the command's processes, where measurable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Peak memory of the command, where measurable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

/// One check's result in a verification round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub command: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// The check's output, trimmed to head and tail.
    pub output: String,
}

/// Files changed, lines added and removed, and git's human-readable `--stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStat {
    pub files_changed: u64,
    pub insertions: u64,
    pub deletions: u64,
    pub text: String,
}

/// What a finished task hands back. Printed last by `nightshift run --json` as
/// `{"type":"result", ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: TaskId,
    pub status: TaskStatus,
    /// The task branch, or `None` when the run left no branch behind.
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub base_commit: Option<String>,
    /// The model's account of what it changed and why, or why it stopped.
    pub summary: String,
    /// Why the task ended in a status other than `succeeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub diff_stat: Option<DiffStat>,
    /// The last verification round's results.
    pub checks: Vec<CheckOutcome>,
    pub steps: u32,
    pub verify_rounds: u32,
    pub usage: Usage,
    /// What the model requests cost, when the provider profile has prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    pub duration_ms: u64,
    /// The isolation commands ran under (`bwrap` or `none`), when any ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_flat_with_a_type_tag() {
        let event = Event {
            task_id: TaskId::from_parts(1, 2),
            seq: 7,
            ts: "2026-11-24T12:00:00.000Z".into(),
            kind: EventKind::StateChanged {
                from: Some(TaskStatus::Queued),
                to: TaskStatus::Running,
                reason: None,
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "state_changed");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["to"], "running");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn command_reports_round_trip_as_newtype_variant() {
        let kind = EventKind::CommandFinished(CommandReport {
            purpose: "check".into(),
            command: "true".into(),
            exit_code: Some(0),
            signal: None,
            duration_ms: 3,
            output_bytes: 0,
            output_truncated: false,
            limit: None,
            sandbox: "bwrap".into(),
            cpu_ms: Some(1),
            peak_memory_bytes: None,
        });
        let json = serde_json::to_string(&kind).unwrap();
        assert!(json.starts_with(r#"{"type":"command_finished","purpose":"check""#));
        assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), kind);
    }
}
