//! The agent loop: the model proposes tool calls, the tools run them in the sandbox, and when the
//! model says it is done the task's checks decide whether it is.
//!
//! The agent is a queue pair, as in the Codex CLI: [`spawn`] starts it, [`AgentHandle::submit`]
//! sends it an [`Op`], [`AgentHandle::next_event`] yields what it did. Prompt assembly, context
//! management, tool dispatch, verification rounds and budgets live here. It knows nothing of
//! storage, git, HTTP servers or forges: the caller persists the events and commits the work, and
//! the checks are run through the [`Checks`] trait the caller implements.
//!
//! Context management: before each request, a conversation over the window's limit is first
//! compacted (the model summarises its older turns, see [`COMPACTION_TEMPLATE`]) and then, as
//! a last resort, trimmed ([`fit`]). A context-length error from the model triggers the same
//! recovery and one retry of the request.

mod compact;
mod compaction;
mod context;
mod partial_write;
mod prompt;
mod run;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use nightshift_protocol::{
    Budget, CheckOutcome, CommandReport, EventKind, Prices, TaskStatus, ToolSpec, Usage,
};
use tokio::sync::{mpsc, oneshot};

pub use compact::COMPACT_TEMPLATE;
pub use compaction::{COMPACTION_TEMPLATE, SUMMARY_PREFIX, compaction_template_hash};
pub use context::{Trimmed, estimate, fit};
// The agent's inputs, re-exported so callers can build an AgentSetup without reaching past the
// agent into the crates below it.
pub use nightshift_model::ModelClient;
pub use nightshift_tools::{Toolbox, tool_specs, trim_middle};
pub use prompt::{
    PromptContext, SYSTEM_TEMPLATE, render_goal, render_system_prompt, repo_map, template_hash,
};

/// A boxed future, so [`Checks`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs the task's completion checks. Implemented by the caller, who owns the sandbox.
pub trait Checks: Send + Sync {
    /// Runs every check once, in order, and reports each.
    fn run_all(&self) -> BoxFuture<'_, Vec<CheckRun>>;
}

/// One check's outcome plus the sandbox accounting for it.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub outcome: CheckOutcome,
    pub report: Option<CommandReport>,
}

/// What the agent acts through: the task's tools and its checks, both bound to the checked-out
/// worktree.
pub struct Workspace {
    pub toolbox: Arc<Toolbox>,
    pub checks: Arc<dyn Checks>,
}

/// Delivers the [`Workspace`] once it is ready, or the reason it could not be prepared.
///
/// The agent sends its first model request before waiting on this, so checking out a large
/// repository overlaps with the model's first answer instead of delaying it.
pub type WorkspaceReceiver = oneshot::Receiver<Result<Workspace, String>>;

/// How the agent talks to the model: the prompt, the tools and the rhythm of a turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scaffold {
    /// For capable models: all seven tools, a map of the repository, and the model explores
    /// and runs the checks itself.
    #[default]
    Full,
    /// For small local models (see `compact.rs`): the files and the checks' output are shown
    /// up front, four tools, and the checks run after every change.
    Compact { edit: EditFormat },
}

/// How the compact scaffold has the model change files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EditFormat {
    /// `write_file` with the whole new file.
    #[default]
    Whole,
    /// `edit_file` with an exact search string and its replacement.
    Replace,
    /// No tools at all: the model answers in text, each changed file as its path followed by
    /// its whole new content in a fenced code block (aider's "whole" format), the format small
    /// coder models were trained on most.
    Fenced,
}

/// Everything the agent needs for one task.
pub struct AgentSetup {
    pub goal: String,
    /// The check commands, shown to the model; the [`Workspace`]'s [`Checks`] run them.
    pub checks: Vec<String>,
    pub budget: Budget,
    pub max_verify_rounds: u32,
    /// The model's context window in tokens.
    pub context_window: u64,
    /// The target repository's AGENTS.md.
    pub instructions: Option<String>,
    /// Tracked files of the repository, for the map in the system prompt.
    pub files: Vec<String>,
    pub model: Arc<dyn ModelClient>,
    /// The tools offered to the model (see [`Scaffold::tool_specs`]).
    pub tool_specs: Vec<ToolSpec>,
    pub scaffold: Scaffold,
    /// The provider's prices, for cost accounting and the cost budget.
    pub prices: Option<Prices>,
}

/// Instructions to a running agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Stop as soon as possible; the task ends `cancelled`.
    Cancel,
}

/// What the agent reports: a step, or the end.
#[derive(Debug, Clone)]
pub enum AgentEvent {
    Event(EventKind),
    Finished(AgentOutcome),
}

/// How the agent's work ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutcome {
    pub status: TaskStatus,
    pub summary: String,
    /// Why the status is not `succeeded`.
    pub reason: Option<String>,
    pub steps: u32,
    pub verify_rounds: u32,
    pub usage: Usage,
    /// What the model requests cost, when prices are known.
    pub cost_usd: Option<f64>,
    /// The last verification round's results.
    pub checks: Vec<CheckOutcome>,
}

/// The caller's side of the queue pair.
pub struct AgentHandle {
    ops: mpsc::UnboundedSender<Op>,
    events: mpsc::UnboundedReceiver<AgentEvent>,
}

impl AgentHandle {
    /// Sends an instruction. Ignored once the agent has finished.
    pub fn submit(&self, op: Op) {
        // A send error means the agent already finished; there is nothing left to instruct.
        let _ = self.ops.send(op);
    }

    /// The next event; `None` after [`AgentEvent::Finished`] has been delivered.
    pub async fn next_event(&mut self) -> Option<AgentEvent> {
        self.events.recv().await
    }
}

/// Starts the agent on the current tokio runtime. It sends its first model request at once and
/// waits for `workspace` only before acting on an answer.
pub fn spawn(setup: AgentSetup, workspace: WorkspaceReceiver) -> AgentHandle {
    let (ops_tx, ops_rx) = mpsc::unbounded_channel();
    // Unbounded so that retry notes can be sent from the model client's synchronous callback
    // the moment they happen. The backlog stays small: the agent produces a few events per
    // step, each step waits on the model or a tool, and the caller drains them as they come.
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    tokio::spawn(run::run(setup, workspace, ops_rx, events_tx));
    AgentHandle {
        ops: ops_tx,
        events: events_rx,
    }
}
