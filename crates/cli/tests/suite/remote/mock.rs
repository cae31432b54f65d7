//! A small daemon for the client tests: the routes of docs/API.md over real HTTP, with tasks
//! and events the test puts in, every request recorded, a token check, and an event stream
//! that can be cut mid-way or held at an event until the test lets it go on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub(super) const TOKEN: &str = "s3cret-token";
pub(super) const CREATED_AT: &str = "2026-11-24T12:00:00.000Z";

/// One request the mock saw.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) last_event_id: Option<String>,
    pub(super) body: String,
}

#[derive(Default)]
pub(super) struct MockState {
    /// Newest first, as the API lists them.
    tasks: Mutex<Vec<Value>>,
    events: Mutex<HashMap<String, Vec<Value>>>,
    pub(super) diffs: Mutex<HashMap<String, String>>,
    seen: Mutex<Vec<Seen>>,
    /// Task id → how many events the FIRST stream connection sends before the connection is
    /// cut mid-stream.
    pub(super) cut_first_stream_after: Mutex<HashMap<String, usize>>,
    /// Task id → the seq the stream waits at until the test opens the gate.
    pub(super) gate_before_seq: Mutex<HashMap<String, u64>>,
    pub(super) gate: tokio::sync::Notify,
    stream_connections: Mutex<HashMap<String, usize>>,
}

/// The mock daemon, on its own runtime; stopped on drop.
pub(super) struct Mock {
    addr: SocketAddr,
    pub(super) state: Arc<MockState>,
    _runtime: tokio::runtime::Runtime,
}

impl Mock {
    pub(super) fn start() -> Mock {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(MockState::default());
        let app = Router::new()
            .route("/api/tasks", post(create).get(list))
            .route("/api/tasks/{id}", get(task))
            .route("/api/tasks/{id}/events", get(events))
            .route("/api/tasks/{id}/events/stream", get(stream))
            .route("/api/tasks/{id}/diff", get(diff))
            .route("/api/tasks/{id}/cancel", post(cancel))
            .route("/api/tasks/{id}/messages", post(message))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                record_and_auth,
            ))
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        Mock {
            addr,
            state,
            _runtime: runtime,
        }
    }

    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(super) fn add_task(&self, task: Value, events: Vec<Value>) {
        let id = task["id"].as_str().unwrap().to_owned();
        self.state.tasks.lock().unwrap().insert(0, task);
        self.state.events.lock().unwrap().insert(id, events);
    }

    pub(super) fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub(super) fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

fn api_error(status: StatusCode, error: &str, hint: Option<&str>) -> Response {
    let mut body = json!({ "error": error });
    if let Some(hint) = hint {
        body["hint"] = json!(hint);
    }
    (status, axum::Json(body)).into_response()
}

async fn record_and_auth(
    State(state): State<Arc<MockState>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        last_event_id: header("last-event-id"),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    if header("authorization").as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return api_error(StatusCode::UNAUTHORIZED, "missing or invalid token", None);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The task, or the API's 404 (boxed: a `Response` is large).
fn find(state: &MockState, id: &str) -> Result<Value, Box<Response>> {
    let tasks = state.tasks.lock().unwrap();
    tasks
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .ok_or_else(|| {
            Box::new(api_error(
                StatusCode::NOT_FOUND,
                &format!("there is no task {id}"),
                Some("list tasks with GET /api/tasks"),
            ))
        })
}

fn set_status(state: &MockState, id: &str, status: &str) -> Value {
    let mut tasks = state.tasks.lock().unwrap();
    let task = tasks.iter_mut().find(|t| t["id"] == id).unwrap();
    task["status"] = json!(status);
    task.clone()
}

async fn create(State(state): State<Arc<MockState>>, body: String) -> Response {
    let spec: Value = serde_json::from_str(&body).unwrap();
    if spec["goal"] == "refuse me" {
        return api_error(
            StatusCode::BAD_REQUEST,
            "the goal is refused by this test",
            Some("pick another goal"),
        );
    }
    let id = format!("19ab3c4d5e6{:04x}", state.tasks.lock().unwrap().len());
    let task = task_json(&id, "queued", spec, Value::Null);
    state.tasks.lock().unwrap().insert(0, task.clone());
    (StatusCode::CREATED, axum::Json(task)).into_response()
}

/// Query parameters, percent-decoded (enough for what the client sends).
fn query_map(query: Option<String>) -> HashMap<String, String> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// The mock's page size is 2 whatever the limit, so the client must follow `next`.
async fn list(State(state): State<Arc<MockState>>, RawQuery(query): RawQuery) -> Response {
    let query = query_map(query);
    let statuses: Vec<String> = query
        .get("status")
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let limit: usize = query.get("limit").map_or(50, |l| l.parse().unwrap());
    let tasks = state.tasks.lock().unwrap().clone();
    let matching: Vec<Value> = tasks
        .into_iter()
        .filter(|t| statuses.is_empty() || statuses.iter().any(|s| t["status"] == *s.as_str()))
        .filter(|t| {
            query
                .get("repo")
                .is_none_or(|r| t["spec"]["repo"] == *r.as_str())
        })
        .filter(|t| {
            query.get("label").is_none_or(|l| {
                t["spec"]["labels"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!(l)))
            })
        })
        .skip_while(|t| query.get("before").is_some_and(|b| t["id"] != *b.as_str()))
        .skip(usize::from(query.contains_key("before")))
        .collect();
    let page: Vec<Value> = matching.iter().take(limit.min(2)).cloned().collect();
    let next = (matching.len() > page.len()).then(|| page.last().unwrap()["id"].clone());
    axum::Json(json!({ "tasks": page, "next": next })).into_response()
}

async fn task(State(state): State<Arc<MockState>>, UrlPath(id): UrlPath<String>) -> Response {
    match find(&state, &id) {
        Ok(task) => axum::Json(task).into_response(),
        Err(response) => *response,
    }
}

async fn events(State(state): State<Arc<MockState>>, UrlPath(id): UrlPath<String>) -> Response {
    if let Err(response) = find(&state, &id) {
        return *response;
    }
    let events = state.events.lock().unwrap()[&id].clone();
    axum::Json(json!({ "events": events })).into_response()
}

async fn stream(
    State(state): State<Arc<MockState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = find(&state, &id) {
        return *response;
    }
    let after: u64 = headers
        .get("last-event-id")
        .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
    let connection = {
        let mut connections = state.stream_connections.lock().unwrap();
        let n = connections.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    let cut_after = if connection == 1 {
        state
            .cut_first_stream_after
            .lock()
            .unwrap()
            .get(&id)
            .copied()
    } else {
        None
    };
    let gate = state.gate_before_seq.lock().unwrap().get(&id).copied();
    let pending: Vec<Value> = state.events.lock().unwrap()[&id]
        .iter()
        .filter(|e| e["seq"].as_u64().unwrap() > after)
        .cloned()
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let _ = tx.send(Ok(Bytes::from(": keep-alive\n\n"))).await;
        for (sent, event) in pending.iter().enumerate() {
            if cut_after == Some(sent) {
                // Let hyper flush what was sent, then an error in the body makes it drop the
                // connection mid-stream.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = tx.send(Err(std::io::Error::other("cut"))).await;
                return;
            }
            let seq = event["seq"].as_u64().unwrap();
            if gate == Some(seq) {
                state.gate.notified().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            // Split in two writes to exercise the client's line buffering.
            let text = format!("id: {seq}\ndata: {event}\n\n");
            let (a, b) = text.split_at(text.len() / 2);
            let _ = tx.send(Ok(Bytes::from(a.to_owned()))).await;
            let _ = tx.send(Ok(Bytes::from(b.to_owned()))).await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

async fn diff(State(state): State<Arc<MockState>>, UrlPath(id): UrlPath<String>) -> Response {
    match find(&state, &id) {
        Err(response) => *response,
        Ok(task) if task["status"] == "running" => api_error(
            StatusCode::CONFLICT,
            &format!("task {id} is running; its diff is ready when it finishes"),
            Some("follow it with nightshift logs -f"),
        ),
        Ok(_) => state
            .diffs
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_default()
            .into_response(),
    }
}

async fn cancel(State(state): State<Arc<MockState>>, UrlPath(id): UrlPath<String>) -> Response {
    match find(&state, &id) {
        Err(response) => *response,
        Ok(task) if task["status"] == "succeeded" => api_error(
            StatusCode::CONFLICT,
            &format!("task {id} has already finished (succeeded); there is nothing to cancel"),
            Some("to continue it instead, post a follow-up"),
        ),
        Ok(_) => (
            StatusCode::ACCEPTED,
            axum::Json(set_status(&state, &id, "cancelled")),
        )
            .into_response(),
    }
}

async fn message(State(state): State<Arc<MockState>>, UrlPath(id): UrlPath<String>) -> Response {
    match find(&state, &id) {
        Err(response) => *response,
        Ok(_) => (
            StatusCode::ACCEPTED,
            axum::Json(set_status(&state, &id, "queued")),
        )
            .into_response(),
    }
}

pub(super) fn task_json(id: &str, status: &str, spec: Value, result: Value) -> Value {
    let branch = result.get("branch").cloned().unwrap_or(Value::Null);
    json!({
        "id": id, "status": status, "branch": branch, "spec": spec,
        "created_at": CREATED_AT, "updated_at": CREATED_AT, "result": result,
    })
}

pub(super) fn spec(repo: &str, goal: &str) -> Value {
    json!({"repo": repo, "goal": goal, "checks": ["true"]})
}

pub(super) fn result_json(id: &str, status: &str, branch: Option<&str>) -> Value {
    let result = json!({
        "task_id": id, "status": status, "branch": branch,
        "commit": branch.map(|_| "0123456789abcdef0123456789abcdef01234567"),
        "base_commit": "fedcba9876543210fedcba9876543210fedcba98",
        "summary": format!("Summary of {id}."), "diff_stat": null, "checks": [],
        "steps": 2, "verify_rounds": 1,
        "usage": {"input_tokens": 100, "output_tokens": 20}, "duration_ms": 1500,
    });
    let typed: nightshift_protocol::TaskResult = serde_json::from_value(result).unwrap();
    serde_json::to_value(typed).unwrap()
}

/// An event as the daemon sends it: through the protocol type, so every field is spelled
/// out as `nightshift run --json` would.
fn event(id: &str, seq: u64, kind: Value) -> Value {
    let mut event = json!({"task_id": id, "seq": seq, "ts": CREATED_AT});
    for (key, value) in kind.as_object().unwrap() {
        event[key] = value.clone();
    }
    let typed: nightshift_protocol::Event = serde_json::from_value(event).unwrap();
    serde_json::to_value(typed).unwrap()
}

/// The five events of a task that ends in `status`.
pub(super) fn lifecycle(id: &str, status: &str) -> Vec<Value> {
    vec![
        event(
            id,
            1,
            json!({"type": "task_created", "spec": spec("/r", "g")}),
        ),
        event(
            id,
            2,
            json!({"type": "state_changed", "from": "queued", "to": "running"}),
        ),
        event(id, 3, json!({"type": "notice", "message": "working on it"})),
        event(
            id,
            4,
            json!({"type": "state_changed", "from": "running", "to": status}),
        ),
        event(
            id,
            5,
            json!({"type": "task_finished", "result": result_json(id, status, None)}),
        ),
    ]
}
