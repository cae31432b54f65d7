//! The REST routes: create, list, get, events (JSON and SSE), diff, cancel, follow-up.
//! docs/API.md describes them for people, `openapi.json` for machines.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nightshift_protocol::{EventKind, TaskId, TaskResult, TaskSpec, TaskStatus};
use nightshift_store::{TaskFilter, TaskRecord};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{ApiError, ApiJson, ApiQuery};

/// A task as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct TaskView {
    id: TaskId,
    status: TaskStatus,
    /// The task's branch: where its work is (or will be) committed; `null` once a task that
    /// changed nothing has finished, and while it waits for its first turn.
    branch: Option<String>,
    spec: TaskSpec,
    created_at: String,
    updated_at: String,
    result: Option<TaskResult>,
}

impl From<TaskRecord> for TaskView {
    fn from(record: TaskRecord) -> TaskView {
        let branch = match &record.result {
            Some(result) if result.branch.is_some() => result.branch.clone(),
            _ if matches!(record.status, TaskStatus::Running | TaskStatus::Verifying) => {
                Some(record.id.branch())
            }
            _ => None,
        };
        TaskView {
            id: record.id,
            status: record.status,
            branch,
            spec: record.spec,
            created_at: record.created_at,
            updated_at: record.updated_at,
            result: record.result,
        }
    }
}

pub(crate) async fn create(
    State(app): State<Arc<App>>,
    ApiJson(spec): ApiJson<TaskSpec>,
) -> Result<Response, ApiError> {
    // Validation runs git (the repository, the base ref): off the async threads.
    let valid = tokio::task::spawn_blocking(move || nightshift_worker::validate(spec))
        .await
        .map_err(ApiError::internal)?
        .map_err(|error| spec_error(&error.to_string()))?;
    let mut spec = valid.spec;
    // Pinned now, so the task starts from what the ref named when it was submitted.
    spec.base_ref = Some(valid.base_commit);
    let id = nightshift_worker::new_task_id();
    app.store.insert_task(&id, &spec)?;
    app.record(&id, EventKind::TaskCreated { spec })?;
    app.queue_changed();
    let view = TaskView::from(app.task(&id)?);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// A spec error's text ends with a `hint:` line; the API carries it as its own field.
fn spec_error(text: &str) -> ApiError {
    match text.split_once("\nhint: ") {
        Some((error, hint)) => ApiError::bad_request(error).hint(hint),
        None => ApiError::bad_request(text),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Comma-separated states.
    status: Option<String>,
    repo: Option<String>,
    label: Option<String>,
    limit: Option<usize>,
    before: Option<String>,
}

pub(crate) const MAX_PAGE: usize = 500;

pub(crate) async fn list(
    State(app): State<Arc<App>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut filter = TaskFilter {
        repo: query.repo,
        label: query.label,
        ..TaskFilter::default()
    };
    for word in query.status.iter().flat_map(|s| s.split(',')) {
        let word = word.trim();
        if word.is_empty() {
            continue;
        }
        let status = word.parse::<TaskStatus>().map_err(|_| {
            let known: Vec<_> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(format!("`{word}` is not a task status"))
                .hint(format!("use one or more of: {}", known.join(", ")))
        })?;
        filter.statuses.push(status);
    }
    if let Some(limit) = query.limit {
        if limit == 0 || limit > MAX_PAGE {
            return Err(
                ApiError::bad_request(format!("limit {limit} is out of range"))
                    .hint(format!("ask for 1 to {MAX_PAGE} tasks per page")),
            );
        }
        filter.limit = limit;
    }
    if let Some(before) = &query.before {
        filter.before = Some(parse_id(before)?);
    }
    let tasks = match app.store.list_tasks_filtered(&filter) {
        Err(nightshift_store::StoreError::UnknownTask { .. }) => {
            return Err(ApiError::bad_request("`before` names no task")
                .hint("pass the `next` value of the previous page"));
        }
        other => other?,
    };
    let next = (tasks.len() == filter.limit)
        .then(|| tasks.last().map(|t| t.id.clone()))
        .flatten();
    let tasks: Vec<TaskView> = tasks.into_iter().map(TaskView::from).collect();
    Ok(Json(serde_json::json!({ "tasks": tasks, "next": next })))
}

pub(crate) async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(TaskView::from(app.task(&id)?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    after: Option<u64>,
}

pub(crate) async fn events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
    app.task(&id)?;
    let events = app.store.events(&id, query.after.unwrap_or(0))?;
    Ok(Json(serde_json::json!({ "events": events })))
}

pub(crate) async fn stream(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    app.task(&id)?;
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Last-Event-ID is not an event seq")
                        .hint("send the `id` of the last event received, a whole number")
                })?,
        ),
        None => None,
    };
    let after = last_event_id.or(query.after).unwrap_or(0);
    Ok(crate::stream::follow(app, id, after).into_response())
}

pub(crate) async fn diff(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let record = app.task(&id)?;
    if !record.status.is_final() {
        return Err(ApiError::conflict(format!(
            "task {id} is {}; its diff is ready when it finishes",
            record.status
        ))
        .hint("follow it with GET /api/tasks/{id}/events/stream (nightshift logs -f)"));
    }
    let text = match &record.result {
        Some(TaskResult {
            base_commit: Some(base),
            commit: Some(commit),
            ..
        }) => {
            let (repo, base, commit) = (record.spec.repo.clone(), base.clone(), commit.clone());
            tokio::task::spawn_blocking(move || nightshift_worker::diff(&repo, &base, &commit))
                .await
                .map_err(ApiError::internal)?
                .map_err(|error| {
                    ApiError::conflict(format!("could not read the task's diff: {error}"))
                        .hint("the repository or the task's branch may have been moved or deleted")
                })?
        }
        _ => String::new(),
    };
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

pub(crate) async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let record = app.task(&id)?;
    if record.status.is_final() {
        return Err(ApiError::conflict(format!(
            "task {id} has already finished ({}); there is nothing to cancel",
            record.status
        ))
        .hint("to continue it instead, post a follow-up: POST /api/tasks/{id}/messages"));
    }
    app.record(&id, EventKind::CancelRequested { reason: None })?;
    if !app.workers.cancel_running(&id) {
        cancel_if_unclaimed(&app, &record)?;
    }
    Ok((StatusCode::ACCEPTED, Json(TaskView::from(app.task(&id)?))).into_response())
}

/// A task that no worker holds is cancelled here and now; one that a worker (here or in
/// another process) holds is stopped by that worker, which sees the `cancel_requested` event.
fn cancel_if_unclaimed(app: &App, record: &TaskRecord) -> Result<(), ApiError> {
    const HOLDER: &str = "api-cancel";
    let Some(claimed) = app
        .store
        .claim(&record.id, HOLDER, Duration::from_secs(30))?
    else {
        return Ok(());
    };
    let mut notify = |event: &nightshift_protocol::Event| {
        app.notifier.event_appended(&event.task_id);
    };
    let recorded = nightshift_worker::finish_unstarted(
        &*app.store,
        &claimed,
        TaskStatus::Cancelled,
        "cancelled before it started".to_owned(),
        &mut notify,
    );
    app.store.release(&record.id, HOLDER)?;
    recorded.map(drop).map_err(ApiError::internal)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FollowUpBody {
    message: String,
}

pub(crate) async fn follow_up(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FollowUpBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if body.message.trim().is_empty() {
        return Err(ApiError::bad_request("the message is empty").hint(
            "say what the task should do next, e.g. {\"message\": \"Also update the docs\"}",
        ));
    }
    let record = app.task(&id)?;
    if !record.status.is_final() {
        return Err(ApiError::conflict(format!(
            "task {id} is {}; a follow-up can only continue a finished task",
            record.status
        ))
        .hint("wait for it to finish (nightshift logs -f), or cancel it first"));
    }
    app.record(
        &id,
        EventKind::FollowUp {
            message: body.message,
        },
    )?;
    app.record(
        &id,
        EventKind::StateChanged {
            from: Some(record.status),
            to: TaskStatus::Queued,
            reason: Some("follow-up".to_owned()),
        },
    )?;
    app.queue_changed();
    Ok((StatusCode::ACCEPTED, Json(TaskView::from(app.task(&id)?))).into_response())
}

pub(crate) async fn openapi() -> Response {
    (
        [(CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
        .hint("see GET /api/openapi.json for the routes this server has")
}

fn parse_id(text: &str) -> Result<TaskId, ApiError> {
    TaskId::parse(text).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("there is no task `{text}`")).hint(
            "task ids are the `id` that POST /api/tasks returned; list them with GET /api/tasks",
        )
    })
}
