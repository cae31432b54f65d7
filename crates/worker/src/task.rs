//! Running one task: worktree, agent, events, hand-back.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nightshift_agent::{AgentEvent, AgentOutcome, AgentSetup, Op};
use nightshift_git::{Author, Worktree};
use nightshift_model::ModelClient;
use nightshift_protocol::{Event, EventKind, TaskId, TaskResult, TaskStatus, Usage};
use nightshift_sandbox::{Limits, Sandbox, SandboxMode};
use nightshift_store::{Store, StoreError};
use nightshift_tools::Toolbox;

use crate::checks::SandboxChecks;
use crate::spec::ValidSpec;

/// How tasks run on this machine (not part of the task spec).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Where worktrees live: `<data_dir>/worktrees/<task-id>`.
    pub data_dir: PathBuf,
    pub sandbox_mode: SandboxMode,
    /// Author of the task's commit; Nightshift's own identity when `None`.
    pub author: Option<Author>,
    /// The model's context window in tokens.
    pub context_window: u64,
    /// Wall-clock limit for one `shell` tool call.
    pub shell_timeout: Duration,
    /// Wall-clock limit for one check.
    pub check_timeout: Duration,
}

/// A failure that stops the worker itself, as opposed to a task that ends in `error`.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("could not record the task's events: {0}")]
    Store(#[from] StoreError),
}

/// A fresh task id: creation time plus 16 random bits, so ids sort by time and never repeat
/// within a millisecond in practice.
pub fn new_task_id() -> TaskId {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    // RandomState is seeded from the OS per process and per instance: enough to tell apart
    // tasks created in the same millisecond, without a dependency on a random crate.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(millis);
    TaskId::from_parts(millis, hasher.finish() as u16)
}

/// Appends events to the store, then shows them, so nothing is shown that was not recorded.
struct Recorder<'a> {
    store: &'a Store,
    task_id: TaskId,
    on_event: &'a mut (dyn FnMut(&Event) + Send),
}

impl Recorder<'_> {
    fn record(&mut self, kind: EventKind) -> Result<(), WorkerError> {
        let event = self.store.append_event(&self.task_id, kind)?;
        (self.on_event)(&event);
        Ok(())
    }
}

/// Runs one task to a final status. `cancel` resolving asks the task to stop.
///
/// Every failure of the task itself (a git error, no sandbox, the model unreachable) ends it in
/// `error` with the reason in the result; only a store failure is returned as `Err`, because
/// then nothing can be recorded.
pub async fn run_task(
    store: &Store,
    model: Arc<dyn ModelClient>,
    valid: ValidSpec,
    task_id: TaskId,
    config: &WorkerConfig,
    cancel: impl Future<Output = ()> + Send,
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<TaskResult, WorkerError> {
    let started = Instant::now();
    store.insert_task(&task_id, &valid.spec)?;
    let mut recorder = Recorder {
        store,
        task_id: task_id.clone(),
        on_event,
    };
    recorder.record(EventKind::TaskCreated {
        spec: valid.spec.clone(),
    })?;
    recorder.record(EventKind::StateChanged {
        from: Some(TaskStatus::Queued),
        to: TaskStatus::Running,
        reason: None,
    })?;

    let branch = task_id.branch();
    let worktree_path = config.data_dir.join("worktrees").join(task_id.as_str());
    let mut result = TaskResult {
        task_id: task_id.clone(),
        status: TaskStatus::Error,
        branch: None,
        commit: None,
        base_commit: Some(valid.base_commit.clone()),
        summary: String::new(),
        reason: None,
        diff_stat: None,
        checks: Vec::new(),
        steps: 0,
        verify_rounds: 0,
        usage: Usage::default(),
        duration_ms: 0,
    };

    match valid
        .repo
        .add_worktree(&worktree_path, &branch, &valid.base_commit)
    {
        Ok(worktree) => {
            recorder.record(EventKind::WorkspaceReady {
                path: worktree_path.display().to_string(),
                branch: branch.clone(),
                base_commit: valid.base_commit.clone(),
            })?;
            let outcome =
                drive_agent(&mut recorder, model, &valid, &worktree, config, cancel).await?;
            let committed_or_clean = hand_back(
                &mut recorder,
                &valid,
                &worktree,
                config,
                &outcome,
                &mut result,
            )?;
            result.status = outcome.status;
            result.summary = outcome.summary;
            result.reason = outcome.reason;
            result.checks = outcome.checks;
            result.steps = outcome.steps;
            result.verify_rounds = outcome.verify_rounds;
            result.usage = outcome.usage;
            // A worktree holding work that could not be committed is kept: nothing is lost.
            if committed_or_clean && let Err(error) = valid.repo.remove_worktree(&worktree_path) {
                recorder.record(EventKind::Notice {
                    message: format!("could not remove the worktree: {error}"),
                })?;
            }
            if committed_or_clean && result.commit.is_none() {
                // Nothing was committed: leave no empty branch behind.
                if let Err(error) = valid.repo.delete_branch(&branch) {
                    recorder.record(EventKind::Notice {
                        message: format!("could not delete the empty branch {branch}: {error}"),
                    })?;
                }
            }
        }
        Err(error) => {
            result.reason = Some(format!("could not create the task's worktree: {error}"));
        }
    }

    if result.summary.trim().is_empty() {
        result.summary = result.reason.clone().unwrap_or_default();
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    recorder.record(EventKind::StateChanged {
        from: Some(TaskStatus::Running),
        to: result.status,
        reason: result.reason.clone(),
    })?;
    recorder.record(EventKind::TaskFinished {
        result: result.clone(),
    })?;
    Ok(result)
}

/// Sets up the sandbox and tools, runs the agent and records its events.
async fn drive_agent(
    recorder: &mut Recorder<'_>,
    model: Arc<dyn ModelClient>,
    valid: &ValidSpec,
    worktree: &Worktree,
    config: &WorkerConfig,
    cancel: impl Future<Output = ()> + Send,
) -> Result<AgentOutcome, WorkerError> {
    let failed = |reason: String| AgentOutcome {
        status: TaskStatus::Error,
        summary: String::new(),
        reason: Some(reason),
        steps: 0,
        verify_rounds: 0,
        usage: Usage::default(),
        checks: Vec::new(),
    };
    let sandbox = match Sandbox::new(worktree.path(), config.sandbox_mode) {
        Ok(sandbox) => sandbox,
        Err(error) => return Ok(failed(format!("refusing to run agent commands: {error}"))),
    };
    if config.sandbox_mode == SandboxMode::None {
        recorder.record(EventKind::Notice {
            message:
                "sandbox: none — commands run WITHOUT isolation, as chosen with --sandbox none"
                    .to_owned(),
        })?;
    }
    let shell_limits = Limits {
        timeout: config.shell_timeout,
        ..Limits::default()
    };
    let toolbox = match Toolbox::new(sandbox.clone(), shell_limits) {
        Ok(toolbox) => Arc::new(toolbox),
        Err(error) => return Ok(failed(format!("could not set up the tools: {error}"))),
    };
    let files = match worktree.tracked_files() {
        Ok(files) => files,
        Err(error) => {
            return Ok(failed(format!(
                "could not list the repository's files: {error}"
            )));
        }
    };
    let instructions = std::fs::read_to_string(worktree.path().join("AGENTS.md")).ok();
    let mut agent = nightshift_agent::spawn(AgentSetup {
        goal: valid.spec.goal.clone(),
        checks: valid.spec.checks.clone(),
        budget: valid.spec.budget.clone(),
        max_verify_rounds: valid.spec.max_verify_rounds,
        context_window: config.context_window,
        instructions,
        files,
        model,
        toolbox,
        checks_runner: Arc::new(SandboxChecks {
            sandbox,
            commands: valid.spec.checks.clone(),
            timeout: config.check_timeout,
        }),
    });
    tokio::pin!(cancel);
    let mut cancel_sent = false;
    loop {
        let next = tokio::select! {
            () = &mut cancel, if !cancel_sent => {
                agent.submit(Op::Cancel);
                cancel_sent = true;
                continue;
            }
            next = agent.next_event() => next,
        };
        match next {
            Some(AgentEvent::Event(kind)) => recorder.record(kind)?,
            Some(AgentEvent::Finished(outcome)) => return Ok(outcome),
            None => {
                return Ok(failed(
                    "the agent stopped without a result (a bug)".to_owned(),
                ));
            }
        }
    }
}

/// Commits whatever the agent changed, whatever the status: work is never thrown away, and the
/// branch shows what was tried even when the checks failed. Returns false when there was work
/// that could not be committed.
fn hand_back(
    recorder: &mut Recorder<'_>,
    valid: &ValidSpec,
    worktree: &Worktree,
    config: &WorkerConfig,
    outcome: &AgentOutcome,
    result: &mut TaskResult,
) -> Result<bool, WorkerError> {
    let message = commit_message(&valid.spec.goal, outcome, &recorder.task_id);
    match worktree.commit_all(&message, config.author.as_ref()) {
        Ok(Some(commit)) => {
            let diff_stat = worktree.diff_stat(&valid.base_commit).unwrap_or_default();
            let branch = recorder.task_id.branch();
            recorder.record(EventKind::Committed {
                branch: branch.clone(),
                commit: commit.clone(),
                message,
                diff_stat: diff_stat.clone(),
            })?;
            result.branch = Some(branch);
            result.commit = Some(commit);
            result.diff_stat = Some(diff_stat);
        }
        Ok(None) => {}
        Err(error) => {
            recorder.record(EventKind::Notice {
                message: format!(
                    "could not commit the work; it is kept in the worktree at {}: {error}",
                    worktree.path().display()
                ),
            })?;
            return Ok(false);
        }
    }
    Ok(true)
}

fn commit_message(goal: &str, outcome: &AgentOutcome, task_id: &TaskId) -> String {
    let first_line = goal
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut subject: String = first_line.chars().take(72).collect();
    if subject.len() < first_line.len() {
        subject.truncate(subject.trim_end().len());
        subject.push('…');
    }
    let mut message = subject;
    let summary = outcome.summary.trim();
    if !summary.is_empty() {
        message.push_str("\n\n");
        message.push_str(summary);
    }
    message.push_str(&format!(
        "\n\nNightshift-Task: {task_id}\nNightshift-Status: {}",
        outcome.status
    ));
    message
}
