//! Live events: who is told when a task gets a new event, and the SSE stream that follows a
//! task with `Last-Event-ID` resume.
//!
//! The store is the source of truth; notifications only say "look again". A stream reads
//! every event from the store after the last seq it sent, so a reconnect resumes with no gap
//! and no duplicate, and events appended by other processes sharing the store are picked up
//! by a periodic look as well.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use nightshift_protocol::{Event, EventKind, TaskId};
use tokio::sync::broadcast;

use crate::App;

/// How often a stream looks at the store without being told: events from other processes.
const POLL: Duration = Duration::from_millis(500);

/// Tells streams (and the workers' queue) that something happened to a task.
#[derive(Debug)]
pub(crate) struct Notifier {
    events: broadcast::Sender<TaskId>,
}

impl Notifier {
    pub(crate) fn new() -> Notifier {
        Notifier {
            events: broadcast::channel(4096).0,
        }
    }

    pub(crate) fn event_appended(&self, task: &TaskId) {
        // No subscriber is fine: nobody is watching.
        let _ = self.events.send(task.clone());
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<TaskId> {
        self.events.subscribe()
    }
}

struct Follow {
    app: Arc<App>,
    task: TaskId,
    after: u64,
    pending: VecDeque<Event>,
    wake: broadcast::Receiver<TaskId>,
    done: bool,
}

/// The SSE response following `task` from the event after `after`.
pub(crate) fn follow(
    app: Arc<App>,
    task: TaskId,
    after: u64,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // Subscribed before the first read, so an event appended in between still wakes us.
    let wake = app.notifier.subscribe();
    let state = Follow {
        app,
        task,
        after,
        pending: VecDeque::new(),
        wake,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok(event), state))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

impl Follow {
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.after = event.seq;
                return Some(to_sse(&event));
            }
            if self.done {
                return None;
            }
            match self.app.store.events(&self.task, self.after) {
                Ok(events) if !events.is_empty() => {
                    self.pending.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, task = %self.task, "event stream stopped");
                    return None;
                }
            }
            // Caught up. A finished task whose `task_finished` we sent (or the client had)
            // ends the stream; a follow-up would put it back in the queue, and the client may
            // follow again. The row turns final with the `state_changed` just before
            // `task_finished`, so the status alone is not the end.
            match self.app.store.task(&self.task) {
                Ok(Some(record)) if record.status.is_final() && self.at_turn_end() => {
                    self.done = true;
                    continue;
                }
                Ok(Some(_)) => {}
                _ => return None,
            }
            self.wait().await;
        }
    }

    /// Whether the last event the client has is a `task_finished`.
    fn at_turn_end(&self) -> bool {
        if self.after == 0 {
            return false;
        }
        self.app
            .store
            .events(&self.task, self.after - 1)
            .ok()
            .and_then(|events| events.into_iter().next())
            .is_some_and(|event| matches!(event.kind, EventKind::TaskFinished { .. }))
    }

    async fn wait(&mut self) {
        let deadline = tokio::time::sleep(POLL);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                woke = self.wake.recv() => match woke {
                    Ok(task) if task == self.task => return,
                    Ok(_) => {}
                    // Missed some notifications: look at the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        deadline.as_mut().await;
                        return;
                    }
                },
            }
        }
    }
}

fn to_sse(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_else(|error| {
        serde_json::json!({"type": "notice", "message": format!("unencodable event: {error}")})
            .to_string()
    });
    SseEvent::default().id(event.seq.to_string()).data(data)
}
