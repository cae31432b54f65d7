//! The workers: each claims the oldest queued task under a lease, runs it, and lets it go.
//!
//! A heartbeat renews the lease while the task runs and watches for a `cancel_requested` event
//! (which another process may have appended). A worker that loses its lease stops the task
//! without recording anything more: another worker owns it now. When the daemon stops, running
//! tasks are dropped — their sandboxed processes are killed — and their leases released, so the
//! next daemon resumes them at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nightshift_protocol::{EventKind, TaskId};
use nightshift_store::TaskRecord;
use tokio::sync::{Notify, watch};

use crate::App;

/// How often a running task's worker looks for a cancel request from another process.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// The tasks this process is running, for cancelling them without waiting for a poll.
#[derive(Debug, Default)]
pub(crate) struct Running {
    tasks: Mutex<HashMap<TaskId, Arc<Notify>>>,
}

impl Running {
    /// Asks this process's worker running `task` to cancel it; false if none here runs it.
    pub(crate) fn cancel_running(&self, task: &TaskId) -> bool {
        match self.lock().get(task) {
            Some(cancel) => {
                cancel.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Arc<Notify>>> {
        // A panic while holding this map's lock leaves the map itself consistent.
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) async fn worker_loop(app: Arc<App>, name: String, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        // Registered before looking, so a task queued in between still wakes this worker.
        let queued = app.queue.notified();
        let claimed = app.store.claim_next(&name, app.config.lease);
        match claimed {
            Ok(Some(record)) => run_one(&app, &name, record, &mut stop).await,
            Ok(None) => {
                tokio::select! {
                    () = queued => {}
                    // Tasks queued by other processes sharing the store, and lapsed leases.
                    () = tokio::time::sleep(app.config.idle_poll) => {}
                    _ = stop.changed() => {}
                }
            }
            Err(error) => {
                tracing::error!(%error, worker = %name, "could not claim a task");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

async fn run_one(
    app: &Arc<App>,
    worker: &str,
    record: TaskRecord,
    stop: &mut watch::Receiver<bool>,
) {
    let id = record.id.clone();
    let cancel = Arc::new(Notify::new());
    app.workers.lock().insert(id.clone(), cancel.clone());
    let lease_lost = Arc::new(Notify::new());
    let heartbeat = tokio::spawn(heartbeat(
        app.clone(),
        id.clone(),
        worker.to_owned(),
        cancel.clone(),
        lease_lost.clone(),
    ));
    tracing::info!(task = %id, worker, status = %record.status, "running task");

    let notify_app = app.clone();
    let mut on_event = move |event: &nightshift_protocol::Event| {
        notify_app.notifier.event_appended(&event.task_id);
    };
    let run = nightshift_worker::run_claimed(
        &*app.store,
        app.config.model.clone(),
        &record,
        &app.config.worker,
        async move { cancel.notified().await },
        &mut on_event,
    );
    tokio::select! {
        finished = run => match finished {
            Ok(result) => tracing::info!(task = %id, status = %result.status, "task finished"),
            Err(error) => tracing::error!(task = %id, %error, "task stopped: its events could not be recorded"),
        },
        () = lease_lost.notified() => {
            tracing::warn!(task = %id, worker, "lost the task's lease; stopped it (another worker has it)");
        }
        _ = stop.changed() => {
            tracing::info!(task = %id, "daemon stopping; the task will resume on the next start");
        }
    }
    heartbeat.abort();
    app.workers.lock().remove(&id);
    if let Err(error) = app.store.release(&id, worker) {
        tracing::warn!(task = %id, %error, "could not release the task's lease; it lapses on its own");
    }
}

/// Renews the lease and watches for cancel requests until aborted.
async fn heartbeat(
    app: Arc<App>,
    task: TaskId,
    worker: String,
    cancel: Arc<Notify>,
    lease_lost: Arc<Notify>,
) {
    let renew_every = app.config.lease / 3;
    let mut last_renewal = tokio::time::Instant::now();
    let mut seen = 0;
    loop {
        if last_renewal.elapsed() >= renew_every {
            match app.store.renew_lease(&task, &worker, app.config.lease) {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    lease_lost.notify_one();
                    return;
                }
                Err(error) => tracing::warn!(%task, %error, "could not renew the lease"),
            }
        }
        if let Ok(events) = app.store.events(&task, seen) {
            if let Some(last) = events.last() {
                seen = last.seq;
            }
            // Requests from before the current turn began were for an earlier turn.
            let turn_start = events
                .iter()
                .rposition(|e| matches!(e.kind, EventKind::TaskFinished { .. }))
                .map_or(0, |i| i + 1);
            if events[turn_start..]
                .iter()
                .any(|e| matches!(e.kind, EventKind::CancelRequested { .. }))
            {
                cancel.notify_one();
            }
        }
        tokio::time::sleep(CANCEL_POLL.min(renew_every)).await;
    }
}
