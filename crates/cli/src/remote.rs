//! The CLI as a client of a running daemon (`nightshift serve`): submit, ls, show, logs -f,
//! diff, apply, reply, cancel. The HTTP API is described in docs/API.md.

mod client;
mod follow;
mod sse;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::bail;
use nightshift_git::{MergeKind, Repo};
use nightshift_protocol::{Event, TaskId, TaskResult, TaskSpec, TaskStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::args::{
    ApplyArgs, ClientArgs, LogsArgs, LsArgs, ReplyArgs, ShowArgs, SubmitArgs, TaskIdArg,
};
use crate::render;
use client::{Client, Settings};

/// Whether a daemon is configured (flag, NIGHTSHIFT_URL or `[client] url` in the config
/// file), so `show` and `logs` ask it rather than the local store.
pub fn configured(client: &ClientArgs) -> bool {
    // A config file that cannot be read leaves `show` and `logs` on the local store, which
    // needs no config at all.
    Settings::resolve(client).is_ok_and(|settings| settings.url.is_some())
}

/// A task as the API shows it (docs/API.md, "Tasks").
#[derive(Debug, Deserialize)]
struct Task {
    id: TaskId,
    status: TaskStatus,
    branch: Option<String>,
    spec: TaskSpec,
    created_at: String,
    result: Option<TaskResult>,
}

/// Decodes a task the daemon sent, keeping the JSON for `--json` output.
fn task_from(value: Value) -> anyhow::Result<(Task, Value)> {
    let task = serde_json::from_value(value.clone()).map_err(|error| {
        anyhow::anyhow!(
            "the daemon sent a task this nightshift cannot read: {error}\nhint: use a \
             nightshift client of the same version as the daemon"
        )
    })?;
    Ok((task, value))
}

fn parse_id(task_id: &str) -> anyhow::Result<TaskId> {
    TaskId::parse(task_id).ok_or_else(|| {
        anyhow::anyhow!(
            "`{task_id}` is not a task id\nhint: task ids are the hex strings `nightshift \
             submit` and `nightshift ls` print, e.g. 19ab3c4d5e60abc"
        )
    })
}

/// Writes `text` to stdout; a closed stdout (e.g. piped into `head`) is not an error.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// One event as `logs` prints it (JSONL with `--json`); false when stdout is closed.
fn print_event(out: &mut impl Write, event: &Event, json: bool) -> bool {
    let line = if json {
        match serde_json::to_string(event) {
            Ok(line) => line,
            Err(_) => return true, // an Event always serializes; nothing to print if not
        }
    } else {
        render::event_line(event)
    };
    writeln!(out, "{line}").is_ok()
}

pub async fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    if args.goal.trim().is_empty() {
        bail!(
            "the goal is empty\nhint: say what to do, e.g. nightshift submit \"Fix the flaky test in tests/io.rs\""
        );
    }
    let repo = std::path::absolute(&args.repo).map_err(|error| {
        anyhow::anyhow!("could not make {} absolute: {error}", args.repo.display())
    })?;
    let client = Client::new(&args.client)?;
    // Only what was given, so the daemon's defaults apply to the rest.
    let mut spec = json!({
        "repo": repo.display().to_string(),
        "goal": args.goal,
        "checks": args.checks,
    });
    if let Some(base) = &args.base_ref {
        spec["base_ref"] = json!(base);
    }
    let mut budget = serde_json::Map::new();
    if let Some(steps) = args.max_steps {
        budget.insert("max_steps".into(), json!(steps));
    }
    if let Some(tokens) = args.max_tokens {
        budget.insert("max_tokens".into(), json!(tokens));
    }
    if let Some(timeout) = args.timeout {
        // Rounded up: "500ms" must not become "no limit".
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        budget.insert("timeout_secs".into(), json!(secs));
    }
    if !budget.is_empty() {
        spec["budget"] = Value::Object(budget);
    }
    if let Some(rounds) = args.max_verify_rounds {
        spec["max_verify_rounds"] = json!(rounds);
    }
    if !args.labels.is_empty() {
        spec["labels"] = json!(args.labels);
    }
    if !args.allow_domains.is_empty() {
        spec["allow_domains"] = json!(args.allow_domains);
    }
    let (task, value) = task_from(client.post("/api/tasks", &spec).await?)?;
    if args.json {
        out(&format!("{value}\n"));
    } else {
        out(&format!("{}\n", task.id));
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Deserialize)]
struct Page {
    tasks: Vec<Value>,
    next: Option<String>,
}

/// The most tasks the API returns in one page.
const MAX_PAGE: usize = 500;

pub async fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    for word in &args.status {
        if word.parse::<TaskStatus>().is_err() {
            let known: Vec<_> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
            bail!(
                "`{word}` is not a task status\nhint: use one or more of: {}",
                known.join(", ")
            );
        }
    }
    if args.limit == 0 {
        bail!("--limit 0 lists nothing\nhint: pass --limit 1 or more (default 20)");
    }
    // Tasks record their repository's top level; a path inside it, or a relative one,
    // should find them too.
    let repo = args.repo.as_deref().map(|path| match Repo::open(path) {
        Ok(repo) => repo.path().display().to_string(),
        Err(_) => std::path::absolute(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
    });
    let client = Client::new(&args.client)?;
    let mut tasks = Vec::new();
    let mut before: Option<String> = None;
    while tasks.len() < args.limit {
        let mut query = vec![(
            "limit",
            (args.limit - tasks.len()).min(MAX_PAGE).to_string(),
        )];
        if !args.status.is_empty() {
            query.push(("status", args.status.join(",")));
        }
        if let Some(repo) = &repo {
            query.push(("repo", repo.clone()));
        }
        if let Some(label) = &args.label {
            query.push(("label", label.clone()));
        }
        if let Some(before) = &before {
            query.push(("before", before.clone()));
        }
        let page: Page = client.get_query("/api/tasks", &query).await?;
        tasks.extend(page.tasks);
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    tasks.truncate(args.limit);
    if args.json {
        let mut text = String::new();
        for task in &tasks {
            text.push_str(&format!("{task}\n"));
        }
        out(&text);
        return Ok(ExitCode::SUCCESS);
    }
    if tasks.is_empty() {
        render::note("no tasks match");
        return Ok(ExitCode::SUCCESS);
    }
    let tasks = tasks
        .into_iter()
        .map(|value| task_from(value).map(|(task, _)| task))
        .collect::<anyhow::Result<Vec<_>>>()?;
    out(&table(&tasks, SystemTime::now()));
    Ok(ExitCode::SUCCESS)
}

/// The `ls` table: id, status, age, repo, goal.
fn table(tasks: &[Task], now: SystemTime) -> String {
    let rows: Vec<[String; 5]> = tasks
        .iter()
        .map(|task| {
            [
                task.id.to_string(),
                task.status.to_string(),
                age(&task.created_at, now),
                task.spec.repo.clone(),
                render::one_line(&task.spec.goal, 60),
            ]
        })
        .collect();
    let header = ["ID", "STATUS", "AGE", "REPO", "GOAL"].map(str::to_owned);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter().zip(row) {
            text.push_str(&format!("{cell:<width$}  "));
        }
        text.push_str(&row[4]);
        text.push('\n');
    }
    text
}

/// How long ago an RFC 3339 time was, in one short unit: 45s, 12m, 5h, 3d.
fn age(created_at: &str, now: SystemTime) -> String {
    let Ok(created) = humantime::parse_rfc3339(created_at) else {
        return "?".to_owned();
    };
    let secs = now
        .duration_since(created)
        .map_or(0, |elapsed| elapsed.as_secs());
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 60 * 60 => format!("{}m", s / 60),
        s if s < 48 * 60 * 60 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

pub async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let id = parse_id(&args.task_id)?;
    let client = Client::new(&args.client)?;
    let (task, _) = task_from(client.get(&format!("/api/tasks/{id}")).await?)?;
    // What the local `show` prints for the same task.
    let text = match &task.result {
        Some(result) if args.json => format!("{}\n", render::result_line(result)?),
        Some(result) => render::summary(result),
        None if args.json => format!("{}\n", json!({"task_id": task.id, "status": task.status})),
        None => format!("task {} is {} (no result yet)\n", task.id, task.status),
    };
    out(&text);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Deserialize)]
struct Events {
    events: Vec<Event>,
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let id = parse_id(&args.task_id)?;
    let client = Client::new(&args.client)?;
    if args.follow {
        return follow::follow(&client, &id, args.json).await;
    }
    let events: Events = client.get(&format!("/api/tasks/{id}/events")).await?;
    let mut stdout = std::io::stdout().lock();
    for event in &events.events {
        if !print_event(&mut stdout, event, args.json) {
            break; // stdout closed (e.g. piped into `head`): stop quietly.
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn diff(args: TaskIdArg) -> anyhow::Result<ExitCode> {
    let id = parse_id(&args.task_id)?;
    let client = Client::new(&args.client)?;
    let text = client.get_text(&format!("/api/tasks/{id}/diff")).await?;
    out(&text);
    Ok(ExitCode::SUCCESS)
}

/// How many uncommitted paths `apply` names before it says "and N more".
const LIST_AT_MOST: usize = 20;

pub async fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let id = parse_id(&args.task_id)?;
    let checkout = Repo::open(&args.repo)?;
    let client = Client::new(&args.client)?;
    let (task, _) = task_from(client.get(&format!("/api/tasks/{id}")).await?)?;
    if !task.status.is_final() {
        bail!(
            "task {id} is {}; there is nothing to apply until it finishes\nhint: wait for it \
             with `nightshift logs -f {id}`",
            task.status
        );
    }
    let branch = task
        .result
        .as_ref()
        .and_then(|result| result.branch.clone())
        .or(task.branch.clone());
    let Some(branch) = branch else {
        bail!(
            "task {id} ended {} without changes, so there is nothing to apply\nhint: see what \
             happened with `nightshift show {id}`",
            task.status
        );
    };

    // The branch lives in the repository the task worked on; merging makes sense only in a
    // checkout of that same repository (or one of its worktrees).
    let task_repo = Repo::open(Path::new(&task.spec.repo)).map_err(|error| {
        anyhow::anyhow!(
            "task {id} worked on {}, which is not a repository here ({})\nhint: run `nightshift \
             apply` on the daemon's machine, in that repository",
            task.spec.repo,
            render::one_line(&error.to_string(), 200)
        )
    })?;
    if task_repo.common_dir()? != checkout.common_dir()? {
        bail!(
            "task {id} belongs to the repository at {}, not to {}\nhint: run `nightshift apply \
             {id} --repo {}`",
            task.spec.repo,
            checkout.path().display(),
            task.spec.repo
        );
    }
    let dirty = checkout.uncommitted()?;
    if !dirty.is_empty() {
        let mut names = dirty
            .iter()
            .take(LIST_AT_MOST)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if dirty.len() > LIST_AT_MOST {
            names.push_str(&format!(" and {} more", dirty.len() - LIST_AT_MOST));
        }
        bail!(
            "the checkout at {} has uncommitted changes: {names}\nhint: commit or stash them \
             (git stash --include-untracked), then run `nightshift apply {id}` again",
            checkout.path().display()
        );
    }
    if task.status != TaskStatus::Succeeded {
        render::note(&format!(
            "task {id} ended {}; applying its branch anyway",
            task.status
        ));
    }
    let outcome = checkout.merge(&branch)?;
    let head = &outcome.head[..outcome.head.len().min(10)];
    let text = match outcome.kind {
        MergeKind::AlreadyUpToDate => {
            format!("{branch} is already in {}; nothing to do\n", outcome.into)
        }
        MergeKind::FastForward => format!(
            "applied task {id}: fast-forwarded {} to {branch} ({head})\n",
            outcome.into
        ),
        MergeKind::MergeCommit => format!(
            "applied task {id}: merged {branch} into {} (merge commit {head})\n",
            outcome.into
        ),
    };
    out(&text);
    Ok(ExitCode::SUCCESS)
}

pub async fn reply(args: ReplyArgs) -> anyhow::Result<ExitCode> {
    let id = parse_id(&args.task_id)?;
    if args.message.trim().is_empty() {
        bail!(
            "the follow-up message is empty\nhint: say what to do next, e.g. nightshift reply \
             {id} \"Also update the changelog\""
        );
    }
    let client = Client::new(&args.client)?;
    let body = json!({ "message": args.message });
    let (task, _) = task_from(
        client
            .post(&format!("/api/tasks/{id}/messages"), &body)
            .await?,
    )?;
    render::note(&format!(
        "task {id} continues on its branch ({}); follow it with `nightshift logs -f {id}`",
        task.status
    ));
    Ok(ExitCode::SUCCESS)
}

pub async fn cancel(args: TaskIdArg) -> anyhow::Result<ExitCode> {
    let id = parse_id(&args.task_id)?;
    let client = Client::new(&args.client)?;
    let (task, _) = task_from(
        client
            .post(&format!("/api/tasks/{id}/cancel"), &json!({}))
            .await?,
    )?;
    if task.status.is_final() {
        render::note(&format!("task {id} is {}", task.status));
    } else {
        render::note(&format!(
            "task {id} is stopping and will end cancelled; watch it with `nightshift logs -f {id}`"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::age;

    #[test]
    fn ages_are_one_short_unit() {
        let created = "2026-11-24T12:00:00.000Z";
        let at = |secs| humantime::parse_rfc3339(created).unwrap() + Duration::from_secs(secs);
        assert_eq!(age(created, at(0)), "0s");
        assert_eq!(age(created, at(59)), "59s");
        assert_eq!(age(created, at(600)), "10m");
        assert_eq!(age(created, at(3 * 3600)), "3h");
        assert_eq!(age(created, at(47 * 3600)), "47h");
        assert_eq!(age(created, at(3 * 86_400)), "3d");
        assert_eq!(age("yesterday", SystemTime::now()), "?");
        // A clock behind the daemon's is not a negative age.
        assert_eq!(age(created, at(0) - Duration::from_secs(5)), "0s");
    }
}
