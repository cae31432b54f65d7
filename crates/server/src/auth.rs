//! Bearer-token authentication: every API call carries a token that `nightshift token create`
//! made; the store keeps only its hash.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::App;
use crate::error::ApiError;

pub(crate) async fn require_token(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return unauthorized("this call needs an API token").into_response();
    };
    match app.store.verify_token(token) {
        Ok(true) => next.run(request).await,
        Ok(false) => unauthorized("the API token is not valid").into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

fn unauthorized(error: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, error).hint(
        "create one with `nightshift token create` on the daemon's machine and send it as \
         `Authorization: Bearer <token>` (the CLI reads NIGHTSHIFT_TOKEN)",
    )
}
