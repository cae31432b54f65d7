//! The OpenAI Chat Completions wire format: the request body, the non-streaming answer, and
//! the accumulation of streamed chunks into one answer.

use nightshift_protocol::{Message, Role, ToolCall, Usage};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sse::SseEvent;
use crate::text_tools;
use crate::transport::{Decoded, StreamDecoder, WireFormat};
use crate::wire::{self, call_id_or_generated, error_message, normalize_arguments, snippet};
use crate::{ModelError, ModelRequest, ModelResponse, ProviderConfig};

/// The JSON body of `POST {base_url}/chat/completions`.
pub(crate) fn request_body(config: &ProviderConfig, request: &ModelRequest) -> Value {
    let text_tools = config.text_tool_calls && !request.tools.is_empty();
    let messages: Vec<Value> = if text_tools {
        text_tool_messages(request)
    } else {
        request.messages.iter().map(wire_message).collect()
    };
    let mut body = json!({
        "model": config.model,
        "messages": messages,
        "stream": config.stream,
    });
    if !request.tools.is_empty() && !text_tools {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    if config.stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(max_tokens) = config.max_output_tokens {
        body["max_tokens"] = json!(max_tokens);
    }
    if let Some(temperature) = config.temperature {
        body["temperature"] = json!(temperature);
    }
    body
}

/// The conversation for a server without native tool calling: the tools described in the
/// system prompt, past calls as `<tool_call>` text, and results as user turns (consecutive
/// results merged, since such servers' chat templates often insist on alternating roles).
fn text_tool_messages(request: &ModelRequest) -> Vec<Value> {
    let prompt = text_tools::tools_prompt(&request.tools);
    let mut messages: Vec<Value> = Vec::new();
    let mut prompt_placed = false;
    for message in &request.messages {
        match message.role {
            Role::System if !prompt_placed => {
                prompt_placed = true;
                messages.push(json!({"role": "system", "content": format!("{}\n\n{prompt}", message.content)}));
            }
            Role::System => messages.push(json!({"role": "system", "content": message.content})),
            Role::User => messages.push(json!({"role": "user", "content": message.content})),
            Role::Assistant => messages
                .push(json!({"role": "assistant", "content": text_tools::assistant_text(message)})),
            Role::Tool => {
                let text = text_tools::tool_result_text(message);
                match messages.last_mut() {
                    Some(last) if last["role"] == "user" && last["tool_results"] == true => {
                        let joined =
                            format!("{}\n{text}", last["content"].as_str().unwrap_or_default());
                        last["content"] = json!(joined);
                    }
                    _ => messages
                        .push(json!({"role": "user", "content": text, "tool_results": true})),
                }
            }
        }
    }
    for message in &mut messages {
        // The marker only groups results above; it is not part of the wire format.
        if let Some(object) = message.as_object_mut() {
            object.remove("tool_results");
        }
    }
    if !prompt_placed {
        messages.insert(0, json!({"role": "system", "content": prompt}));
    }
    messages
}

fn wire_message(message: &Message) -> Value {
    let role = match message.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut wire = json!({"role": role, "content": message.content});
    match message.role {
        Role::Assistant if !message.tool_calls.is_empty() => {
            // OpenAI's own convention for a pure tool-call turn; some servers reject "".
            if message.content.is_empty() {
                wire["content"] = Value::Null;
            }
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
            wire["tool_calls"] = Value::Array(calls);
        }
        Role::Tool => {
            wire["tool_call_id"] = json!(message.tool_call_id.as_deref().unwrap_or_default());
        }
        _ => {}
    }
    wire
}

/// Token usage as the wire reports it; every field may be missing or null.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

fn usage_or_estimate(usage: Option<WireUsage>, request: &ModelRequest, message: &Message) -> Usage {
    let usage = usage.unwrap_or_default();
    wire::usage_or_estimate(
        usage.prompt_tokens,
        usage.completion_tokens,
        usage
            .prompt_tokens_details
            .and_then(|details| details.cached_tokens),
        request,
        message,
    )
}

/// The Chat Completions answer format, for [`crate::transport::Transport::send`].
pub(crate) struct ChatFormat;

impl WireFormat for ChatFormat {
    type Stream = StreamState;

    fn parse_body(body: &[u8], request: &ModelRequest) -> Result<Decoded, ModelError> {
        parse_completion(body, request).map(Decoded::from)
    }
}

impl StreamDecoder for StreamState {
    fn on_event(&mut self, event: &SseEvent) -> Result<(), ModelError> {
        StreamState::on_event(self, event)
    }

    fn is_done(&self) -> bool {
        StreamState::is_done(self)
    }

    fn finish(self, request: &ModelRequest) -> Result<Decoded, ModelError> {
        StreamState::finish(self, request).map(Decoded::from)
    }
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CompletionToolCall>>,
}

#[derive(Debug, Deserialize)]
struct CompletionToolCall {
    #[serde(default)]
    id: Option<String>,
    function: CompletionFunction,
}

#[derive(Debug, Deserialize)]
struct CompletionFunction {
    name: String,
    /// A string on the wire; a few servers send the object itself.
    #[serde(default)]
    arguments: Option<Value>,
}

/// Parses a non-streaming answer body.
pub(crate) fn parse_completion(
    body: &[u8],
    request: &ModelRequest,
) -> Result<ModelResponse, ModelError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ModelError::MalformedResponse {
        detail: format!("the body is not JSON ({e}): {}", snippet(body)),
    })?;
    if let Some(error) = value.get("error").filter(|error| !error.is_null()) {
        return Err(ModelError::Provider {
            message: error_message(error),
        });
    }
    let completion: Completion =
        serde_json::from_value(value).map_err(|e| ModelError::MalformedResponse {
            detail: format!("unexpected JSON shape: {e}"),
        })?;
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(ModelError::MalformedResponse {
            detail: "the answer has no choices".to_owned(),
        });
    };
    let tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, call)| ToolCall {
            id: call_id_or_generated(call.id, index),
            name: call.function.name,
            arguments: normalize_arguments(match call.function.arguments {
                Some(Value::String(text)) => text,
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            }),
        })
        .collect();
    let message = Message::assistant(choice.message.content.unwrap_or_default(), tool_calls);
    let usage = usage_or_estimate(completion.usage, request, &message);
    Ok(ModelResponse {
        message,
        usage,
        finish_reason: choice.finish_reason,
        skipped_lines: Vec::new(),
    })
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// Streamed chunks accumulated so far.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    content: String,
    calls: Vec<PartialCall>,
    usage: Option<WireUsage>,
    finish_reason: Option<String>,
    done: bool,
}

impl StreamState {
    /// `data: [DONE]` was seen: the answer is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes one SSE event into account.
    pub fn on_event(&mut self, event: &SseEvent) -> Result<(), ModelError> {
        if self.done {
            return Ok(()); // nothing after [DONE] belongs to this answer
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let value = wire::data_json(data)?;
        if let Some(error) = value.get("error").filter(|error| !error.is_null()) {
            return Err(ModelError::Provider {
                message: error_message(error),
            });
        }
        let chunk: Chunk =
            serde_json::from_value(value).map_err(|e| ModelError::MalformedStream {
                detail: format!("unexpected chunk shape ({e}): {}", snippet(data.as_bytes())),
            })?;
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        // Only the first choice is asked for (no `n`); ignore any other.
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(content) = delta.content {
                    self.content.push_str(&content);
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    self.on_tool_call_delta(call);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        Ok(())
    }

    fn on_tool_call_delta(&mut self, delta: ToolCallDelta) {
        let index = match delta.index {
            Some(index) => index,
            // Without an index, a new id starts a new call; anything else continues the last.
            None => match (&delta.id, self.calls.last()) {
                (Some(id), Some(last)) if last.id.as_deref() == Some(id.as_str()) => {
                    self.calls.len() - 1
                }
                (None, Some(_)) => self.calls.len() - 1,
                _ => self.calls.len(),
            },
        };
        if index >= self.calls.len() {
            self.calls.resize_with(index + 1, PartialCall::default);
        }
        let call = &mut self.calls[index];
        if let Some(id) = delta.id.filter(|id| !id.is_empty()) {
            call.id = Some(id);
        }
        if let Some(function) = delta.function {
            if let Some(name) = function.name {
                // Names arrive whole in practice; appending also handles servers that split them.
                call.name.push_str(&name);
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
    }

    /// The stream ended: the answer, or an error if it ended before it was complete.
    pub fn finish(self, request: &ModelRequest) -> Result<ModelResponse, ModelError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(ModelError::MalformedStream {
                detail: "the stream ended before `data: [DONE]` or a finish_reason".to_owned(),
            });
        }
        let tool_calls = self
            .calls
            .into_iter()
            .enumerate()
            // Gaps in the indexes leave empty slots; they are not calls.
            .filter(|(_, call)| !call.name.is_empty() || !call.arguments.is_empty())
            .map(|(index, call)| ToolCall {
                id: call_id_or_generated(call.id, index),
                name: call.name,
                arguments: normalize_arguments(call.arguments),
            })
            .collect();
        let message = Message::assistant(self.content, tool_calls);
        let usage = usage_or_estimate(self.usage, request, &message);
        Ok(ModelResponse {
            message,
            usage,
            finish_reason: self.finish_reason,
            skipped_lines: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    /// A realistic stream: text in pieces, two tool calls whose arguments arrive in pieces,
    /// keep-alive comments, a usage chunk with cached tokens, and `[DONE]`.
    const STREAM: &str = concat!(
        ": ping\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me \"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"look \u{2713}\"},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"read\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"pa\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"list\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"th\\\":\\\"a.rs\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":30,\"prompt_tokens_details\":{\"cached_tokens\":64}}}\n\n",
        "data: [DONE]\n\n",
    );

    fn accumulate(pieces: &[&[u8]]) -> Result<ModelResponse, ModelError> {
        let mut parser = SseParser::new();
        let mut state = StreamState::default();
        let mut events = Vec::new();
        for piece in pieces {
            parser.feed(piece, &mut events);
        }
        parser.finish(&mut events);
        for event in &events {
            state.on_event(event)?;
        }
        state.finish(&ModelRequest::default())
    }

    fn expected() -> ModelResponse {
        ModelResponse {
            message: Message::assistant(
                "Let me look \u{2713}",
                vec![
                    ToolCall {
                        id: "call_a".into(),
                        name: "read".into(),
                        arguments: "{\"path\":\"a.rs\"}".into(),
                    },
                    ToolCall {
                        id: "call_b".into(),
                        name: "list".into(),
                        arguments: "{}".into(),
                    },
                ],
            ),
            usage: Usage {
                input_tokens: 120,
                output_tokens: 30,
                cached_tokens: 64,
            },
            finish_reason: Some("tool_calls".into()),
            skipped_lines: Vec::new(),
        }
    }

    #[test]
    fn a_stream_split_at_every_byte_boundary_accumulates_the_same_answer() {
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            assert_eq!(
                accumulate(&[head, tail]).unwrap(),
                expected(),
                "split at {cut}"
            );
        }
        let single_bytes: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(accumulate(&single_bytes).unwrap(), expected());
    }

    #[test]
    fn a_stream_cut_short_is_malformed() {
        let cut = STREAM
            .find("data: {\"choices\":[{\"index\":0,\"delta\":{},")
            .unwrap();
        let err = accumulate(&[&STREAM.as_bytes()[..cut]]).unwrap_err();
        assert!(matches!(err, ModelError::MalformedStream { .. }), "{err}");
        assert!(err.is_retryable());
    }

    #[test]
    fn missing_usage_is_estimated_not_zero() {
        let stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"twelve chars\"},\"finish_reason\":\"stop\"}]}\n\n";
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        parser.feed(stream.as_bytes(), &mut events);
        parser.finish(&mut events);
        let mut state = StreamState::default();
        for event in &events {
            state.on_event(event).unwrap();
        }
        let request = ModelRequest {
            messages: vec![Message::user("0123456789abcdef")],
            tools: Vec::new(),
        };
        let response = state.finish(&request).unwrap();
        assert_eq!(response.usage.input_tokens, 4);
        assert_eq!(response.usage.output_tokens, 3);
    }

    #[test]
    fn non_streaming_arguments_given_as_objects_become_text() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"shell","arguments":{"cmd":"ls"}}}]},"finish_reason":"tool_calls"}]}"#;
        let response = parse_completion(body, &ModelRequest::default()).unwrap();
        let call = &response.message.tool_calls[0];
        assert_eq!(call.id, "call_0");
        assert_eq!(call.arguments, r#"{"cmd":"ls"}"#);
        assert_eq!(response.message.content, "");
    }
}
