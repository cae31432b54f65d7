//! The [`ModelClient`] trait and its providers: how Nightshift asks a language model for the
//! next message of a conversation.
//!
//! Three providers, one per wire format:
//! - [`ChatCompletionsClient`], for any server that speaks the OpenAI Chat Completions API
//!   (OpenAI itself, vLLM, llama.cpp's server, Ollama, LM Studio, ...), including models
//!   without native tool calling, whose calls are parsed from text
//!   ([`parse_text_tool_calls`], [`ProviderConfig::text_tool_calls`]);
//! - [`ResponsesClient`], for the OpenAI Responses API, stateless (`store: false`) with
//!   reasoning items carried across turns;
//! - [`AnthropicClient`], for the Anthropic Messages API, with prompt caching on the stable
//!   prefix.
//!
//! All of them share one transport: they stream by default, parse SSE incrementally,
//! accumulate tool calls, report token usage (estimated when the server sends none), bound
//! every wait with a timeout, and retry what is worth retrying with jittered exponential
//! backoff that honours `Retry-After`.
//!
//! This crate is the only one that knows provider wire formats. It does not decide what to
//! ask (that is the agent's job), does not persist anything, and never logs or reports the
//! API key.

mod anthropic;
mod chat;
mod client;
mod config;
mod error;
mod responses;
mod retry;
mod sse;
mod text_tools;
mod transport;
mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use nightshift_protocol::{Message, ToolSpec, Usage};

pub use anthropic::{ANTHROPIC_VERSION, AnthropicClient};
pub use client::ChatCompletionsClient;
pub use config::ProviderConfig;
pub use error::ModelError;
pub use responses::{REASONING_MEMORY, ResponsesClient, tool_json as responses_tool_json};
pub use text_tools::parse_text_tool_calls;

/// A boxed, sendable future; what [`ModelClient`] methods return so the trait stays
/// object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request to the model: the conversation so far and the tools it may call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelRequest {
    pub messages: Vec<Message>,
    /// Offered tools; omitted from the wire request when empty.
    pub tools: Vec<ToolSpec>,
}

/// The model's complete answer to one request.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelResponse {
    /// Role `Assistant`, with the text content and any tool calls.
    pub message: Message,
    /// Tokens used, as reported by the server, or estimated (about four characters per
    /// token) when it reported none.
    pub usage: Usage,
    /// Why the model stopped, as the server said it (`stop`, `tool_calls`, `length`, ...).
    pub finish_reason: Option<String>,
    /// Stream lines that were not valid JSON and were skipped (the answer still completed);
    /// the caller records them.
    pub skipped_lines: Vec<String>,
}

/// A failed attempt that is about to be retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryNote {
    /// The 1-based number of the attempt that failed.
    pub attempt: u32,
    /// What went wrong, as a user-readable message (never containing the API key).
    pub error: String,
    /// How long the client waits before the next attempt.
    pub wait: Duration,
}

/// Something that can complete a conversation.
pub trait ModelClient: Send + Sync {
    /// The model name requests are sent with.
    fn model_name(&self) -> &str;

    /// One completion. `on_retry` is called before each backoff sleep so the caller can
    /// record it.
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        on_retry: &'a (dyn Fn(&RetryNote) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>>;
}

impl<T: ModelClient + ?Sized> ModelClient for Arc<T> {
    fn model_name(&self) -> &str {
        (**self).model_name()
    }

    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        on_retry: &'a (dyn Fn(&RetryNote) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        (**self).complete(request, on_retry)
    }
}

impl<T: ModelClient + ?Sized> ModelClient for Box<T> {
    fn model_name(&self) -> &str {
        (**self).model_name()
    }

    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        on_retry: &'a (dyn Fn(&RetryNote) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        (**self).complete(request, on_retry)
    }
}
