//! [`ChatCompletionsClient`]: the Chat Completions format over the shared transport.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::chat::{self, ChatFormat};
use crate::text_tools::parse_text_tool_calls;
use crate::transport::{Auth, Transport};
use crate::{
    BoxFuture, ModelClient, ModelError, ModelRequest, ModelResponse, ProviderConfig, RetryNote,
};

/// A client for any OpenAI-compatible Chat Completions server.
///
/// Tool calls written as text (Hermes `<tool_call>` tags or fenced JSON) are recovered when
/// the answer has no native tool call; see [`ProviderConfig::text_tool_calls`].
pub struct ChatCompletionsClient {
    transport: Transport,
    /// Numbers tool calls recovered from text, so their ids stay unique across the task.
    text_call_ids: AtomicU64,
}

impl ChatCompletionsClient {
    /// Checks `config` and builds the HTTP client. Fails on a base URL that is not http(s),
    /// an empty model name, a zero idle timeout, or an API key that cannot be a header.
    pub fn new(config: ProviderConfig) -> Result<Self, ModelError> {
        Ok(ChatCompletionsClient {
            transport: Transport::new(config, "/chat/completions", Auth::Bearer, &[])?,
            text_call_ids: AtomicU64::new(0),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ProviderConfig {
        self.transport.config()
    }

    /// The URL requests are posted to: `{base_url}/chat/completions`.
    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    async fn complete_with_retries(
        &self,
        request: &ModelRequest,
        on_retry: &(dyn Fn(&RetryNote) + Send + Sync),
    ) -> Result<ModelResponse, ModelError> {
        let body = chat::request_body(self.config(), request)
            .to_string()
            .into_bytes();
        let mut response = self
            .transport
            .send::<ChatFormat>(request, &body, on_retry)
            .await?
            .response;
        self.recover_text_tool_calls(request, &mut response);
        Ok(response)
    }

    /// Moves tool calls the model wrote as text into `tool_calls`, when it made no native
    /// call and the text names an offered tool.
    fn recover_text_tool_calls(&self, request: &ModelRequest, response: &mut ModelResponse) {
        if !response.message.tool_calls.is_empty() || request.tools.is_empty() {
            return;
        }
        let (rest, mut calls) = parse_text_tool_calls(&response.message.content, &request.tools);
        if calls.is_empty() {
            return;
        }
        for call in &mut calls {
            let n = self.text_call_ids.fetch_add(1, Ordering::Relaxed) + 1;
            call.id = format!("call_text_{n}");
        }
        tracing::debug!(calls = calls.len(), "recovered tool calls written as text");
        response.message.content = rest;
        response.message.tool_calls = calls;
        if response.finish_reason.as_deref() == Some("stop") {
            response.finish_reason = Some("tool_calls".to_owned());
        }
    }
}

impl ModelClient for ChatCompletionsClient {
    fn model_name(&self) -> &str {
        &self.config().model
    }

    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        on_retry: &'a (dyn Fn(&RetryNote) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(self.complete_with_retries(request, on_retry))
    }
}
