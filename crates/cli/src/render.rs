//! What people see: progress lines on stderr while a task runs, the summary on stdout after.

use std::fmt::Write as _;

use nightshift_protocol::{Event, EventKind, TaskResult, TaskStatus};

/// Prints one line per interesting event to stderr.
pub struct Progress {
    quiet: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            quiet: std::env::var_os("NIGHTSHIFT_QUIET").is_some(),
        }
    }

    pub fn event(&mut self, event: &Event) {
        if self.quiet {
            return;
        }
        if let Some(line) = progress_line(event) {
            eprintln!("{line}");
        }
    }
}

/// The progress line for an event, or `None` for events too chatty to show live.
fn progress_line(event: &Event) -> Option<String> {
    Some(match &event.kind {
        EventKind::TaskCreated { spec } => {
            format!("nightshift: task {} on {}", event.task_id, spec.repo)
        }
        EventKind::WorkspaceReady { branch, path, .. } => {
            format!("  worktree {path} on branch {branch}")
        }
        // The tool call line says what the model asked for; a separate line for the answer
        // that carried it would only repeat it.
        EventKind::ModelResponse { tool_calls, .. } if !tool_calls.is_empty() => return None,
        EventKind::ModelRequest { .. } | EventKind::StateChanged { .. } => return None,
        EventKind::TaskFinished { .. } => return None,
        _ => event_body(&event.kind),
    })
}

/// One human-readable line for any event, with its time and sequence number (for `logs`).
pub fn event_line(event: &Event) -> String {
    format!("{} {:>4} {}", event.ts, event.seq, event_body(&event.kind))
}

/// What an event says, without its time and sequence number.
pub fn event_body(kind: &EventKind) -> String {
    match kind {
        EventKind::TaskCreated { spec } => {
            format!(
                "task created: {:?} on {}",
                one_line(&spec.goal, 80),
                spec.repo
            )
        }
        EventKind::StateChanged { from, to, reason } => {
            let from = from.map(|f| f.as_str()).unwrap_or("-");
            match reason {
                Some(reason) => format!("state {from} → {to} ({reason})"),
                None => format!("state {from} → {to}"),
            }
        }
        EventKind::WorkspaceReady {
            path,
            branch,
            base_commit,
        } => {
            format!("worktree {path} on {branch} from {}", short(base_commit))
        }
        EventKind::Notice { message } => format!("note: {message}"),
        EventKind::ModelRequest {
            step,
            model,
            messages,
            estimated_tokens,
            ..
        } => {
            format!("[{step}] → {model}: {messages} messages, ~{estimated_tokens} tokens")
        }
        EventKind::ModelRetry {
            step,
            attempt,
            error,
            wait_ms,
        } => {
            format!(
                "[{step}] model request failed (attempt {attempt}): {error}; retrying in {wait_ms} ms"
            )
        }
        EventKind::ModelResponse {
            step,
            content,
            tool_calls,
            usage,
            latency_ms,
            ..
        } => {
            let what = if tool_calls.is_empty() {
                format!("answered {:?}", one_line(content, 100))
            } else {
                let names: Vec<&str> = tool_calls.iter().map(|c| c.name.as_str()).collect();
                format!("calls {}", names.join(", "))
            };
            format!(
                "[{step}] model {what} ({} in / {} out tokens, {})",
                usage.input_tokens,
                usage.output_tokens,
                seconds(*latency_ms)
            )
        }
        EventKind::ToolCall {
            step,
            name,
            arguments,
            ..
        } => {
            format!("[{step}] {name} {}", one_line(arguments, 120))
        }
        EventKind::ToolResult {
            step,
            name,
            output,
            is_error,
            duration_ms,
            ..
        } => {
            let mark = if *is_error { "error" } else { "ok" };
            format!(
                "[{step}] {name} {mark} ({}): {}",
                seconds(*duration_ms),
                one_line(output, 100)
            )
        }
        EventKind::CommandFinished(report) => {
            let ended = match (report.exit_code, report.signal, &report.limit) {
                (_, _, Some(limit)) => format!("stopped by {limit}"),
                (Some(code), _, _) => format!("exit {code}"),
                (None, Some(signal), _) => format!("signal {signal}"),
                (None, None, None) => "ended".to_owned(),
            };
            format!(
                "  {} `{}` → {ended} ({}, {} bytes of output, sandbox {})",
                report.purpose,
                one_line(&report.command, 80),
                seconds(report.duration_ms),
                report.output_bytes,
                report.sandbox
            )
        }
        EventKind::ContextCompacted {
            messages_compacted,
            tokens_before,
            tokens_after,
            trigger,
            ..
        } => format!(
            "context compacted ({trigger}): {messages_compacted} messages summarised, \
             ~{tokens_before} → ~{tokens_after} tokens"
        ),
        EventKind::NetworkRequest {
            host,
            port,
            method,
            allowed,
            reason,
        } => {
            let verdict = if *allowed { "allowed" } else { "DENIED" };
            match reason {
                Some(reason) => format!("  network {method} {host}:{port} {verdict} ({reason})"),
                None => format!("  network {method} {host}:{port} {verdict}"),
            }
        }
        EventKind::ChecksFinished {
            round,
            passed,
            checks,
        } => {
            let mut line = format!(
                "checks, round {round}: {}",
                if *passed { "all passed" } else { "FAILED" }
            );
            for check in checks {
                let mark = if check.passed { "✓" } else { "✗" };
                let _ = write!(
                    line,
                    "\n  {mark} {} ({})",
                    check.command,
                    seconds(check.duration_ms)
                );
            }
            line
        }
        EventKind::ContextTrimmed {
            messages_trimmed,
            tokens_before,
            tokens_after,
        } => format!(
            "context trimmed: {messages_trimmed} messages, ~{tokens_before} → ~{tokens_after} tokens"
        ),
        EventKind::Committed {
            branch,
            commit,
            diff_stat,
            ..
        } => format!(
            "committed {} on {branch}: {} file(s) changed, +{} -{}",
            short(commit),
            diff_stat.files_changed,
            diff_stat.insertions,
            diff_stat.deletions
        ),
        EventKind::TaskFinished { result } => format!("finished: {}", result.status),
        EventKind::CancelRequested { reason } => match reason {
            Some(reason) => format!("cancel requested: {reason}"),
            None => "cancel requested".to_owned(),
        },
        EventKind::FollowUp { message } => format!("follow-up: {message}"),
    }
}

/// The summary printed when a task ends (and by `nightshift show`).
pub fn summary(result: &TaskResult) -> String {
    let mut out = String::new();
    let headline = match result.status {
        TaskStatus::Succeeded => "succeeded",
        // Failed is either checks that never passed or a model that got stuck; the reason
        // line below says which.
        TaskStatus::Failed => "FAILED",
        TaskStatus::BudgetExhausted => "stopped: budget exhausted",
        TaskStatus::Cancelled => "cancelled",
        _ => "ERROR",
    };
    let _ = writeln!(out, "\nTask {} {headline}", result.task_id);
    if let Some(reason) = &result.reason {
        let _ = writeln!(out, "  reason: {reason}");
    }
    if result.sandbox.as_deref() == Some("none") {
        let _ = writeln!(
            out,
            "  sandbox: NONE — commands ran without isolation (--sandbox none)"
        );
    }
    match (&result.branch, &result.commit) {
        (Some(branch), Some(commit)) => {
            let _ = writeln!(out, "  branch: {branch} (commit {})", short(commit));
            let _ = writeln!(
                out,
                "  review: git diff {}...{branch}",
                short(result.base_commit.as_deref().unwrap_or("HEAD"))
            );
        }
        _ => {
            let _ = writeln!(out, "  branch: none (no changes were made)");
        }
    }
    if let Some(stat) = &result.diff_stat
        && !stat.text.trim().is_empty()
    {
        let _ = writeln!(out, "\nChanges:");
        for line in stat.text.lines() {
            let _ = writeln!(out, "  {}", line.trim_start());
        }
    }
    if !result.summary.trim().is_empty() {
        let _ = writeln!(out, "\nSummary:");
        for line in result.summary.trim().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !result.checks.is_empty() {
        let _ = writeln!(out, "\nChecks:");
        for check in &result.checks {
            let mark = if check.passed { "✓" } else { "✗" };
            let code = check
                .exit_code
                .map_or("killed".to_owned(), |c| format!("exit {c}"));
            let _ = writeln!(
                out,
                "  {mark} {} ({code}, {})",
                check.command,
                seconds(check.duration_ms)
            );
        }
    }
    let usage = &result.usage;
    let cost = result
        .cost_usd
        .map(|cost| format!(" · cost ${cost:.4}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\nSteps {} · verification rounds {} · tokens {} ({} in, {} cached, {} out){cost} · time {}",
        result.steps,
        result.verify_rounds,
        usage.total(),
        usage.input_tokens,
        usage.cached_tokens,
        usage.output_tokens,
        seconds(result.duration_ms)
    );
    out
}

/// The last line of `--json` output: `{"type":"result", ...}`.
pub fn result_line(result: &TaskResult) -> anyhow::Result<String> {
    let body = serde_json::to_string(result)?;
    // `body` is a JSON object; put the type tag first so the line reads naturally.
    Ok(format!("{{\"type\":\"result\",{}", &body[1..]))
}

pub fn note(message: &str) {
    eprintln!("nightshift: {message}");
}

pub fn error(error: &anyhow::Error) {
    let mut text = format!("error: {error}");
    for cause in error.chain().skip(1) {
        let _ = write!(text, "\n  caused by: {cause}");
    }
    eprintln!("{text}");
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

fn seconds(millis: u64) -> String {
    if millis < 1000 {
        format!("{millis} ms")
    } else {
        format!("{:.1} s", millis as f64 / 1000.0)
    }
}

/// `text` on one line, whitespace collapsed, cut at `max_chars` with an ellipsis.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}
