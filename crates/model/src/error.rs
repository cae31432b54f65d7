//! What can go wrong talking to a model, with what to do about it.

use std::time::Duration;

/// A failed model request. Every message says what happened and, on a `hint:` line, what to
/// do. Messages never contain the API key (server bodies that echo it are redacted).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model provider configuration: {0}")]
    Config(String),

    #[error(
        "the model server at {url} refused the credentials (HTTP {status}): {body}\nhint: check NIGHTSHIFT_API_KEY / api_key in config"
    )]
    Unauthorized {
        url: String,
        status: u16,
        body: String,
    },

    #[error(
        "the model server answered 404 Not Found for {url} with model `{model}`: {body}\nhint: check base_url (it usually ends in /v1) and model in config"
    )]
    NotFound {
        url: String,
        model: String,
        body: String,
    },

    #[error(
        "the model server is rate limiting requests (HTTP 429{}): {body}\nhint: wait and try again, run fewer tasks at once, or raise max_retries",
        retry_after_text(*.retry_after)
    )]
    RateLimited {
        retry_after: Option<Duration>,
        body: String,
    },

    #[error(
        "the model server failed (HTTP {status}{}): {body}\nhint: this is usually temporary; try again later or look at the server's logs",
        retry_after_text(*.retry_after)
    )]
    Server {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },

    #[error(
        "the model server rejected the request (HTTP {status}): {body}\nhint: check model, max_output_tokens and temperature in config, and that the server supports tool calls"
    )]
    Rejected { status: u16, body: String },

    #[error(
        "could not connect to the model server at {url}: {detail}\nhint: is the server at {url} running? check base_url in config"
    )]
    Connect { url: String, detail: String },

    #[error(
        "the model server at {url} sent nothing for {}s\nhint: the server may be overloaded; raise idle_timeout if the model is just slow",
        .after.as_secs_f64()
    )]
    IdleTimeout { url: String, after: Duration },

    #[error(
        "the connection to the model server at {url} failed mid-request: {detail}\nhint: this is usually a network hiccup; try again"
    )]
    Transport { url: String, detail: String },

    #[error(
        "the model server sent a malformed or truncated stream: {detail}\nhint: this is usually temporary; if it persists, set stream = false in config"
    )]
    MalformedStream { detail: String },

    #[error(
        "the model server's answer is not in the format of the configured API: {detail}\nhint: check that base_url points to an API of the configured kind (Chat Completions, Responses or Anthropic Messages, usually ending in /v1)"
    )]
    MalformedResponse { detail: String },

    #[error(
        "the model server reported an error while answering: {message}\nhint: this is usually temporary; try again"
    )]
    Provider { message: String },

    #[error(
        "the model's answer exceeded {limit_bytes} bytes and was abandoned\nhint: set max_output_tokens in config"
    )]
    TooLarge { limit_bytes: usize },
}

/// Phrases providers use for a prompt that does not fit the context window, lowercase.
const CONTEXT_LENGTH_PHRASES: &[&str] = &[
    // OpenAI's error code, on Chat Completions and Responses.
    "context_length_exceeded",
    // OpenAI and vLLM: "This model's maximum context length is 8192 tokens".
    "maximum context length",
    // OpenAI Responses: "Your input exceeds the context window of this model".
    "exceeds the context window",
    // Anthropic: "prompt is too long: 201234 tokens > 200000 maximum".
    "prompt is too long",
    // Anthropic: "input length and `max_tokens` exceed context limit".
    "exceed context limit",
    // llama.cpp: "the request exceeds the available context size", and its error type.
    "exceeds the available context size",
    "exceed_context_size_error",
    // Other OpenAI-compatible servers (LM Studio, TGI, gateways).
    "exceeds the context size",
    "context length exceeded",
    "context window exceeded",
    "too many tokens in the prompt",
];

fn is_context_length_text(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    CONTEXT_LENGTH_PHRASES
        .iter()
        .any(|phrase| text.contains(phrase))
}

fn retry_after_text(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |wait| {
        format!(", retry after {}s", wait.as_secs())
    })
}

impl ModelError {
    /// Whether trying the same request again may succeed: rate limits, server errors,
    /// connection failures, timeouts, and malformed or truncated answers. Other 4xx
    /// answers and configuration errors are not retried.
    /// A request too long for the model's context window is never retried as is: the same
    /// request would fail the same way (see [`is_context_length`](Self::is_context_length)).
    pub fn is_retryable(&self) -> bool {
        if self.is_context_length() {
            return false;
        }
        match self {
            ModelError::RateLimited { .. }
            | ModelError::Server { .. }
            | ModelError::Connect { .. }
            | ModelError::IdleTimeout { .. }
            | ModelError::Transport { .. }
            | ModelError::MalformedStream { .. }
            | ModelError::MalformedResponse { .. }
            | ModelError::Provider { .. } => true,
            ModelError::Config(_)
            | ModelError::Unauthorized { .. }
            | ModelError::NotFound { .. }
            | ModelError::Rejected { .. }
            | ModelError::TooLarge { .. } => false,
        }
    }

    /// Whether the server refused the request because the conversation does not fit the
    /// model's context window. The caller can shorten the conversation (compact or trim it)
    /// and send it again; retrying it unchanged is pointless.
    ///
    /// Recognised: OpenAI's `context_length_exceeded` ("This model's maximum context length
    /// is ..."; the Responses API's "Your input exceeds the context window"), Anthropic's
    /// "prompt is too long", llama.cpp's "exceeds the available context size" and vLLM's
    /// "maximum context length", whether they come as an HTTP error or inside the stream.
    pub fn is_context_length(&self) -> bool {
        let text = match self {
            ModelError::Rejected { body, .. } | ModelError::Server { body, .. } => body,
            ModelError::Provider { message } => message,
            _ => return false,
        };
        is_context_length_text(text)
    }

    /// How long the server asked us to wait (`Retry-After` on a 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::RateLimited { retry_after, .. }
            | ModelError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status the server answered with, for errors that came with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ModelError::Unauthorized { status, .. }
            | ModelError::Server { status, .. }
            | ModelError::Rejected { status, .. } => Some(*status),
            ModelError::NotFound { .. } => Some(404),
            ModelError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_length_errors_are_recognised_and_never_retried() {
        let overflows = [
            ModelError::Rejected {
                status: 400,
                body: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. (code: context_length_exceeded)".into(),
            },
            ModelError::Rejected {
                status: 400,
                body: "prompt is too long: 201234 tokens > 200000 maximum".into(),
            },
            ModelError::Rejected {
                status: 400,
                body: "the request exceeds the available context size, try increasing it".into(),
            },
            ModelError::Rejected {
                status: 400,
                body: "input length and `max_tokens` exceed context limit: 190000 + 32000 > 200000".into(),
            },
            // A server that answers 500 for it must not be hammered with the same request.
            ModelError::Server {
                status: 500,
                retry_after: None,
                body: "Input exceeds the context size of the model".into(),
            },
            // In-stream errors (Responses `response.failed`, Anthropic `error` events).
            ModelError::Provider {
                message: "Your input exceeds the context window of this model. Please adjust your input and try again. (code: context_length_exceeded)".into(),
            },
            ModelError::Provider {
                message: "Prompt is too long".into(),
            },
        ];
        for error in &overflows {
            assert!(error.is_context_length(), "{error}");
            assert!(!error.is_retryable(), "{error}");
        }
        let others = [
            ModelError::Rejected {
                status: 400,
                body: "tools are not supported".into(),
            },
            ModelError::Provider {
                message: "overloaded".into(),
            },
            ModelError::RateLimited {
                retry_after: None,
                body: "Request too large for gpt-4o on tokens per min".into(),
            },
            ModelError::Transport {
                url: "http://h".into(),
                detail: "maximum context length".into(),
            },
        ];
        for error in &others {
            assert!(!error.is_context_length(), "{error}");
        }
        assert!(others[1].is_retryable(), "other in-stream errors still are");
    }

    #[test]
    fn messages_say_what_to_do() {
        let unauthorized = ModelError::Unauthorized {
            url: "http://h/v1/chat/completions".into(),
            status: 401,
            body: "bad key".into(),
        };
        assert!(unauthorized.to_string().contains("NIGHTSHIFT_API_KEY"));
        assert!(!unauthorized.is_retryable());

        let connect = ModelError::Connect {
            url: "http://127.0.0.1:9/v1".into(),
            detail: "Connection refused".into(),
        };
        assert!(
            connect
                .to_string()
                .contains("is the server at http://127.0.0.1:9/v1 running?")
        );
        assert!(connect.is_retryable());

        let limited = ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
            body: "slow down".into(),
        };
        assert!(limited.to_string().contains("HTTP 429, retry after 3s"));
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
    }
}
