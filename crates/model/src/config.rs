//! How to reach a provider.

use std::fmt;
use std::time::Duration;

/// Where the model server is and how patiently to talk to it.
///
/// Defaults (see [`ProviderConfig::default`]) suit a local OpenAI-compatible server such as
/// llama.cpp's `llama-server` on its default port.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    /// The API root, e.g. `https://api.openai.com/v1`; requests go to
    /// `{base_url}/chat/completions` (or `/responses`, `/messages` for the other clients).
    /// A trailing `/` is ignored.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` (`x-api-key` for Anthropic); never logged,
    /// never in errors or `Debug`.
    pub api_key: Option<String>,
    /// Ask for a streamed (SSE) answer. Streaming lets the idle timeout catch a stalled
    /// server early instead of waiting for the whole answer.
    pub stream: bool,
    /// Limit for establishing the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest silence allowed: until the response headers arrive, then between two stream
    /// chunks, or for the whole body of a non-streaming answer.
    pub idle_timeout: Duration,
    /// Retries after the first attempt for errors worth retrying (429, 5xx, connection
    /// failures, idle timeouts, malformed or truncated streams).
    pub max_retries: u32,
    /// Sent as `max_tokens` (`max_output_tokens` for the Responses API) when set. Anthropic
    /// requires a limit: [`ProviderConfig::DEFAULT_ANTHROPIC_MAX_TOKENS`] when unset.
    pub max_output_tokens: Option<u32>,
    /// Sent as `temperature` when set.
    pub temperature: Option<f32>,
    /// The first backoff between retries; each further retry doubles it (up to 30 s), with
    /// jitter. A `Retry-After` header from the server takes precedence.
    pub retry_base_delay: Duration,
    /// Chat Completions only: the server has no native tool calling. Tools are described in
    /// the system prompt instead of the `tools` parameter, past tool calls and results are
    /// written back as Hermes-style `<tool_call>` / `<tool_response>` text, and calls are
    /// parsed from the answer's text. When off (the default), tools are sent natively, and
    /// calls written as text are still recovered from an answer that has no native call but
    /// holds a `<tool_call>` or fenced JSON block naming an offered tool.
    pub text_tool_calls: bool,
    /// Headers sent with every request (from the provider profile), e.g. an organisation id.
    pub extra_headers: Vec<(String, String)>,
}

impl ProviderConfig {
    /// The default base URL: a local OpenAI-compatible server (llama.cpp's default port).
    pub const DEFAULT_BASE_URL: &'static str = "http://127.0.0.1:8080/v1";
    /// The default model name; local single-model servers accept any name.
    pub const DEFAULT_MODEL: &'static str = "default";
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
    pub const DEFAULT_MAX_RETRIES: u32 = 4;
    pub const DEFAULT_RETRY_BASE_DELAY: Duration = Duration::from_millis(500);
    /// Anthropic's `max_tokens` when `max_output_tokens` is unset (the API requires one).
    pub const DEFAULT_ANTHROPIC_MAX_TOKENS: u32 = 4096;
}

impl Default for ProviderConfig {
    /// `http://127.0.0.1:8080/v1`, model `default`, no API key, streaming on, 10 s connect
    /// timeout, 120 s idle timeout, 4 retries starting at 500 ms, server-chosen
    /// `max_tokens` and temperature, native tool calling.
    fn default() -> Self {
        ProviderConfig {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            model: Self::DEFAULT_MODEL.to_owned(),
            api_key: None,
            stream: true,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_retries: Self::DEFAULT_MAX_RETRIES,
            max_output_tokens: None,
            temperature: None,
            retry_base_delay: Self::DEFAULT_RETRY_BASE_DELAY,
            text_tool_calls: false,
            extra_headers: Vec::new(),
        }
    }
}

impl fmt::Debug for ProviderConfig {
    // Hand-written so the API key can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("stream", &self.stream)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_output_tokens", &self.max_output_tokens)
            .field("temperature", &self.temperature)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("text_tool_calls", &self.text_tool_calls)
            // Header values may carry credentials too: only their names are shown.
            .field(
                "extra_headers",
                &self
                    .extra_headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_api_key() {
        let config = ProviderConfig {
            api_key: Some("sk-secret-123".into()),
            ..ProviderConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-secret-123"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
