//! [`AnthropicClient`]: the Anthropic Messages API (`POST {base_url}/messages`).
//!
//! The conversation maps onto Messages like this: leading system messages become the
//! top-level `system` block; later system messages become user text (Messages has no system
//! role inside the conversation); assistant tool calls become `tool_use` blocks and tool
//! results `tool_result` blocks in a user turn. Consecutive messages of the same role are
//! merged into one turn, so consecutive tool results (and a user note after them) make one
//! user message, as the API expects.
//!
//! **Prompt caching.** Three `cache_control: {type: "ephemeral"}` breakpoints (of the four
//! allowed): on the last tool definition and on the system block, which together are the
//! stable prefix of every turn, and on the last block of the last message, so each turn
//! reads the previous turn's conversation from the cache and only pays for what is new.
//!
//! **Usage.** Anthropic reports `input_tokens` without the cached part; [`Usage`] counts all
//! input, so `input_tokens` here is `input_tokens + cache_read_input_tokens +
//! cache_creation_input_tokens`, and `cached_tokens` is `cache_read_input_tokens`.
//!
//! [`Usage`]: nightshift_protocol::Usage

use nightshift_protocol::{Message, Role, ToolCall};
use serde_json::{Value, json};

use crate::sse::SseEvent;
use crate::transport::{Auth, Decoded, StreamDecoder, Transport, WireFormat};
use crate::wire::{self, call_id_or_generated, error_message, normalize_arguments, snippet};
use crate::{
    BoxFuture, ModelClient, ModelError, ModelRequest, ModelResponse, ProviderConfig, RetryNote,
};

/// The API version every request is sent with.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A client for the Anthropic Messages API.
pub struct AnthropicClient {
    transport: Transport,
}

impl AnthropicClient {
    /// Checks `config` and builds the HTTP client, as [`crate::ChatCompletionsClient::new`].
    /// The key is sent as `x-api-key`.
    pub fn new(config: ProviderConfig) -> Result<Self, ModelError> {
        Ok(AnthropicClient {
            transport: Transport::new(
                config,
                "/messages",
                Auth::Header("x-api-key"),
                &[("anthropic-version", ANTHROPIC_VERSION)],
            )?,
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ProviderConfig {
        self.transport.config()
    }

    /// The URL requests are posted to: `{base_url}/messages`.
    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }
}

impl ModelClient for AnthropicClient {
    fn model_name(&self) -> &str {
        &self.config().model
    }

    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        on_retry: &'a (dyn Fn(&RetryNote) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(async move {
            let body = request_body(self.config(), request)
                .to_string()
                .into_bytes();
            let decoded = self
                .transport
                .send::<AnthropicFormat>(request, &body, on_retry)
                .await?;
            Ok(decoded.response)
        })
    }
}

fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

/// The JSON body of `POST {base_url}/messages`.
pub(crate) fn request_body(config: &ProviderConfig, request: &ModelRequest) -> Value {
    let leading_system = request
        .messages
        .iter()
        .take_while(|message| message.role == Role::System)
        .count();
    let system: Vec<&str> = request.messages[..leading_system]
        .iter()
        .map(|message| message.content.as_str())
        .filter(|text| !text.is_empty())
        .collect();
    let mut messages: Vec<Value> = Vec::new();
    for message in &request.messages[leading_system..] {
        let (role, blocks) = turn(message);
        if blocks.is_empty() {
            continue; // the API refuses empty turns and empty text blocks
        }
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(content) = last["content"].as_array_mut() {
                    content.extend(blocks);
                }
            }
            _ => messages.push(json!({"role": role, "content": blocks})),
        }
    }
    if let Some(block) = messages
        .last_mut()
        .and_then(|last| last["content"].as_array_mut())
        .and_then(|content| content.last_mut())
    {
        block["cache_control"] = ephemeral();
    }
    let mut body = json!({
        "model": config.model,
        "max_tokens": config
            .max_output_tokens
            .unwrap_or(ProviderConfig::DEFAULT_ANTHROPIC_MAX_TOKENS),
        "messages": messages,
        "stream": config.stream,
    });
    if !system.is_empty() {
        body["system"] = json!([{
            "type": "text",
            "text": system.join("\n\n"),
            "cache_control": ephemeral(),
        }]);
    }
    if !request.tools.is_empty() {
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
        if let Some(last) = tools.last_mut() {
            last["cache_control"] = ephemeral();
        }
        body["tools"] = Value::Array(tools);
    }
    if let Some(temperature) = config.temperature {
        body["temperature"] = json!(temperature);
    }
    body
}

/// The role and content blocks one message becomes.
fn turn(message: &Message) -> (&'static str, Vec<Value>) {
    let text_block = |text: &str| json!({"type": "text", "text": text});
    match message.role {
        Role::System | Role::User => {
            let blocks = if message.content.is_empty() {
                Vec::new()
            } else {
                vec![text_block(&message.content)]
            };
            ("user", blocks)
        }
        Role::Assistant => {
            let mut blocks = Vec::new();
            if !message.content.is_empty() {
                blocks.push(text_block(&message.content));
            }
            for call in &message.tool_calls {
                blocks.push(json!({
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": tool_input(&call.arguments),
                }));
            }
            ("assistant", blocks)
        }
        Role::Tool => (
            "user",
            vec![json!({
                "type": "tool_result",
                "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
                "content": message.content,
            })],
        ),
    }
}

/// `tool_use.input` must be an object; arguments that were not one (the model wrote bad
/// JSON, and was told so by the tool result) are sent as `{}` rather than failing the turn.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({}),
    }
}

/// Why the model stopped, in the Chat Completions words the rest of Nightshift uses.
fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        other => other,
    }
    .to_owned()
}

/// The Messages answer format, for [`Transport::send`].
pub(crate) struct AnthropicFormat;

impl WireFormat for AnthropicFormat {
    type Stream = AnthropicStream;

    fn parse_body(body: &[u8], request: &ModelRequest) -> Result<Decoded, ModelError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ModelError::MalformedResponse {
                detail: format!("the body is not JSON ({e}): {}", snippet(body)),
            })?;
        if value["type"] == "error" {
            return Err(ModelError::Provider {
                message: error_message(&value["error"]),
            });
        }
        let Some(content) = value["content"].as_array() else {
            return Err(ModelError::MalformedResponse {
                detail: format!(
                    "the answer has no `content` array: {}",
                    snippet(value.to_string().as_bytes())
                ),
            });
        };
        let mut state = AnthropicStream::default();
        state.on_usage(&value["usage"]);
        for block in content {
            state.start_block(block);
            if let Some(Block::ToolUse { input, .. }) = state.blocks.last_mut() {
                *input = block["input"].to_string();
            }
        }
        state.stop_reason = value["stop_reason"].as_str().map(str::to_owned);
        state.done = true;
        state.finish(request)
    }
}

#[derive(Debug)]
enum Block {
    Text(String),
    ToolUse {
        id: Option<String>,
        name: String,
        /// The `input_json_delta` pieces, or the start block's whole `input` if none came.
        input: String,
        streamed: bool,
    },
    Other,
}

/// Streamed Messages events accumulated so far.
#[derive(Debug, Default)]
pub(crate) struct AnthropicStream {
    /// Content blocks by `index`.
    blocks: Vec<Block>,
    input_tokens: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    output_tokens: Option<u64>,
    stop_reason: Option<String>,
    done: bool,
}

impl AnthropicStream {
    fn on_usage(&mut self, usage: &Value) {
        let field = |key: &str| usage[key].as_u64();
        self.input_tokens = field("input_tokens").or(self.input_tokens);
        self.cache_read = field("cache_read_input_tokens").or(self.cache_read);
        self.cache_creation = field("cache_creation_input_tokens").or(self.cache_creation);
        self.output_tokens = field("output_tokens").or(self.output_tokens);
    }

    fn start_block(&mut self, block: &Value) {
        self.blocks
            .push(match block["type"].as_str().unwrap_or_default() {
                "text" => Block::Text(block["text"].as_str().unwrap_or_default().to_owned()),
                "tool_use" => {
                    let input = &block["input"];
                    let has_input = input.as_object().is_some_and(|object| !object.is_empty());
                    Block::ToolUse {
                        id: block["id"].as_str().map(str::to_owned),
                        name: block["name"].as_str().unwrap_or_default().to_owned(),
                        input: if has_input {
                            input.to_string()
                        } else {
                            String::new()
                        },
                        streamed: false,
                    }
                }
                // Thinking blocks are not requested; anything new is ignored, not fatal.
                _ => Block::Other,
            });
    }

    fn block_at(&mut self, event: &Value) -> Option<&mut Block> {
        let index = usize::try_from(event["index"].as_u64()?).ok()?;
        self.blocks.get_mut(index)
    }
}

impl StreamDecoder for AnthropicStream {
    fn on_event(&mut self, event: &SseEvent) -> Result<(), ModelError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let value = wire::data_json(data)?;
        let kind = wire::event_type(&value, event);
        match kind.as_str() {
            "message_start" => self.on_usage(&value["message"]["usage"]),
            "content_block_start" => {
                let index = value["index"].as_u64().unwrap_or(self.blocks.len() as u64);
                // Blocks arrive in index order; pad if a server skips one.
                while (self.blocks.len() as u64) < index {
                    self.blocks.push(Block::Other);
                }
                self.start_block(&value["content_block"]);
            }
            "content_block_delta" => {
                let delta = &value["delta"];
                match (self.block_at(&value), delta["type"].as_str()) {
                    (Some(Block::Text(text)), Some("text_delta")) => {
                        text.push_str(delta["text"].as_str().unwrap_or_default());
                    }
                    (
                        Some(Block::ToolUse {
                            input, streamed, ..
                        }),
                        Some("input_json_delta"),
                    ) => {
                        if !*streamed {
                            // The deltas carry the whole input; drop the start block's copy.
                            input.clear();
                            *streamed = true;
                        }
                        input.push_str(delta["partial_json"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = value["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(reason.to_owned());
                }
                self.on_usage(&value["usage"]);
            }
            "message_stop" => self.done = true,
            "error" => {
                return Err(ModelError::Provider {
                    message: error_message(&value["error"]),
                });
            }
            // `ping`, `content_block_stop` and anything newer carry nothing to keep.
            _ => {}
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn finish(self, request: &ModelRequest) -> Result<Decoded, ModelError> {
        if !self.done {
            return Err(ModelError::MalformedStream {
                detail: "the stream ended before `message_stop`".to_owned(),
            });
        }
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        for block in self.blocks {
            match block {
                Block::Text(text) => content.push_str(&text),
                Block::ToolUse {
                    id, name, input, ..
                } => tool_calls.push(ToolCall {
                    id: call_id_or_generated(id, tool_calls.len()),
                    name,
                    arguments: normalize_arguments(input),
                }),
                Block::Other => {}
            }
        }
        let message = Message::assistant(content, tool_calls);
        let input = self
            .input_tokens
            .map(|fresh| fresh + self.cache_read.unwrap_or(0) + self.cache_creation.unwrap_or(0));
        let usage = wire::usage_or_estimate(
            input,
            self.output_tokens,
            self.cache_read,
            request,
            &message,
        );
        Ok(Decoded::from(ModelResponse {
            message,
            usage,
            finish_reason: self.stop_reason.as_deref().map(finish_reason),
            skipped_lines: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::decode_pieces;

    /// The documented event sequence of a streamed answer: usage with cache reads and
    /// writes, a ping, a text block in pieces, a tool_use block whose input arrives as
    /// partial JSON, `message_delta` with the stop reason and output tokens, `message_stop`.
    const STREAM: &str = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":36,\"cache_read_input_tokens\":64,\"output_tokens\":1}}}\n\n",
        "event: ping\n",
        "data: {\"type\": \"ping\"}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me \"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"look \u{2713}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"read\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"pa\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"th\\\":\\\"a.rs\\\"}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":30}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );

    fn expected() -> ModelResponse {
        ModelResponse {
            message: Message::assistant(
                "Let me look \u{2713}",
                vec![ToolCall {
                    id: "toolu_a".into(),
                    name: "read".into(),
                    arguments: "{\"path\":\"a.rs\"}".into(),
                }],
            ),
            usage: nightshift_protocol::Usage {
                input_tokens: 120,
                output_tokens: 30,
                cached_tokens: 64,
            },
            finish_reason: Some("tool_calls".into()),
            skipped_lines: Vec::new(),
        }
    }

    #[test]
    fn the_documented_stream_split_at_every_byte_gives_the_same_answer() {
        let bytes = STREAM.as_bytes();
        let request = ModelRequest::default();
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            let decoded = decode_pieces::<AnthropicStream>(&[head, tail], &request).unwrap();
            assert_eq!(decoded.response, expected(), "split at {cut}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        let decoded = decode_pieces::<AnthropicStream>(&single, &request).unwrap();
        assert_eq!(decoded.response, expected());
    }

    #[test]
    fn a_stream_without_message_stop_is_malformed_and_errors_are_reported() {
        let cut = STREAM.find("event: message_stop").unwrap();
        let err = decode_pieces::<AnthropicStream>(
            &[&STREAM.as_bytes()[..cut]],
            &ModelRequest::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ModelError::MalformedStream { .. }), "{err}");

        let overloaded = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let err =
            decode_pieces::<AnthropicStream>(&[overloaded.as_bytes()], &ModelRequest::default())
                .unwrap_err();
        assert!(matches!(err, ModelError::Provider { .. }), "{err}");
        assert!(err.to_string().contains("Overloaded"), "{err}");
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        assert_eq!(finish_reason("end_turn"), "stop");
        assert_eq!(finish_reason("max_tokens"), "length");
        assert_eq!(finish_reason("tool_use"), "tool_calls");
        assert_eq!(finish_reason("refusal"), "refusal");
    }
}
