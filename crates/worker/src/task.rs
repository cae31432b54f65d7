//! Running one task: worktree, agent, events, hand-back.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nightshift_agent::{
    AgentEvent, AgentOutcome, AgentSetup, ModelClient, Op, Scaffold, Toolbox, Workspace,
};
use nightshift_git::{Author, GitError, Repo, Worktree};
use nightshift_protocol::{Event, EventKind, TaskId, TaskResult, TaskStatus, Usage};
use nightshift_sandbox::{Limits, NetworkPolicy, Sandbox, SandboxMode};
use nightshift_store::{Store, StoreError, TaskRecord};
use tokio::sync::oneshot;

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
    /// The provider's prices, for cost accounting and `--max-cost`.
    pub prices: Option<nightshift_protocol::Prices>,
    /// The program run inside the sandbox to reach the network proxy (normally the
    /// `nightshift` binary itself); used only when a task allows some hosts.
    pub network_bridge: PathBuf,
    /// Wall-clock limit for one `shell` tool call.
    pub shell_timeout: Duration,
    /// Wall-clock limit for one check.
    pub check_timeout: Duration,
    /// How the agent prompts the model (compact for small local models).
    pub scaffold: Scaffold,
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

/// The result for a task whose run failed with a [`WorkerError`]: nothing more could be
/// recorded, so the caller reports it as `error` from what it knows.
pub fn unrecorded_failure(task_id: &TaskId) -> TaskResult {
    TaskResult {
        task_id: task_id.clone(),
        status: TaskStatus::Error,
        branch: None,
        commit: None,
        base_commit: None,
        summary: String::new(),
        reason: Some(
            "the task's events could not be recorded (see the error above); any work is in its \
             worktree under the data directory"
                .to_owned(),
        ),
        diff_stat: None,
        checks: Vec::new(),
        steps: 0,
        verify_rounds: 0,
        usage: Usage::default(),
        cost_usd: None,
        duration_ms: 0,
        sandbox: None,
    }
}

/// Appends events to the store, then shows them, so nothing is shown that was not recorded.
struct Recorder<'a> {
    store: &'a dyn Store,
    task_id: TaskId,
    on_event: &'a mut (dyn FnMut(&Event) + Send),
    /// The status the last recorded state change moved to, so the final one starts from it.
    status: TaskStatus,
    /// A lease this run renews itself as it records (`nightshift run`); the daemon's workers
    /// renew theirs with a heartbeat instead.
    lease: Option<SelfRenewedLease>,
}

struct SelfRenewedLease {
    worker: String,
    renewed: Instant,
}

impl Recorder<'_> {
    fn record(&mut self, kind: EventKind) -> Result<(), WorkerError> {
        if let EventKind::StateChanged { to, .. } = &kind {
            self.status = *to;
        }
        let event = self.store.append_event(&self.task_id, kind)?;
        (self.on_event)(&event);
        if let Some(lease) = &mut self.lease
            && lease.renewed.elapsed() > RUN_LEASE / 4
        {
            self.store
                .renew_lease(&self.task_id, &lease.worker, RUN_LEASE)?;
            lease.renewed = Instant::now();
        }
        Ok(())
    }
}

/// How long a `nightshift run` task is leased for: long enough that a quiet stretch (a slow
/// command) does not let it lapse, short enough that a daemon sharing the store resumes a
/// task whose `nightshift run` process died within the hour.
const RUN_LEASE: Duration = Duration::from_secs(30 * 60);

/// What one turn of a task starts from and asks.
struct Turn {
    /// The commit the worktree is checked out at: the base commit, or the branch's tip for a
    /// follow-up.
    start_commit: String,
    /// What the agent is asked this turn.
    goal: String,
    /// A follow-up continues on the task's existing branch.
    follow_up: bool,
}

/// Runs one task to a final status. `cancel` resolving asks the task to stop.
///
/// Every failure of the task itself (a git error, no sandbox, the model unreachable) ends it in
/// `error` with the reason in the result; only a store failure is returned as `Err`, because
/// then nothing can be recorded.
pub async fn run_task(
    store: &dyn Store,
    model: Arc<dyn ModelClient>,
    valid: ValidSpec,
    task_id: TaskId,
    config: &WorkerConfig,
    cancel: impl Future<Output = ()> + Send,
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<TaskResult, WorkerError> {
    // Leased from birth, so a daemon sharing the store never claims a task this process runs.
    let worker = format!("run-{}-{}", std::process::id(), task_id);
    store.insert_claimed_task(&task_id, &valid.spec, &worker, RUN_LEASE)?;
    let mut recorder = Recorder {
        store,
        task_id: task_id.clone(),
        on_event,
        status: TaskStatus::Queued,
        lease: Some(SelfRenewedLease {
            worker: worker.clone(),
            renewed: Instant::now(),
        }),
    };
    recorder.record(EventKind::TaskCreated {
        spec: valid.spec.clone(),
    })?;
    let turn = Turn {
        start_commit: valid.base_commit.clone(),
        goal: valid.spec.goal.clone(),
        follow_up: false,
    };
    let result = run_turn(&mut recorder, model, &valid, &turn, config, cancel).await;
    store.release(&task_id, &worker)?;
    result
}

/// Runs a task that a worker of the daemon claimed from the queue: a new task, a follow-up
/// (the task finished and got a `follow_up` event since), or a task resumed after the worker
/// running it stopped (its lease lapsed). The caller holds the lease and renews it.
pub async fn run_claimed(
    store: &dyn Store,
    model: Arc<dyn ModelClient>,
    record: &TaskRecord,
    config: &WorkerConfig,
    cancel: impl Future<Output = ()> + Send,
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<TaskResult, WorkerError> {
    let task_id = record.id.clone();
    let mut recorder = Recorder {
        store,
        task_id: task_id.clone(),
        on_event,
        status: record.status,
        lease: None,
    };
    let events = store.events(&task_id, 0)?;
    let finished_before = events
        .iter()
        .rposition(|e| matches!(e.kind, EventKind::TaskFinished { .. }));
    let follow_up = events
        .iter()
        .enumerate()
        .filter(|(i, _)| finished_before.is_none_or(|f| *i > f))
        .filter_map(|(_, e)| match &e.kind {
            EventKind::FollowUp { message } => Some(message.clone()),
            _ => None,
        })
        .next_back();
    let cancelled_while_queued = events
        .iter()
        .enumerate()
        .filter(|(i, _)| finished_before.is_none_or(|f| *i > f))
        .any(|(_, e)| matches!(e.kind, EventKind::CancelRequested { .. }));

    let path = worktree_path(config, &task_id);
    let branch = task_id.branch();
    if matches!(record.status, TaskStatus::Running | TaskStatus::Verifying) {
        // The worker that ran this turn stopped without finishing it: start the turn again
        // from where it started, on a clean worktree.
        recorder.record(EventKind::Notice {
            message: "the worker running this task stopped before it finished (its lease \
                      lapsed); starting the turn again"
                .to_owned(),
        })?;
    }
    let valid = match blocking(|| crate::spec::validate(record.spec.clone())) {
        Ok(valid) => valid,
        Err(error) => {
            let reason = format!("the task can no longer run: {error}");
            return finish_without_run(&mut recorder, TaskStatus::Error, reason);
        }
    };
    // Leftovers of an interrupted run of this task are ours to clear; its branch too, unless
    // an earlier turn committed to it.
    let _ = blocking(|| valid.repo.remove_worktree(&path));
    if cancelled_while_queued {
        return finish_without_run(
            &mut recorder,
            TaskStatus::Cancelled,
            "cancelled before it started".to_owned(),
        );
    }
    let turn = match (&follow_up, &record.result) {
        (Some(message), Some(previous)) => {
            let tip = match blocking(|| valid.repo.resolve_commit(&branch)) {
                Ok(tip) => tip,
                // The first turn changed nothing, so there is no branch yet: start from base.
                Err(_) => valid.base_commit.clone(),
            };
            Turn {
                start_commit: tip,
                goal: follow_up_goal(&valid.spec.goal, previous, message),
                follow_up: true,
            }
        }
        _ => {
            if let Err(error) = blocking(|| valid.repo.delete_branch(&branch)) {
                let reason = format!("could not clear the task's old branch {branch}: {error}");
                return finish_without_run(&mut recorder, TaskStatus::Error, reason);
            }
            Turn {
                start_commit: valid.base_commit.clone(),
                goal: valid.spec.goal.clone(),
                follow_up: false,
            }
        }
    };
    run_turn(&mut recorder, model, &valid, &turn, config, cancel).await
}

/// Runs git (or other blocking work) without stalling the async threads that deliver other
/// tasks' events; plain on a current-thread runtime, where that is not possible.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// What the agent is asked on a follow-up turn: the original goal, what the last turn did, and
/// the new instruction, which wins where they disagree.
fn follow_up_goal(goal: &str, previous: &TaskResult, message: &str) -> String {
    let summary = if previous.summary.trim().is_empty() {
        "(no summary)"
    } else {
        previous.summary.trim()
    };
    format!(
        "{goal}\n\n## Previous turn\nThe work so far is on this branch (status: {}). Its \
         summary:\n{summary}\n\n## Follow-up request\n{message}\n\nDo what the follow-up asks, \
         building on the work already on the branch.",
        previous.status
    )
}

/// Ends a turn that never started the agent, with a reason.
fn finish_without_run(
    recorder: &mut Recorder<'_>,
    status: TaskStatus,
    reason: String,
) -> Result<TaskResult, WorkerError> {
    finish_keeping(recorder, None, status, reason)
}

/// Ends the turn of a task that no worker holds (the caller leased it) without running it: a
/// queued task cancelled through the API. What earlier turns committed stays in the result.
pub fn finish_unstarted(
    store: &dyn Store,
    record: &TaskRecord,
    status: TaskStatus,
    reason: String,
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<TaskResult, WorkerError> {
    let mut recorder = Recorder {
        store,
        task_id: record.id.clone(),
        on_event,
        status: record.status,
        lease: None,
    };
    finish_keeping(&mut recorder, record.result.as_ref(), status, reason)
}

/// The final events of a turn that never ran, with `previous`'s commit carried over.
fn finish_keeping(
    recorder: &mut Recorder<'_>,
    previous: Option<&TaskResult>,
    status: TaskStatus,
    reason: String,
) -> Result<TaskResult, WorkerError> {
    let mut result = unrecorded_failure(&recorder.task_id);
    if let Some(previous) = previous {
        result.branch = previous.branch.clone();
        result.commit = previous.commit.clone();
        result.base_commit = previous.base_commit.clone();
        result.diff_stat = previous.diff_stat.clone();
    }
    result.status = status;
    result.summary = reason.clone();
    result.reason = Some(reason);
    recorder.record(EventKind::StateChanged {
        from: Some(recorder.status),
        to: status,
        reason: result.reason.clone(),
    })?;
    recorder.record(EventKind::TaskFinished {
        result: result.clone(),
    })?;
    Ok(result)
}

fn worktree_path(config: &WorkerConfig, task_id: &TaskId) -> PathBuf {
    config.data_dir.join("worktrees").join(task_id.as_str())
}

/// One turn: the agent on a fresh worktree, the checks, the hand-back, the final events.
async fn run_turn(
    recorder: &mut Recorder<'_>,
    model: Arc<dyn ModelClient>,
    valid: &ValidSpec,
    turn: &Turn,
    config: &WorkerConfig,
    cancel: impl Future<Output = ()> + Send,
) -> Result<TaskResult, WorkerError> {
    let started = Instant::now();
    let task_id = recorder.task_id.clone();
    recorder.record(EventKind::StateChanged {
        from: Some(recorder.status),
        to: TaskStatus::Running,
        reason: None,
    })?;

    let (outcome, worktree, sandbox_mode) =
        drive(recorder, model, valid, turn, config, cancel).await?;
    let mut result = TaskResult {
        task_id: task_id.clone(),
        status: outcome.status,
        branch: None,
        commit: None,
        base_commit: Some(valid.base_commit.clone()),
        summary: outcome.summary.clone(),
        reason: outcome.reason.clone(),
        diff_stat: None,
        checks: outcome.checks.clone(),
        steps: outcome.steps,
        verify_rounds: outcome.verify_rounds,
        usage: outcome.usage,
        cost_usd: outcome.cost_usd,
        duration_ms: 0,
        sandbox: sandbox_mode.map(|mode| mode.as_str().to_owned()),
    };
    if let Some(worktree) = worktree {
        let branch = task_id.branch();
        let committed_or_clean =
            blocking(|| hand_back(recorder, valid, &worktree, config, &outcome, &mut result))?;
        if !committed_or_clean {
            // Whatever the agent achieved, the hand-back failed: the task must not look done.
            result.status = TaskStatus::Error;
            result.reason = Some(format!(
                "could not commit the work; it is kept in the worktree at {}",
                worktree.path().display()
            ));
        }
        // A worktree holding work that could not be committed is kept: nothing is lost.
        if committed_or_clean
            && let Err(error) = blocking(|| valid.repo.remove_worktree(worktree.path()))
        {
            recorder.record(EventKind::Notice {
                message: format!("could not remove the worktree: {error}"),
            })?;
        }
        if committed_or_clean
            && result.commit.is_none()
            && !turn.follow_up
            && let Err(error) = blocking(|| valid.repo.delete_branch(&branch))
        {
            // Nothing was committed: leave no empty branch behind.
            recorder.record(EventKind::Notice {
                message: format!("could not delete the empty branch {branch}: {error}"),
            })?;
        }
    }

    if result.summary.trim().is_empty() {
        result.summary = result.reason.clone().unwrap_or_default();
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    recorder.record(EventKind::StateChanged {
        from: Some(recorder.status),
        to: result.status,
        reason: result.reason.clone(),
    })?;
    recorder.record(EventKind::TaskFinished {
        result: result.clone(),
    })?;
    Ok(result)
}

/// The outcome of preparing the workspace: the worktree if one was created (it must be
/// handed back or cleaned up even when the rest failed) and the workspace or why not.
struct Prepared {
    worktree: Option<Worktree>,
    workspace: Result<(Workspace, Sandbox), String>,
}

/// Creates the worktree, the sandbox and the tools. Slow for big repositories (the checkout),
/// so it runs on a blocking thread while the agent's first model request is in flight.
/// Everything [`prepare`] needs, owned, so it can run on a blocking thread.
struct PrepareJob {
    repo: Repo,
    path: PathBuf,
    branch: String,
    base: String,
    /// Check out the task's existing branch (a follow-up) instead of creating it at `base`.
    existing_branch: bool,
    config: WorkerConfig,
    checks: Vec<String>,
    allow_domains: Vec<String>,
    env: Vec<(String, String)>,
}

fn prepare(job: PrepareJob) -> Prepared {
    let PrepareJob {
        repo,
        path,
        branch,
        base,
        existing_branch,
        config,
        checks,
        allow_domains,
        env,
    } = job;
    let added = if existing_branch {
        repo.add_worktree_on_branch(&path, &branch)
    } else {
        repo.add_worktree(&path, &branch, &base)
    };
    let worktree = match added {
        Ok(worktree) => worktree,
        Err(error) => {
            // git may have created the branch (and part of the worktree) before failing. The
            // branch cannot be anyone else's: add_worktree refuses an existing one up front.
            if !existing_branch && !matches!(error, GitError::BranchExists { .. }) {
                let _ = repo.remove_worktree(&path);
                let _ = repo.delete_branch(&branch);
            }
            return Prepared {
                worktree: None,
                workspace: Err(format!("could not create the task's worktree: {error}")),
            };
        }
    };
    let workspace = Sandbox::new(worktree.path(), config.sandbox_mode)
        .map_err(|error| format!("refusing to run agent commands: {error}"))
        .map(|sandbox| sandbox.with_env(env))
        .map(|sandbox| {
            if allow_domains.is_empty() {
                sandbox
            } else {
                sandbox.with_network(NetworkPolicy {
                    allow_domains,
                    bridge: config.network_bridge.clone(),
                })
            }
        })
        .and_then(|sandbox| {
            let shell_limits = Limits {
                timeout: config.shell_timeout,
                ..Limits::default()
            };
            let toolbox = Toolbox::new(sandbox.clone(), shell_limits)
                .map_err(|error| format!("could not set up the tools: {error}"))?;
            let checks = SandboxChecks {
                sandbox: sandbox.clone(),
                commands: checks,
                timeout: config.check_timeout,
            };
            Ok((
                Workspace {
                    toolbox: Arc::new(toolbox),
                    checks: Arc::new(checks),
                },
                sandbox,
            ))
        });
    Prepared {
        worktree: Some(worktree),
        workspace,
    }
}

/// Runs the agent while the workspace is prepared, recording every event. Returns the agent's
/// outcome and the worktree, if one was created.
async fn drive(
    recorder: &mut Recorder<'_>,
    model: Arc<dyn ModelClient>,
    valid: &ValidSpec,
    turn: &Turn,
    config: &WorkerConfig,
    cancel: impl Future<Output = ()> + Send,
) -> Result<(AgentOutcome, Option<Worktree>, Option<SandboxMode>), WorkerError> {
    let failed = |reason: String| AgentOutcome {
        status: TaskStatus::Error,
        summary: String::new(),
        reason: Some(reason),
        steps: 0,
        verify_rounds: 0,
        usage: Usage::default(),
        cost_usd: None,
        checks: Vec::new(),
    };
    // The prompt is built from the start commit's objects, which needs no checkout.
    let (files, instructions) = match (
        valid.repo.files_at(&turn.start_commit),
        valid.repo.read_file_at(&turn.start_commit, "AGENTS.md"),
    ) {
        (Ok(files), Ok(instructions)) => (files, instructions),
        (Err(error), _) | (_, Err(error)) => {
            return Ok((
                failed(format!("could not read the repository: {error}")),
                None,
                None,
            ));
        }
    };
    let branch = recorder.task_id.branch();
    let path = worktree_path(config, &recorder.task_id);
    let job = PrepareJob {
        repo: valid.repo.clone(),
        path: path.clone(),
        branch: branch.clone(),
        base: turn.start_commit.clone(),
        existing_branch: turn.follow_up,
        config: config.clone(),
        checks: valid.spec.checks.clone(),
        allow_domains: valid.spec.allow_domains.clone(),
        // Pass-through values are read here, at run time, and never stored with the task.
        env: valid
            .spec
            .env
            .iter()
            .filter_map(|(name, value)| {
                let value = value.clone().or_else(|| std::env::var(name).ok())?;
                Some((name.clone(), value))
            })
            .collect(),
    };
    let mut preparing = Some(tokio::task::spawn_blocking(move || prepare(job)));
    let (workspace_tx, workspace_rx) = oneshot::channel();
    let mut workspace_tx = Some(workspace_tx);
    let mut agent = nightshift_agent::spawn(
        AgentSetup {
            goal: turn.goal.clone(),
            checks: valid.spec.checks.clone(),
            budget: valid.spec.budget.clone(),
            max_verify_rounds: valid.spec.max_verify_rounds,
            context_window: config.context_window,
            instructions,
            files,
            model,
            tool_specs: config.scaffold.tool_specs(config.shell_timeout),
            scaffold: config.scaffold,
            prices: config.prices,
        },
        workspace_rx,
    );
    let mut worktree = None;
    // Kept to drain the network proxy's log into events after each command.
    let mut sandbox: Option<Sandbox> = None;
    tokio::pin!(cancel);
    let mut cancel_sent = false;
    let outcome = loop {
        tokio::select! {
            biased;
            joined = async { preparing.as_mut().expect("guarded by the select condition").await }, if preparing.is_some() => {
                preparing = None;
                let prepared = joined.unwrap_or_else(|panic| Prepared {
                    worktree: None,
                    workspace: Err(format!("preparing the workspace panicked (a bug): {panic}")),
                });
                worktree = prepared.worktree;
                let workspace = match prepared.workspace {
                    Ok((workspace, ready)) => {
                        record_ready(recorder, &ready, &path, &branch, &turn.start_commit)?;
                        sandbox = Some(ready);
                        Ok(workspace)
                    }
                    Err(reason) => Err(record_unready(recorder, reason)?),
                };
                if let Some(tx) = workspace_tx.take() {
                    // The agent may have finished already; then nobody needs the workspace.
                    let _ = tx.send(workspace);
                }
            }
            () = &mut cancel, if !cancel_sent => {
                agent.submit(Op::Cancel);
                cancel_sent = true;
            }
            next = agent.next_event() => match next {
                Some(AgentEvent::Event(kind)) => {
                    if matches!(kind, EventKind::CommandFinished(_))
                        && let Some(sandbox) = &sandbox
                    {
                        // What the command asked of the network, before its own record.
                        for request in sandbox.network_log() {
                            recorder.record(EventKind::NetworkRequest {
                                host: request.host,
                                port: request.port,
                                method: request.method,
                                allowed: request.allowed,
                                reason: request.reason,
                            })?;
                        }
                    }
                    recorder.record(kind)?;
                }
                Some(AgentEvent::Finished(outcome)) => break outcome,
                None => break failed("the agent stopped without a result (a bug)".to_owned()),
            },
        }
    };
    if let Some(handle) = preparing {
        // The agent ended before the workspace was ready: wait for it, so that it is cleaned up.
        if let Ok(prepared) = handle.await {
            worktree = prepared.worktree;
            // Nobody needs the workspace any more; it is recorded for the trail and dropped.
            match prepared.workspace {
                Ok((_, ready)) => {
                    record_ready(recorder, &ready, &path, &branch, &turn.start_commit)?;
                    sandbox = Some(ready);
                }
                Err(reason) => {
                    record_unready(recorder, reason)?;
                }
            }
        }
    }
    Ok((outcome, worktree, sandbox.map(|s| s.mode())))
}

/// Records that the workspace is ready, before the agent may act on it.
fn record_ready(
    recorder: &mut Recorder<'_>,
    sandbox: &Sandbox,
    path: &Path,
    branch: &str,
    base_commit: &str,
) -> Result<(), WorkerError> {
    recorder.record(EventKind::WorkspaceReady {
        path: path.display().to_string(),
        branch: branch.to_owned(),
        base_commit: base_commit.to_owned(),
    })?;
    if sandbox.mode() == SandboxMode::None {
        recorder.record(EventKind::Notice {
            message:
                "sandbox: none — commands run WITHOUT isolation, as chosen with --sandbox none"
                    .to_owned(),
        })?;
    }
    Ok(())
}

/// Records why the workspace could not be prepared; returns the reason for the agent.
fn record_unready(recorder: &mut Recorder<'_>, reason: String) -> Result<String, WorkerError> {
    recorder.record(EventKind::Notice {
        message: reason.clone(),
    })?;
    Ok(reason)
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
