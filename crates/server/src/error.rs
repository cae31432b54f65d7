//! Every error the API returns: a status and `{"error": ..., "hint": ...}`, so a client can
//! show the user what was wrong and what to do.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub hint: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = Some(hint.into());
        self
    }

    pub fn bad_request(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn conflict(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, error)
    }

    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
            .hint("this is a problem on the server; see its log (NIGHTSHIFT_LOG=debug)")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.error });
        if let Some(hint) = self.hint {
            body["hint"] = hint.into();
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<nightshift_store::StoreError> for ApiError {
    fn from(error: nightshift_store::StoreError) -> ApiError {
        ApiError::internal(format!("the task store failed: {error}"))
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s that say what to fix.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, text)
                .hint("send the body as JSON with the header Content-Type: application/json")
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request(text).hint("the body must be one valid JSON object")
        }
        JsonRejection::JsonDataError(_) => ApiError::bad_request(text)
            .hint("see GET /api/openapi.json for the fields this call takes"),
        JsonRejection::BytesRejection(_) if rejection_is_too_large(&text) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, text).hint(format!(
                "keep request bodies under {} bytes",
                crate::MAX_BODY_BYTES
            ))
        }
        _ => ApiError::bad_request(text),
    }
}

fn rejection_is_too_large(text: &str) -> bool {
    text.contains("length limit") || text.contains("too large")
}

/// `Query<T>` whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(rejection.body_text())
        .hint("see GET /api/openapi.json for the query parameters this call takes")
}
