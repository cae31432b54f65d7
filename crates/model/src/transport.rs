//! The HTTP side shared by every provider: configuration checks, headers, timeouts, the
//! retry loop with backoff, reading an SSE stream or a whole body, and classifying errors.
//!
//! A provider supplies only its wire format (a [`WireFormat`]): how to decode a streamed
//! answer event by event and how to parse a whole JSON answer. Everything that can hang,
//! grow or fail transiently is handled here, once.

use std::time::{Instant, SystemTime};

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use serde_json::Value;
use tokio::time::timeout;

use crate::retry::{backoff, parse_retry_after};
use crate::sse::{SseEvent, SseParser};
use crate::wire;
use crate::{ModelError, ModelRequest, ModelResponse, ProviderConfig, RetryNote};

/// The largest answer accepted; far above any real completion, it only stops a runaway server.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// How much of an error body is read; the useful part of an error is at its start.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;

/// One decoded answer: the response, plus the provider-specific items a client may need to
/// carry into the next request (the Responses API's reasoning items).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub response: ModelResponse,
    /// Raw output items to send back verbatim on the next turn; empty for most formats.
    pub carry: Vec<Value>,
}

impl From<ModelResponse> for Decoded {
    fn from(response: ModelResponse) -> Self {
        Decoded {
            response,
            carry: Vec::new(),
        }
    }
}

/// Accumulates one streamed answer from its SSE events.
pub(crate) trait StreamDecoder: Default + Send {
    /// Takes one event into account; an error ends the attempt.
    fn on_event(&mut self, event: &SseEvent) -> Result<(), ModelError>;
    /// The answer is complete; nothing after this point belongs to it.
    fn is_done(&self) -> bool;
    /// The stream ended: the answer, or an error if it ended before it was complete.
    fn finish(self, request: &ModelRequest) -> Result<Decoded, ModelError>;
}

/// A provider's wire format, as far as reading answers goes.
pub(crate) trait WireFormat {
    type Stream: StreamDecoder;
    /// Parses a whole (non-streaming) answer body.
    fn parse_body(body: &[u8], request: &ModelRequest) -> Result<Decoded, ModelError>;
}

/// How the API key is sent.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Auth {
    /// `Authorization: Bearer <key>` (OpenAI and compatible servers).
    Bearer,
    /// The key alone in this header (Anthropic's `x-api-key`).
    Header(&'static str),
}

/// HTTP, timeouts and retries for one endpoint.
pub(crate) struct Transport {
    config: ProviderConfig,
    /// `{base_url}{path}`.
    url: String,
    /// The base URL as configured, without a trailing `/`, for error messages.
    base_url: String,
    /// Authentication and fixed provider headers; the key is marked sensitive so HTTP-level
    /// debugging never prints it.
    headers: HeaderMap,
    http: reqwest::Client,
}

impl Transport {
    /// Checks `config` and builds the HTTP client for `{base_url}{path}`. Fails on a base URL
    /// that is not http(s), an empty model name, a zero idle timeout, or an API key that
    /// cannot be a header.
    pub fn new(
        config: ProviderConfig,
        path: &str,
        auth: Auth,
        fixed_headers: &[(&'static str, &'static str)],
    ) -> Result<Self, ModelError> {
        let base_url = config.base_url.trim().trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ModelError::Config(format!(
                "base_url `{base_url}` must start with http:// or https:// (for example https://api.openai.com/v1)"
            )));
        }
        let url = format!("{base_url}{path}");
        if let Err(e) = reqwest::Url::parse(&url) {
            return Err(ModelError::Config(format!(
                "base_url `{base_url}` is not a valid URL: {e}"
            )));
        }
        if config.model.trim().is_empty() {
            return Err(ModelError::Config(
                "model is empty; set the model name in config".to_owned(),
            ));
        }
        if config.idle_timeout.is_zero() {
            return Err(ModelError::Config(
                "idle_timeout must be greater than zero".to_owned(),
            ));
        }
        let mut headers = HeaderMap::new();
        // Extra headers from the provider profile (an organisation id, a gateway's routing
        // header); the fixed and authentication headers below take precedence over them.
        for (name, value) in &config.extra_headers {
            let bad = || {
                ModelError::Config(format!(
                    "extra header `{name}` cannot be sent in HTTP; check the profile's headers"
                ))
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(value).map_err(|_| bad())?;
            headers.insert(name, value);
        }
        for (name, value) in fixed_headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        if let Some(key) = api_key(&config) {
            let (name, text) = match auth {
                Auth::Bearer => (AUTHORIZATION, format!("Bearer {key}")),
                Auth::Header(name) => (HeaderName::from_static(name), key.to_owned()),
            };
            let mut value = HeaderValue::from_str(&text).map_err(|_| {
                    ModelError::Config(
                        "api_key contains characters that cannot be sent in an HTTP header (a stray newline or control character?); check NIGHTSHIFT_API_KEY / api_key in config".to_owned(),
                    )
                })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("nightshift/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ModelError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport {
            config,
            url,
            base_url,
            headers,
            http,
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The URL requests are posted to.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// Posts `body` and decodes the answer as `F`, retrying what is worth retrying.
    pub async fn send<F: WireFormat>(
        &self,
        request: &ModelRequest,
        body: &[u8],
        on_retry: &(dyn Fn(&RetryNote) + Send + Sync),
    ) -> Result<Decoded, ModelError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            tracing::debug!(
                model = %self.config.model,
                url = %self.url,
                attempt,
                messages = request.messages.len(),
                tools = request.tools.len(),
                stream = self.config.stream,
                "sending model request"
            );
            let error = match self.attempt::<F>(request, body).await {
                Ok(decoded) => {
                    let response = &decoded.response;
                    tracing::debug!(
                        model = %self.config.model,
                        latency_ms = started.elapsed().as_millis() as u64,
                        input_tokens = response.usage.input_tokens,
                        output_tokens = response.usage.output_tokens,
                        tool_calls = response.message.tool_calls.len(),
                        finish_reason = response.finish_reason.as_deref().unwrap_or(""),
                        "model answered"
                    );
                    return Ok(decoded);
                }
                Err(error) => error,
            };
            if !error.is_retryable() || attempt > self.config.max_retries {
                tracing::warn!(model = %self.config.model, attempt, error = %error, "model request failed");
                return Err(error);
            }
            let wait = backoff(self.config.retry_base_delay, attempt, error.retry_after());
            let message = error.to_string();
            // The hint line is for the final error; a retry note says what happened.
            let summary = message
                .split_once("\nhint:")
                .map_or(message.as_str(), |(head, _)| head);
            tracing::warn!(
                model = %self.config.model,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %summary,
                "model request failed; retrying"
            );
            on_retry(&RetryNote {
                attempt,
                error: summary.to_owned(),
                wait,
            });
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange, without retries.
    async fn attempt<F: WireFormat>(
        &self,
        request: &ModelRequest,
        body: &[u8],
    ) -> Result<Decoded, ModelError> {
        let accept = if self.config.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let builder = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .headers(self.headers.clone())
            .body(body.to_vec());
        // Until the headers arrive counts as silence too: a server that accepts the
        // connection and never answers must not hang the task.
        let mut response = match timeout(self.config.idle_timeout, builder.send()).await {
            Err(_) => return Err(self.idle_timeout()),
            Ok(Err(e)) => return Err(self.send_error(&e)),
            Ok(Ok(response)) => response,
        };
        if !response.status().is_success() {
            return Err(self.status_error(response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        // Trust what the server sent over what was asked: some servers ignore `stream`.
        let is_sse = content_type.starts_with("text/event-stream")
            || (content_type.is_empty() && self.config.stream);
        if is_sse {
            self.read_stream::<F::Stream>(&mut response, request).await
        } else {
            let body = self.read_whole_body(&mut response).await?;
            F::parse_body(&body, request)
        }
    }

    async fn read_stream<D: StreamDecoder>(
        &self,
        response: &mut reqwest::Response,
        request: &ModelRequest,
    ) -> Result<Decoded, ModelError> {
        let mut parser = SseParser::new();
        let mut state = D::default();
        let mut events = Vec::new();
        let mut skipped = Vec::new();
        let mut received = 0usize;
        while !state.is_done() {
            let chunk = match timeout(self.config.idle_timeout, response.chunk()).await {
                Err(_) => return Err(self.idle_timeout()),
                Ok(Err(e)) => return Err(self.body_error(&e)),
                Ok(Ok(chunk)) => chunk,
            };
            let Some(chunk) = chunk else { break };
            received += chunk.len();
            if received > MAX_RESPONSE_BYTES {
                return Err(ModelError::TooLarge {
                    limit_bytes: MAX_RESPONSE_BYTES,
                });
            }
            parser.feed(&chunk, &mut events);
            for event in events.drain(..) {
                take_event(&mut state, &event, &mut skipped)?;
            }
        }
        parser.finish(&mut events);
        for event in events.drain(..) {
            take_event(&mut state, &event, &mut skipped)?;
        }
        finish_with_skipped(state, request, skipped)
    }

    /// The whole body of a non-streaming answer, which must arrive within the idle timeout.
    async fn read_whole_body(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<Vec<u8>, ModelError> {
        let read = async {
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| self.body_error(&e))? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(ModelError::TooLarge {
                        limit_bytes: MAX_RESPONSE_BYTES,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        timeout(self.config.idle_timeout, read)
            .await
            .map_err(|_| self.idle_timeout())?
    }

    /// Classifies a non-2xx answer.
    async fn status_error(&self, mut response: reqwest::Response) -> ModelError {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let body = self.error_body(&mut response).await;
        match status {
            401 | 403 => ModelError::Unauthorized {
                url: self.url.clone(),
                status,
                body,
            },
            404 => ModelError::NotFound {
                url: self.url.clone(),
                model: self.config.model.clone(),
                body,
            },
            429 => ModelError::RateLimited { retry_after, body },
            500..=599 => ModelError::Server {
                status,
                retry_after: if status == 503 { retry_after } else { None },
                body,
            },
            _ => ModelError::Rejected { status, body },
        }
    }

    /// The readable part of an error body: the `error.message` of an OpenAI-style JSON
    /// error, else the start of the text, with the API key redacted if the server echoed it.
    async fn error_body(&self, response: &mut reqwest::Response) -> String {
        let mut raw = Vec::new();
        let read = async {
            while let Ok(Some(chunk)) = response.chunk().await {
                raw.extend_from_slice(&chunk);
                if raw.len() >= MAX_ERROR_BODY_BYTES {
                    break;
                }
            }
        };
        // A partial error body is still worth showing; the status says what matters.
        let _ = timeout(self.config.idle_timeout, read).await;
        let text = match serde_json::from_slice::<Value>(&raw) {
            Ok(json) if json.get("error").is_some_and(|error| !error.is_null()) => {
                wire::snippet(wire::error_message(&json["error"]).as_bytes())
            }
            _ => wire::snippet(&raw),
        };
        let text = if text.is_empty() {
            "(empty body)".to_owned()
        } else {
            text
        };
        match api_key(&self.config) {
            Some(key) => text.replace(key, "<redacted>"),
            None => text,
        }
    }

    fn idle_timeout(&self) -> ModelError {
        ModelError::IdleTimeout {
            url: self.url.clone(),
            after: self.config.idle_timeout,
        }
    }

    fn send_error(&self, error: &reqwest::Error) -> ModelError {
        if error.is_connect() {
            ModelError::Connect {
                url: self.base_url.clone(),
                detail: error_chain(error),
            }
        } else {
            self.body_error(error)
        }
    }

    fn body_error(&self, error: &reqwest::Error) -> ModelError {
        ModelError::Transport {
            url: self.url.clone(),
            detail: error_chain(error),
        }
    }
}

/// The configured key, if there is a usable one. Surrounding whitespace (a trailing newline
/// from a key file) is not part of the key.
fn api_key(config: &ProviderConfig) -> Option<&str> {
    config
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|key| !key.is_empty())
}

/// An error and its causes on one line ("error sending request: ...: Connection refused"),
/// because the top-level reqwest message alone rarely says what failed.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Feeds `pieces` through the SSE parser into a fresh `D`, as a network read loop would.
#[cfg(test)]
pub(crate) fn decode_pieces<D: StreamDecoder>(
    pieces: &[&[u8]],
    request: &ModelRequest,
) -> Result<Decoded, ModelError> {
    let mut parser = SseParser::new();
    let mut state = D::default();
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    for piece in pieces {
        parser.feed(piece, &mut events);
        for event in events.drain(..) {
            take_event(&mut state, &event, &mut skipped)?;
        }
    }
    parser.finish(&mut events);
    for event in events.drain(..) {
        take_event(&mut state, &event, &mut skipped)?;
    }
    finish_with_skipped(state, request, skipped)
}

/// More malformed lines than this in one answer is not a glitch but a broken stream.
const MAX_SKIPPED_LINES: usize = 20;

/// Feeds one event to the decoder. A line that is not valid JSON (or not the expected shape) is
/// skipped and remembered, so one glitch does not cost a whole request; the answer must still
/// complete properly, or [`finish_with_skipped`] fails it and the request is retried.
fn take_event<S: StreamDecoder>(
    state: &mut S,
    event: &SseEvent,
    skipped: &mut Vec<String>,
) -> Result<(), ModelError> {
    match state.on_event(event) {
        Err(ModelError::MalformedStream { detail }) if skipped.len() < MAX_SKIPPED_LINES => {
            skipped.push(detail);
            Ok(())
        }
        other => other,
    }
}

/// The decoder's answer with the skipped lines attached, or its error naming how many lines
/// were skipped on the way.
fn finish_with_skipped<S: StreamDecoder>(
    state: S,
    request: &ModelRequest,
    skipped: Vec<String>,
) -> Result<Decoded, ModelError> {
    match state.finish(request) {
        Ok(mut decoded) => {
            decoded.response.skipped_lines = skipped;
            Ok(decoded)
        }
        Err(ModelError::MalformedStream { detail }) if !skipped.is_empty() => {
            Err(ModelError::MalformedStream {
                detail: format!(
                    "{detail} (after skipping {} malformed line(s), the first: {})",
                    skipped.len(),
                    skipped[0]
                ),
            })
        }
        Err(error) => Err(error),
    }
}
