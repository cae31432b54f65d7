//! Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, so that
//! OpenAI SDKs raise their usual exceptions (`BadRequestError`, ...) with our message.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::EngineError;

/// A request that cannot be answered, with the HTTP status it gets.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<String>,
    code: Option<&'static str>,
}

impl ApiError {
    /// The client's mistake in `param` (a JSON path such as `messages[2].role`): a 400.
    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: Some(param.into()),
            code: None,
        }
    }

    /// A body that is not a JSON object: a 400 naming no field.
    pub(crate) fn invalid_body(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// A 404 for a model id the server does not have.
    pub(crate) fn model_not_found(id: &str, loaded: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "the model `{id}` does not exist here: this server runs one model, `{loaded}` \
                 (any `model` value in a request is answered by it)"
            ),
            param: Some("model".to_owned()),
            code: Some("model_not_found"),
        }
    }

    /// A failed generation. `prompt_param` is where the prompt came from (`messages` or
    /// `input`), named when the prompt is too long for the context.
    pub(crate) fn engine(error: EngineError, prompt_param: &str) -> Self {
        let (status, param, code) = match &error {
            EngineError::ContextOverflow { .. } => (
                StatusCode::BAD_REQUEST,
                Some(prompt_param.to_owned()),
                Some("context_length_exceeded"),
            ),
            // At request time a template or grammar error comes from what the request holds:
            // a conversation the model's template refuses, or a tool schema llama.cpp cannot
            // turn into a grammar.
            EngineError::Template { .. } => (StatusCode::BAD_REQUEST, None, None),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None, None),
        };
        ApiError {
            status,
            message: error.to_string(),
            param,
            code,
        }
    }

    /// A body axum could not read (too large, or the connection broke).
    pub(crate) fn body(rejection: &BytesRejection) -> Self {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the request body is larger than {} MiB; send a shorter conversation",
                super::MAX_BODY_BYTES / (1024 * 1024)
            )
        } else {
            format!(
                "the request body could not be read: {}",
                rejection.body_text()
            )
        };
        ApiError {
            status,
            message,
            param: None,
            code: None,
        }
    }

    /// The `error` object, also sent inside a stream when a generation fails after the
    /// response has started.
    pub(crate) fn to_json(&self) -> Value {
        let kind = if self.status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        json!({
            "message": self.message,
            "type": kind,
            "param": self.param,
            "code": self.code,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.to_json() }))).into_response()
    }
}
