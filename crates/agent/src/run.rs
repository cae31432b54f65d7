//! The loop itself. One model request is one step; budgets are checked before each.
//!
//! Context management per step: a conversation over the limit is compacted first (one extra
//! model request, not a step) and trimmed as the last resort. A context-length error from the
//! model is recovered from by compacting (or, failing that, trimming hard) and sending the
//! request again, twice at most. The compaction request's tokens and cost count toward the
//! task's totals and budgets; it is recorded as a `context_compacted` event plus a `notice`
//! with its usage, not as a model request/response pair, so steps and their events keep
//! meaning one request of the agent's own work.

use std::time::{Duration, Instant};

use nightshift_model::RetryNote;
use nightshift_protocol::{CheckOutcome, EventKind, Message, TaskStatus, Usage};
use tokio::sync::mpsc;

use crate::context;
use crate::prompt::{self, PromptContext};
use crate::{
    AgentEvent, AgentOutcome, AgentSetup, EditFormat, Op, Scaffold, Workspace, WorkspaceReceiver,
    compact,
};

mod fenced;
mod room;

/// Tokens kept free for the model's answer, as a fraction of the window.
const OUTPUT_RESERVE_DIVISOR: u64 = 8;
/// Token budget for the file map in the system prompt.
const MAP_TOKEN_BUDGET: usize = 2_000;
/// Check output handed back to the model, per check.
const CHECK_OUTPUT_TO_MODEL: usize = 8 * 1024;
/// After a context-length error, the limit assumed from then on, in percent of what the
/// refused request was estimated at.
const LEARNED_LIMIT_PERCENT: u64 = 90;

/// After a failed compaction, near-window compaction pauses for this many steps (trimming
/// keeps the conversation in the window meanwhile), so a model that cannot summarise does
/// not cost an extra request on every step.
const COMPACTION_PAUSE_STEPS: u32 = 5;

/// Why a compaction happened, as recorded in the event.
const NEAR_WINDOW: &str = "near_window";
const CONTEXT_LENGTH_ERROR: &str = "context_length_error";

/// Why the loop stopped early.
enum Stop {
    Cancelled,
    /// The model kept making the same call with the same result: more steps would not help.
    Stuck(String),
    Budget(String),
    ChecksFailed(String),
    Error(String),
}

/// The workspace, before and after it is ready.
enum WorkspaceState {
    Pending(WorkspaceReceiver),
    Ready(Workspace),
    Failed(String),
}

struct Loop {
    setup: AgentSetup,
    workspace: WorkspaceState,
    ops: mpsc::UnboundedReceiver<Op>,
    events: mpsc::UnboundedSender<AgentEvent>,
    messages: Vec<Message>,
    template_hash: String,
    deadline: Option<Instant>,
    steps: u32,
    verify_rounds: u32,
    usage: Usage,
    cost_usd: f64,
    last_checks: Vec<CheckOutcome>,
    cancelled: bool,
    /// The model refused a request as too long for its window although the estimate was
    /// under the configured limit: the real window is smaller, so later turns keep under this.
    learned_limit: Option<u64>,
    /// The first step at which near-window compaction may be tried again after a failure.
    compaction_resumes_at: u32,
    /// The last tool call and its result, and how many times in a row it came out the same.
    last_call: Option<(String, String, String)>,
    repeats: u32,
    /// The messages up to and including the compact scaffold's opening: where a fresh
    /// attempt starts from.
    opening_len: usize,
    /// The compact opening as first asked, before any note of a failed attempt.
    opening_text: String,
    /// The fenced format's current attempt (see [`FencedAttempt`]).
    attempt: fenced::FencedAttempt,
    /// Fenced attempts given up on and undone so far.
    attempts_undone: u32,
}

/// After this many identical calls with identical results in a row, the model is told to
/// change course; at [`STUCK_LIMIT`] the task stops. Small models fall into such loops.
const REPEAT_WARNING: u32 = 2;
const STUCK_LIMIT: u32 = 5;

pub(crate) async fn run(
    setup: AgentSetup,
    workspace: WorkspaceReceiver,
    ops: mpsc::UnboundedReceiver<Op>,
    events: mpsc::UnboundedSender<AgentEvent>,
) {
    let workspace = WorkspaceState::Pending(workspace);
    let messages = match setup.scaffold {
        Scaffold::Full => vec![
            Message::system(prompt::render_system_prompt(&PromptContext {
                checks: setup.checks.clone(),
                instructions: setup.instructions.clone(),
                files: setup.files.clone(),
                map_token_budget: MAP_TOKEN_BUDGET,
            })),
            Message::user(prompt::render_goal(&setup.goal)),
        ],
        // The opening user message shows the files and the checks' output, so it waits for
        // the workspace: see `compact_opening`.
        Scaffold::Compact { edit } => vec![Message::system(compact::render_system(
            &setup.checks,
            setup.instructions.as_deref(),
            edit,
        ))],
    };
    let deadline = setup
        .budget
        .timeout_secs
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    let template_hash = setup.scaffold.template_hash();
    let mut agent = Loop {
        setup,
        workspace,
        ops,
        events,
        messages,
        template_hash,
        deadline,
        steps: 0,
        verify_rounds: 0,
        usage: Usage::default(),
        cost_usd: 0.0,
        last_checks: Vec::new(),
        cancelled: false,
        learned_limit: None,
        compaction_resumes_at: 0,
        last_call: None,
        repeats: 0,
        opening_len: 0,
        opening_text: String::new(),
        attempt: fenced::FencedAttempt::default(),
        attempts_undone: 0,
    };
    let (status, summary, reason) = match agent.work().await {
        Ok(summary) => (TaskStatus::Succeeded, summary, None),
        Err((summary, stop)) => match stop {
            Stop::Cancelled => (TaskStatus::Cancelled, summary, Some("cancelled".to_owned())),
            Stop::Budget(why) => (TaskStatus::BudgetExhausted, summary, Some(why)),
            Stop::ChecksFailed(why) | Stop::Stuck(why) => (TaskStatus::Failed, summary, Some(why)),
            Stop::Error(why) => (TaskStatus::Error, summary, Some(why)),
        },
    };
    let outcome = AgentOutcome {
        status,
        summary,
        reason,
        steps: agent.steps,
        verify_rounds: agent.verify_rounds,
        usage: agent.usage,
        cost_usd: agent.setup.prices.map(|_| agent.cost_usd),
        checks: agent.last_checks,
    };
    // The receiver may be gone if the caller gave up; nothing else to do then.
    let _ = agent.events.send(AgentEvent::Finished(outcome));
}

impl Loop {
    /// Runs turns until the checks pass (Ok with the summary) or something stops the task
    /// (Err with the best summary so far and the reason).
    async fn work(&mut self) -> Result<String, (String, Stop)> {
        let mut summary = String::new();
        if matches!(self.setup.scaffold, Scaffold::Compact { .. })
            && let Err(stop) = self.compact_opening().await
        {
            return Err((summary, stop));
        }
        loop {
            if let Err(stop) = self.check_budgets() {
                return Err((summary, stop));
            }
            let finished = match self.turn().await {
                Ok(finished) => finished,
                Err(stop) => return Err((summary, stop)),
            };
            let Some(claimed) = finished else { continue };
            summary = claimed;
            match self.verify().await {
                Ok(true) => return Ok(summary),
                Ok(false) if self.verify_rounds >= self.setup.max_verify_rounds => {
                    let why = format!(
                        "checks still failing after {} verification round(s) (raise --max-verify-rounds)",
                        self.verify_rounds
                    );
                    return Err((summary, Stop::ChecksFailed(why)));
                }
                Ok(false) => {}
                Err(stop) => return Err((summary, stop)),
            }
        }
    }

    fn check_budgets(&mut self) -> Result<(), Stop> {
        self.poll_ops();
        if self.cancelled {
            return Err(Stop::Cancelled);
        }
        let budget = &self.setup.budget;
        if self.steps >= budget.max_steps {
            return Err(Stop::Budget(format!(
                "step budget used up: {} of {} model requests (raise --max-steps)",
                self.steps, budget.max_steps
            )));
        }
        if let Some(max) = budget.max_tokens
            && self.usage.total() >= max
        {
            return Err(Stop::Budget(format!(
                "token budget used up: {} of {max} tokens (raise --max-tokens)",
                self.usage.total()
            )));
        }
        if let Some(max) = budget.max_cost_usd
            && self.cost_usd >= max
        {
            return Err(Stop::Budget(format!(
                "cost budget used up: ${:.4} of ${max:.4} (raise --max-cost)",
                self.cost_usd
            )));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(self.timeout_stop());
        }
        Ok(())
    }

    fn timeout_stop(&self) -> Stop {
        let secs = self.setup.budget.timeout_secs.unwrap_or_default();
        Stop::Budget(format!(
            "wall-clock budget used up: {secs} s (raise --timeout)"
        ))
    }

    fn poll_ops(&mut self) {
        loop {
            match self.ops.try_recv() {
                Ok(Op::Cancel) => self.cancelled = true,
                Err(mpsc::error::TryRecvError::Empty) => break,
                // Nobody holds the handle any more: nobody would see the result, so stop
                // rather than spend tokens and run commands unobserved.
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.cancelled = true;
                    break;
                }
            }
        }
    }

    /// Waits for `future` unless the task is cancelled or its wall-clock budget runs out first.
    async fn guarded<T>(&mut self, future: impl Future<Output = T>) -> Result<T, Stop> {
        let deadline = self.deadline;
        let sleep = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(future, sleep);
        tokio::select! {
            biased;
            // Cancel is the only op; a closed channel (the handle was dropped) counts as one too.
            _ = self.ops.recv() => {
                self.cancelled = true;
                Err(Stop::Cancelled)
            }
            () = &mut sleep => Err(self.timeout_stop()),
            value = &mut future => Ok(value),
        }
    }

    /// The workspace, waiting for it the first time (cancellable, within the wall-clock budget).
    async fn workspace(&mut self) -> Result<&Workspace, Stop> {
        let state = std::mem::replace(&mut self.workspace, WorkspaceState::Failed(String::new()));
        self.workspace = match state {
            WorkspaceState::Pending(receiver) => match self.guarded(receiver).await? {
                Ok(Ok(workspace)) => WorkspaceState::Ready(workspace),
                Ok(Err(reason)) => WorkspaceState::Failed(reason),
                Err(_) => WorkspaceState::Failed("the workspace was never prepared (a bug)".into()),
            },
            other => other,
        };
        match &self.workspace {
            WorkspaceState::Ready(workspace) => Ok(workspace),
            WorkspaceState::Failed(reason) => Err(Stop::Error(reason.clone())),
            WorkspaceState::Pending(_) => {
                Err(Stop::Error("the workspace is not ready (a bug)".into()))
            }
        }
    }

    async fn emit(&self, kind: EventKind) {
        // A closed channel means the caller is gone; poll_ops then sees the closed ops channel
        // and stops the work at the next step.
        let _ = self.events.send(AgentEvent::Event(kind));
    }

    /// One model request and the tool calls it asks for. Returns the model's summary when it
    /// says it is done (a `finish` call, or an answer without tool calls).
    async fn turn(&mut self) -> Result<Option<String>, Stop> {
        let limit = self.context_limit();
        self.steps += 1;
        let step = self.steps;
        // Compaction only when over the limit, and it leaves room to grow (see compaction.rs),
        // so it happens every so many turns, not on every one.
        if context::estimate(&self.messages) > limit && step >= self.compaction_resumes_at {
            self.compact(step, limit, NEAR_WINDOW).await?;
        }
        // The last resort, and the guarantee: whatever compaction did, the request fits.
        self.trim(limit).await;
        self.emit(EventKind::ModelRequest {
            step,
            model: self.setup.model.model_name().to_owned(),
            template_hash: self.template_hash.clone(),
            messages: self.messages.len(),
            estimated_tokens: context::estimate(&self.messages),
        })
        .await;

        let started = Instant::now();
        let response = self.ask(step, limit).await?;
        let cost_usd = self.account(response.usage);
        for line in &response.skipped_lines {
            self.emit(EventKind::Notice {
                message: format!("skipped a malformed line in the model's stream: {line}"),
            })
            .await;
        }
        self.emit(EventKind::ModelResponse {
            step,
            content: response.message.content.clone(),
            tool_calls: response.message.tool_calls.clone(),
            usage: response.usage,
            cost_usd,
            latency_ms: started.elapsed().as_millis() as u64,
            finish_reason: response.finish_reason.clone(),
        })
        .await;

        let calls = response.message.tool_calls.clone();
        let text = response.message.content.clone();
        let cut_off = response.finish_reason.as_deref() == Some("length");
        self.messages.push(response.message);
        // Acting on the answer needs the checked-out worktree.
        let toolbox = self.workspace().await?.toolbox.clone();
        if calls.is_empty() && cut_off {
            // The answer hit the output limit: it is unfinished, not a claim of being done.
            self.messages.push(Message::user(
                "Your answer was cut off at the output token limit. Continue with smaller \
                 steps, and call finish when the goal is achieved.",
            ));
            return Ok(None);
        }
        if calls.is_empty() {
            if self.setup.scaffold
                == (Scaffold::Compact {
                    edit: EditFormat::Fenced,
                })
            {
                return self.apply_fenced(step, &toolbox, &text).await;
            }
            // No tool call: the model considers itself done; its text is the summary.
            return Ok(Some(text));
        }
        let mut finish = None;
        for call in calls {
            self.emit(EventKind::ToolCall {
                step,
                call_id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            })
            .await;
            let toolbox = toolbox.clone();
            let started = Instant::now();
            let merged = match self.setup.scaffold {
                Scaffold::Compact {
                    edit: EditFormat::Whole,
                } if call.name == "write_file" => {
                    compact::merge_partial_write(&toolbox, &call.arguments)
                }
                _ => None,
            };
            let arguments = merged.as_ref().map_or(&call.arguments, |(args, _)| args);
            let compact_change = matches!(self.setup.scaffold, Scaffold::Compact { .. })
                && matches!(call.name.as_str(), "write_file" | "edit_file");
            let before = compact_change
                .then(|| compact::changed_file(&toolbox, arguments))
                .flatten();
            let mut output = self.guarded(toolbox.call(&call.name, arguments)).await?;
            let unchanged = before.as_ref().is_some_and(|(path, text)| {
                !output.is_error
                    && compact::changed_file(&toolbox, arguments)
                        .is_some_and(|(_, now)| now == *text)
                    && {
                        output.text.push_str(&compact::unchanged_note(path));
                        true
                    }
            });
            if let Some((_, note)) = &merged
                && !output.is_error
            {
                output.text.push_str(&format!("\n{note}"));
            }
            let this_call = (
                call.name.clone(),
                call.arguments.clone(),
                output.text.clone(),
            );
            self.repeats = if self.last_call.as_ref() == Some(&this_call) {
                self.repeats + 1
            } else {
                1
            };
            self.last_call = Some(this_call);
            if self.repeats >= REPEAT_WARNING && output.finish.is_none() {
                output.text.push_str(&format!(
                    "\n\nnote: you made exactly this call {} times in a row and got exactly \
                     this result each time. Repeating it will not help: do something different \
                     (for example read_file to see the file's current text, then change it).",
                    self.repeats
                ));
            }
            if let Some(report) = output.command.clone() {
                self.emit(EventKind::CommandFinished(report)).await;
            }
            // The compact scaffold answers every change with the checks' verdict.
            if compact_change && !unchanged && !output.is_error && !self.setup.checks.is_empty() {
                let checks = self.run_checks().await?;
                output.text.push_str(&compact::after_change(&checks));
            }
            self.emit(EventKind::ToolResult {
                step,
                call_id: call.id.clone(),
                name: call.name.clone(),
                output: output.text.clone(),
                is_error: output.is_error,
                duration_ms: started.elapsed().as_millis() as u64,
            })
            .await;
            self.messages.push(Message::tool(call.id, output.text));
            if output.finish.is_some() {
                finish = output.finish;
            }
            if self.repeats >= STUCK_LIMIT && finish.is_none() {
                return Err(Stop::Stuck(format!(
                    "the model made the same `{}` call {} times in a row with the same result; \
                     stopped, as more steps would not help",
                    call.name, self.repeats
                )));
            }
        }
        Ok(finish)
    }

    /// Adds one request's usage to the task's totals; returns its cost when prices are known.
    fn account(&mut self, usage: Usage) -> Option<f64> {
        self.usage.add(usage);
        let cost_usd = self.setup.prices.map(|prices| prices.cost(&usage));
        self.cost_usd += cost_usd.unwrap_or_default();
        cost_usd
    }

    /// Reports the model client's retries as they happen, not after the request succeeds.
    fn retry_reporter(&self, step: u32) -> impl Fn(&RetryNote) + Send + Sync + 'static {
        let events = self.events.clone();
        move |note: &RetryNote| {
            let _ = events.send(AgentEvent::Event(EventKind::ModelRetry {
                step,
                attempt: note.attempt,
                error: note.error.clone(),
                wait_ms: note.wait.as_millis() as u64,
            }));
        }
    }

    /// Runs every check once and records each command; cancellable.
    async fn run_checks(&mut self) -> Result<Vec<CheckOutcome>, Stop> {
        let runner = self.workspace().await?.checks.clone();
        let runs = self.guarded(runner.run_all()).await?;
        for run in &runs {
            if let Some(report) = &run.report {
                self.emit(EventKind::CommandFinished(report.clone())).await;
            }
        }
        Ok(runs.into_iter().map(|r| r.outcome).collect())
    }

    /// The compact scaffold's first user message: the goal, the files that fit, and the
    /// checks' output before any change.
    async fn compact_opening(&mut self) -> Result<(), Stop> {
        let root = self.workspace().await?.toolbox.root().to_path_buf();
        let files = self.setup.files.clone();
        let goal = self.setup.goal.clone();
        let shown =
            tokio::task::spawn_blocking(move || compact::read_shown_files(&root, &files, &goal))
                .await
                .unwrap_or_default();
        let checks = if self.setup.checks.is_empty() {
            None
        } else {
            Some(self.run_checks().await?)
        };
        self.emit(EventKind::Notice {
            message: format!(
                "compact scaffold: showed {} file(s) in the first message{}",
                shown.shown.len(),
                match &checks {
                    Some(c) if c.iter().all(|c| c.passed) => "; the checks already pass",
                    Some(_) => "; the checks fail before any change",
                    None => "",
                }
            ),
        })
        .await;
        let checks = checks.map(|c| compact::render_checks(&c));
        self.opening_text = compact::render_opening(&self.setup.goal, &shown, checks.as_deref());
        self.messages.push(Message::user(self.opening_text.clone()));
        self.opening_len = self.messages.len();
        Ok(())
    }

    /// Runs the checks. Ok(true) when all pass; Ok(false) after handing the failures back to
    /// the model as a new turn.
    async fn verify(&mut self) -> Result<bool, Stop> {
        if self.setup.checks.is_empty() {
            return Ok(true);
        }
        self.verify_rounds += 1;
        let round = self.verify_rounds;
        self.emit(EventKind::StateChanged {
            from: Some(TaskStatus::Running),
            to: TaskStatus::Verifying,
            reason: Some(format!("verification round {round}")),
        })
        .await;
        let checks = self.run_checks().await?;
        let passed = checks.iter().all(|c| c.passed);
        self.emit(EventKind::ChecksFinished {
            round,
            passed,
            checks: checks.clone(),
        })
        .await;
        self.last_checks = checks;
        if passed {
            return Ok(true);
        }
        self.emit(EventKind::StateChanged {
            from: Some(TaskStatus::Verifying),
            to: TaskStatus::Running,
            reason: Some(format!("checks failed in round {round}")),
        })
        .await;
        if self.verify_rounds < self.setup.max_verify_rounds {
            self.messages
                .push(Message::user(failure_report(&self.last_checks, round)));
        }
        Ok(false)
    }
}

/// The turn that hands failing checks back to the model.
fn failure_report(checks: &[CheckOutcome], round: u32) -> String {
    let mut text = format!(
        "Nightshift ran the checks (verification round {round}) and they did not all pass.\n"
    );
    for check in checks {
        let status = match (check.passed, check.exit_code) {
            (true, _) => "passed".to_owned(),
            (false, Some(code)) => format!("FAILED with exit code {code}"),
            (false, None) => "FAILED (killed or timed out)".to_owned(),
        };
        text.push_str(&format!("\n$ {}\n{status}\n", check.command));
        if !check.passed {
            let output = nightshift_tools::trim_middle(&check.output, CHECK_OUTPUT_TO_MODEL);
            text.push_str(&format!("<output>\n{output}\n</output>\n"));
        }
    }
    text.push_str("\nFix the cause, then call finish again.");
    text
}
