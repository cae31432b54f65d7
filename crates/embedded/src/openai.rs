//! An OpenAI-compatible HTTP endpoint over a loaded [`EmbeddedModel`], so that editors,
//! scripts and OpenAI SDKs can use the model `nightshift serve` already holds.
//!
//! Routes (see docs/API.md): `POST /v1/chat/completions`, `POST /v1/responses`,
//! `GET /v1/models`, `GET /v1/models/{id}`. Requests share the model's one worker with the
//! daemon's tasks and queue behind them. The request's `model` is accepted whatever it says
//! and answered by the loaded model, as single-model local servers do.
//!
//! Not here: authentication (the daemon puts its token check in front of these routes),
//! stored responses (`previous_response_id`), images and audio, structured output, `n > 1`,
//! stop sequences and logprobs.

mod chat;
mod error;
mod input;
mod responses;
mod stream;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::EmbeddedModel;
use error::ApiError;

/// The largest request body read: room for a long conversation with tool results.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The endpoint's routes, answered by `model`. Mount it at the root: routes start with `/v1`.
pub fn router(model: Arc<EmbeddedModel>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/responses", post(responses::handle))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(model)
}

async fn list_models(State(model): State<Arc<EmbeddedModel>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [model_json(&model)]}))
}

async fn get_model(
    State(model): State<Arc<EmbeddedModel>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = &model.info().name;
    if id == *name {
        Ok(Json(model_json(&model)))
    } else {
        Err(ApiError::model_not_found(&id, name))
    }
}

fn model_json(model: &EmbeddedModel) -> Value {
    json!({
        "id": model.info().name,
        "object": "model",
        "created": unix_time(),
        "owned_by": "nightshift",
    })
}

/// Seconds since the Unix epoch (`created` fields).
fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// An id unique within this process and unlikely to repeat across restarts:
/// `<prefix><time in ns><counter>`, in hex.
fn new_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("{prefix}{nanos:x}{n:04x}")
}
