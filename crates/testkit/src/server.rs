//! The scripted server: axum on a background thread with its own tokio runtime.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::reply::{Format, RequestInfo, ScriptedReply, render};

/// The paths the server answers (`base_url()` + `/chat/completions`, `/responses`,
/// `/messages`), each in its own wire format.
const PATHS: [(&str, Format); 3] = [
    ("/v1/chat/completions", Format::ChatCompletions),
    ("/v1/responses", Format::Responses),
    ("/v1/messages", Format::Anthropic),
];
/// Larger request bodies are refused; no test conversation comes near this.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// A model server on `127.0.0.1` that answers from a script. Dropping it shuts it down,
/// including any reply still being sent.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<ScriptState>,
    /// When set, each request is answered with the entry whose index is the number of
    /// assistant messages already in its conversation, so many concurrent conversations can
    /// follow one script each, whatever order their requests arrive in.
    per_conversation: Option<Vec<ScriptedReply>>,
    /// Numbers tool-call ids across the whole conversation, so they are unique.
    call_ids: AtomicU64,
}

struct ScriptState {
    script: VecDeque<ScriptedReply>,
    requests: Vec<Value>,
    paths: Vec<String>,
    timings: Vec<RequestTiming>,
    headers: Vec<Vec<(String, String)>>,
    served: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ScriptState> {
        // A panic while holding the lock leaves the state consistent (every update is a
        // single push or pop), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ScriptedServer {
    /// Binds 127.0.0.1:0 on a background thread with its own tokio runtime, so it can be used
    /// from sync tests and async tests alike.
    pub fn start(script: Vec<ScriptedReply>) -> ScriptedServer {
        Self::start_with(script, None)
    }

    /// A server that answers every conversation from the same script: request `n` of a
    /// conversation (counted by its assistant messages) gets `script[n]`. For many tasks at
    /// once (the daemon's tests and benchmark); Chat Completions format only.
    pub fn start_per_conversation(script: Vec<ScriptedReply>) -> ScriptedServer {
        Self::start_with(Vec::new(), Some(script))
    }

    fn start_with(
        script: Vec<ScriptedReply>,
        per_conversation: Option<Vec<ScriptedReply>>,
    ) -> ScriptedServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("scripted server: cannot bind 127.0.0.1:0: {e}"));
        listener.set_nonblocking(true).unwrap_or_else(|e| {
            panic!("scripted server: cannot make the socket non-blocking: {e}")
        });
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("scripted server: no local address: {e}"));
        let shared = Arc::new(Shared {
            state: Mutex::new(ScriptState {
                script: script.into(),
                requests: Vec::new(),
                paths: Vec::new(),
                timings: Vec::new(),
                headers: Vec::new(),
                served: 0,
            }),
            call_ids: AtomicU64::new(0),
            per_conversation,
        });
        let (shutdown, stop) = oneshot::channel::<()>();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name(format!("scripted-model-server-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("scripted server: cannot build a runtime: {e}"));
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("scripted server: cannot adopt socket: {e}"));
                    // Not a graceful shutdown: a reply still sleeping or streaming must not
                    // hold up the test that drops the server.
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            if let Err(e) = result {
                                panic!("scripted server: serving failed: {e}");
                            }
                        }
                        _ = stop => {}
                    }
                });
                // Dropping the runtime here cancels every connection task.
            })
            .unwrap_or_else(|e| panic!("scripted server: cannot spawn its thread: {e}"));
        ScriptedServer {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/v1`, to use as a provider's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request body received on the model paths, in order. A body that is not JSON is
    /// recorded as a JSON string holding its text.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.lock().requests.clone()
    }

    /// The path of every request in [`requests`](Self::requests) (`/v1/responses`, ...).
    pub fn request_paths(&self) -> Vec<String> {
        self.shared.lock().paths.clone()
    }

    /// When each request in [`requests`](Self::requests) arrived and when its answer was sent
    /// in full, for benchmarks that separate the client's own time from the model's.
    pub fn request_log(&self) -> Vec<RequestTiming> {
        self.shared.lock().timings.clone()
    }

    /// The headers of every request in [`requests`](Self::requests), names lowercased, in
    /// the order received.
    pub fn request_headers(&self) -> Vec<Vec<(String, String)>> {
        self.shared.lock().headers.clone()
    }

    /// Replies not yet served.
    pub fn remaining(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// Replies served so far.
    pub fn served(&self) -> usize {
        self.shared.lock().served
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The receiver is gone only if the server thread already ended; nothing to stop.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread was already printed; panicking again inside drop
            // would abort the test binary and hide the test's own message.
            let _ = thread.join();
        }
    }
}

/// When one request arrived and when the last byte of its answer was handed to the connection.
#[derive(Clone, Copy, Debug)]
pub struct RequestTiming {
    pub received: Instant,
    /// Equal to `received` until the answer has been sent in full.
    pub answered: Instant,
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let received = Instant::now();
    let (parts, body) = request.into_parts();
    let format = PATHS
        .iter()
        .find(|(path, _)| *path == parts.uri.path())
        .map(|(_, format)| *format);
    let Some(format) = format.filter(|_| parts.method == Method::POST) else {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "scripted server: no route for {} {}; it answers POST {}",
                parts.method,
                parts.uri.path(),
                PATHS.map(|(path, _)| path).join(", POST ")
            ),
        )
            .into_response();
    };
    let raw = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(raw) => raw,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("scripted server: cannot read the request body: {e}"),
            )
                .into_response();
        }
    };
    let json = serde_json::from_slice::<Value>(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    let info = RequestInfo::from_body(format, &json, raw.len());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (next, served, index) = {
        let mut state = shared.lock();
        state.requests.push(json);
        state.paths.push(parts.uri.path().to_owned());
        state.timings.push(RequestTiming {
            received,
            answered: received,
        });
        let index = state.timings.len() - 1;
        state.headers.push(headers);
        let next = match &shared.per_conversation {
            Some(script) => script.get(assistant_turns(&state.requests[index])).cloned(),
            None => state.script.pop_front(),
        };
        if next.is_some() {
            state.served += 1;
        }
        (next, state.served, index)
    };
    let Some(mut reply) = next else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("scripted server: script exhausted after {served} replies"),
        )
            .into_response();
    };
    while let ScriptedReply::Delayed(wait, inner) = reply {
        tokio::time::sleep(wait).await;
        reply = *inner;
    }
    respond(
        render(reply, &info, &shared.call_ids),
        shared.clone(),
        index,
    )
}

fn respond(rendered: crate::reply::Rendered, shared: Arc<Shared>, index: usize) -> Response {
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    let chunks = rendered.chunks;
    tokio::spawn(async move {
        for (wait, chunk) in chunks {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            if sender.send(Bytes::from(chunk)).await.is_err() {
                // The client hung up; nothing left to send to.
                return;
            }
        }
        if let Some(timing) = shared.lock().timings.get_mut(index) {
            timing.answered = Instant::now();
        }
    });
    let mut builder = Response::builder()
        .status(rendered.status)
        .header(header::CONTENT_TYPE, rendered.content_type)
        .header(header::CACHE_CONTROL, "no-cache");
    if let Some(seconds) = rendered.retry_after {
        builder = builder.header(header::RETRY_AFTER, seconds.to_string());
    }
    builder
        .body(Body::new(ChannelBody { receiver }))
        .unwrap_or_else(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("scripted server: cannot build the scripted response: {e}"),
            )
                .into_response()
        })
}

/// A response body fed chunk by chunk from a channel, so pieces leave when they are sent.
struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// How many answers the model already gave in this Chat Completions conversation.
fn assistant_turns(request: &Value) -> usize {
    request["messages"].as_array().map_or(0, |messages| {
        messages.iter().filter(|m| m["role"] == "assistant").count()
    })
}
