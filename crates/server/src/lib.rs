//! The daemon: an HTTP API (REST and SSE) in front of the task store, and workers that run
//! queued tasks in the background.
//!
//! Tasks submitted through the API are rows in the store before the call returns; workers claim
//! them under leases (see [`nightshift_store::Store::claim_next`]), so any number of daemons or
//! `nightshift worker` processes can share one PostgreSQL store, and a daemon killed at any
//! moment loses nothing: its tasks' leases lapse and the next worker starts their turn again
//! on a clean worktree. Every call needs a bearer token (`nightshift token create`).
//!
//! This crate knows HTTP and the worker pool; what a task does is the worker crate's business,
//! how it is stored the store's.

mod api;
mod auth;
mod error;
mod stream;
mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use nightshift_protocol::{EventKind, TaskId};
use nightshift_store::{Store, TaskRecord};
use nightshift_worker::{ModelClient, WorkerConfig};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use error::ApiError;

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How the daemon runs tasks.
#[derive(Clone)]
pub struct ServerConfig {
    /// Tasks run at once by this daemon.
    pub workers: usize,
    /// How long a claimed task stays leased without a heartbeat; a daemon killed mid-task
    /// has its tasks resumed this long after.
    pub lease: Duration,
    /// How often an idle worker looks for tasks queued by other processes.
    pub idle_poll: Duration,
    pub worker: WorkerConfig,
    pub model: Arc<dyn ModelClient>,
    /// Routes served beside the API under the same token check (the embedded model's
    /// OpenAI-compatible endpoint).
    pub extra_routes: Option<Router>,
    /// A name that tells this daemon's workers apart from other processes' in leases.
    pub instance: String,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("workers", &self.workers)
            .field("lease", &self.lease)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// What every handler and worker shares.
pub(crate) struct App {
    store: Arc<dyn Store>,
    config: ServerConfig,
    notifier: stream::Notifier,
    /// Woken when a task is queued, so an idle worker claims it at once.
    queue: Notify,
    workers: workers::Running,
}

impl App {
    /// Appends an event and tells whoever follows the task.
    fn record(&self, task: &TaskId, kind: EventKind) -> Result<(), ApiError> {
        self.store.append_event(task, kind)?;
        self.notifier.event_appended(task);
        Ok(())
    }

    fn task(&self, id: &TaskId) -> Result<TaskRecord, ApiError> {
        self.store.task(id)?.ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("there is no task {id}"),
            )
            .hint("list the tasks with GET /api/tasks (nightshift ls)")
        })
    }

    fn queue_changed(&self) {
        self.queue.notify_waiters();
        // A worker between two looks misses notify_waiters; one stored permit catches it.
        self.queue.notify_one();
    }
}

/// Serves the API on `listener` and runs the workers until `shutdown` resolves; then stops
/// taking tasks, stops the running ones (they resume on the next start) and returns.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    mut config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let extra = config.extra_routes.take();
    let app = Arc::new(App {
        store,
        config,
        notifier: stream::Notifier::new(),
        queue: Notify::new(),
        workers: workers::Running::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers: Vec<_> = (0..app.config.workers.max(1))
        .map(|n| {
            let name = format!("{}-w{n}", app.config.instance);
            tokio::spawn(workers::worker_loop(app.clone(), name, stop_rx.clone()))
        })
        .collect();

    let mut protected = Router::new()
        .route("/api/tasks", post(api::create).get(api::list))
        .route("/api/tasks/{id}", get(api::get))
        .route("/api/tasks/{id}/events", get(api::events))
        .route("/api/tasks/{id}/events/stream", get(api::stream))
        .route("/api/tasks/{id}/diff", get(api::diff))
        .route("/api/tasks/{id}/cancel", post(api::cancel))
        .route("/api/tasks/{id}/messages", post(api::follow_up))
        .with_state(app.clone());
    if let Some(extra) = extra {
        protected = protected.merge(extra);
    }
    let protected = protected.layer(axum::middleware::from_fn_with_state(
        app.clone(),
        auth::require_token,
    ));
    let router = Router::new()
        .route("/api/openapi.json", get(api::openapi))
        .merge(protected)
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));

    let mut stop_serving = stop_rx.clone();
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop_serving.changed().await;
        })
        .into_future();
    let server = tokio::spawn(served);
    shutdown.await;
    let _ = stop_tx.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    // Open event streams never end on their own; don't wait for them past a moment.
    match tokio::time::timeout(Duration::from_secs(2), server).await {
        Ok(Ok(result)) => result,
        _ => Ok(()),
    }
}
