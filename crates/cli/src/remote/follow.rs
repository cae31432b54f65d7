//! `nightshift logs -f` against the daemon: the SSE event stream, printed as it comes,
//! resumed with `Last-Event-ID` when the connection drops, until the task finishes.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use nightshift_protocol::{Event, EventKind, TaskId, TaskStatus};

use super::client::{Client, ClientError};
use super::sse;
use super::{Task, print_event};
use crate::render;

/// The daemon sends a keep-alive every 15 s; this much silence means the connection is dead
/// even if no error says so (a laptop that slept, a proxy that dropped it).
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// Reconnects in a row that bring no event before giving up (about a minute with the
/// backoff below), so a daemon restart is ridden out and a daemon that is gone is reported.
const MAX_FAILURES: u32 = 12;

/// How one connection ended.
enum End {
    /// The server closed the stream (it does after the final `task_finished`).
    Closed,
    /// The connection broke or went silent.
    Dropped(ClientError),
    /// stdout was closed (e.g. piped into `head`): stop quietly.
    StdoutClosed,
}

struct Follower {
    json: bool,
    last_seq: u64,
    /// The final status of the last `task_finished` seen, cleared by any event after it (a
    /// follow-up starts a new turn).
    finished: Option<TaskStatus>,
}

pub async fn follow(client: &Client, id: &TaskId, json: bool) -> anyhow::Result<ExitCode> {
    let path = format!("/api/tasks/{id}/events/stream");
    let mut follower = Follower {
        json,
        last_seq: 0,
        finished: None,
    };
    let mut failures = 0u32;
    loop {
        let seq_before = follower.last_seq;
        let resume = (follower.last_seq > 0).then_some(follower.last_seq);
        let end = match client.stream(&path, resume).await {
            Ok(response) => follower.read(client, response).await,
            Err(error @ ClientError::Unreachable { .. }) => End::Dropped(error),
            // A daemon restarting behind a proxy (502/503) comes back; a 4xx will not change.
            Err(error @ ClientError::Api { status, .. }) if status.is_server_error() => {
                End::Dropped(error)
            }
            Err(error) => return Err(error.into()),
        };
        let error = match end {
            End::StdoutClosed => return Ok(ExitCode::SUCCESS),
            End::Closed => match follower.finished {
                Some(status) => return Ok(ExitCode::from(status.exit_code())),
                None => ClientError::Protocol(format!(
                    "the daemon ended the event stream of task {id} before the task finished"
                )),
            },
            End::Dropped(error) => error,
        };
        if follower.last_seq > seq_before {
            failures = 0;
        }
        failures += 1;
        if failures > MAX_FAILURES {
            return Err(error.into());
        }
        // The stream broke right after the end of a turn: ask whether that was the end.
        if let Some(status) = follower.finished
            && let Ok(task) = client.get::<Task>(&format!("/api/tasks/{id}")).await
            && task.status.is_final()
        {
            return Ok(ExitCode::from(status.exit_code()));
        }
        let wait = backoff(failures);
        render::note(&format!(
            "lost the event stream ({}); resuming after event {} in {} ms",
            // Its first line: the hint is for when we give up.
            error.to_string().lines().next().unwrap_or_default(),
            follower.last_seq,
            wait.as_millis()
        ));
        tokio::time::sleep(wait).await;
    }
}

impl Follower {
    async fn read(&mut self, client: &Client, mut response: reqwest::Response) -> End {
        let mut parser = sse::Parser::default();
        loop {
            let chunk = match tokio::time::timeout(IDLE_TIMEOUT, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => return End::Closed,
                Ok(Err(error)) => return End::Dropped(client.unreachable(&error)),
                Err(_) => {
                    return End::Dropped(ClientError::Protocol(format!(
                        "nothing from the daemon for {} s",
                        IDLE_TIMEOUT.as_secs()
                    )));
                }
            };
            let messages = match parser.feed(&chunk) {
                Ok(messages) => messages,
                Err(error) => return End::Dropped(ClientError::Protocol(error)),
            };
            for message in messages {
                if !self.handle(&message.data) {
                    return End::StdoutClosed;
                }
            }
        }
    }

    /// Prints one event unless it was seen already; false when stdout is closed.
    fn handle(&mut self, data: &str) -> bool {
        let value: serde_json::Value = match serde_json::from_str(data) {
            Ok(value) => value,
            Err(error) => {
                render::note(&format!(
                    "skipped an event stream message that is not JSON: {error}"
                ));
                return true;
            }
        };
        let Some(seq) = value.get("seq").and_then(serde_json::Value::as_u64) else {
            render::note("skipped an event without a seq");
            return true;
        };
        // The daemon resumes exactly after Last-Event-ID; this only guards against a replay.
        if seq <= self.last_seq {
            return true;
        }
        self.last_seq = seq;
        let event: Event = match serde_json::from_value(value) {
            Ok(event) => event,
            Err(error) => {
                // A newer daemon's event type: not worth stopping the follow for.
                render::note(&format!(
                    "skipped event {seq}, which this nightshift does not understand: {error}"
                ));
                return true;
            }
        };
        self.finished = match &event.kind {
            EventKind::TaskFinished { result } => Some(result.status),
            _ => None,
        };
        let mut stdout = std::io::stdout().lock();
        print_event(&mut stdout, &event, self.json) && stdout.flush().is_ok()
    }
}

fn backoff(failures: u32) -> Duration {
    let millis = 250u64.saturating_mul(1 << failures.min(5));
    Duration::from_millis(millis.min(5_000))
}
