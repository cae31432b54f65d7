//! [`ResponsesClient`]: the OpenAI Responses API (`POST {base_url}/responses`), stateless.
//!
//! Requests are sent with `store: false`, so the whole conversation goes in every request:
//! leading system messages become `instructions`, later ones `developer` messages, user and
//! assistant text become message items, tool calls `function_call` items and tool results
//! `function_call_output` items.
//!
//! **Reasoning items.** Reasoning models return `reasoning` output items whose
//! `encrypted_content` (asked for with `include: ["reasoning.encrypted_content"]`) lets the
//! next request continue the same chain of thought. [`Message`] has no slot for them, so the
//! client keeps them itself, keyed by the answer they came with: the `call_id` of its first
//! function call, or, for an answer without calls, a hash of its text. When a later request
//! contains that assistant message, its reasoning items are re-sent right before it, without
//! their `id` (with `store: false` the server cannot look ids up and refuses them). The memory
//! is bounded ([`REASONING_MEMORY`] answers, oldest forgotten first); a forgotten or edited
//! message is simply sent without reasoning, which the API accepts. Servers that refuse the
//! `include` parameter (non-reasoning models) get the request again without it, and this
//! client stops asking.

use std::collections::VecDeque;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nightshift_protocol::{Message, Role, ToolCall, ToolSpec};
use serde_json::{Value, json};

use crate::sse::SseEvent;
use crate::transport::{Auth, Decoded, StreamDecoder, Transport, WireFormat};
use crate::wire::{self, call_id_or_generated, error_message, normalize_arguments, snippet};
use crate::{
    BoxFuture, ModelClient, ModelError, ModelRequest, ModelResponse, ProviderConfig, RetryNote,
};

/// How many answers' reasoning items a client remembers.
pub const REASONING_MEMORY: usize = 256;

/// A client for the OpenAI Responses API.
pub struct ResponsesClient {
    transport: Transport,
    reasoning: Mutex<VecDeque<(String, Vec<Value>)>>,
    /// Cleared when the server refuses `include: ["reasoning.encrypted_content"]`.
    include_reasoning: AtomicBool,
}

impl ResponsesClient {
    /// Checks `config` and builds the HTTP client, as [`crate::ChatCompletionsClient::new`].
    pub fn new(config: ProviderConfig) -> Result<Self, ModelError> {
        Ok(ResponsesClient {
            transport: Transport::new(config, "/responses", Auth::Bearer, &[])?,
            reasoning: Mutex::new(VecDeque::new()),
            include_reasoning: AtomicBool::new(true),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ProviderConfig {
        self.transport.config()
    }

    /// The URL requests are posted to: `{base_url}/responses`.
    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    async fn complete_with_retries(
        &self,
        request: &ModelRequest,
        on_retry: &(dyn Fn(&RetryNote) + Send + Sync),
    ) -> Result<ModelResponse, ModelError> {
        let include = self.include_reasoning.load(Ordering::Relaxed);
        let body = self.body(request, include);
        let decoded = match self
            .transport
            .send::<ResponsesFormat>(request, &body, on_retry)
            .await
        {
            Err(ModelError::Rejected { status: 400, body })
                if include && body.to_ascii_lowercase().contains("encrypted") =>
            {
                tracing::debug!(
                    "the server refused reasoning.encrypted_content; asking without it"
                );
                self.include_reasoning.store(false, Ordering::Relaxed);
                let body = self.body(request, false);
                self.transport
                    .send::<ResponsesFormat>(request, &body, on_retry)
                    .await?
            }
            other => other?,
        };
        if !decoded.carry.is_empty() {
            self.remember(memory_key(&decoded.response.message), decoded.carry);
        }
        Ok(decoded.response)
    }

    fn body(&self, request: &ModelRequest, include_reasoning: bool) -> Vec<u8> {
        let memory = self.lock();
        let recall = |message: &Message| {
            let key = memory_key(message);
            memory
                .iter()
                .find(|(known, _)| *known == key)
                .map(|(_, items)| items.clone())
        };
        request_body(self.config(), request, &recall, include_reasoning)
            .to_string()
            .into_bytes()
    }

    fn remember(&self, key: String, items: Vec<Value>) {
        let mut memory = self.lock();
        memory.retain(|(known, _)| *known != key);
        if memory.len() >= REASONING_MEMORY {
            memory.pop_front();
        }
        memory.push_back((key, items));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Vec<Value>)>> {
        // Every update is a single push or pop, so a poisoned lock still holds a usable state.
        self.reasoning
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ModelClient for ResponsesClient {
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

/// Which answer a set of reasoning items belongs to: its first call id, else its text.
fn memory_key(message: &Message) -> String {
    match message.tool_calls.first() {
        Some(call) => format!("call:{}", call.id),
        None => {
            let mut hasher = DefaultHasher::new();
            message.content.hash(&mut hasher);
            format!("text:{:016x}", hasher.finish())
        }
    }
}

/// The JSON body of `POST {base_url}/responses`. `recall` finds the reasoning items that
/// came with an assistant message.
pub(crate) fn request_body(
    config: &ProviderConfig,
    request: &ModelRequest,
    recall: &dyn Fn(&Message) -> Option<Vec<Value>>,
    include_reasoning: bool,
) -> Value {
    let leading_system = request
        .messages
        .iter()
        .take_while(|message| message.role == Role::System)
        .count();
    let instructions: Vec<&str> = request.messages[..leading_system]
        .iter()
        .map(|message| message.content.as_str())
        .collect();
    let mut input = Vec::new();
    for message in &request.messages[leading_system..] {
        match message.role {
            Role::System => input.push(text_item("developer", "input_text", &message.content)),
            Role::User => input.push(text_item("user", "input_text", &message.content)),
            Role::Assistant => {
                input.extend(recall(message).unwrap_or_default());
                if !message.content.is_empty() {
                    input.push(text_item("assistant", "output_text", &message.content));
                }
                for call in &message.tool_calls {
                    input.push(json!({
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                    }));
                }
            }
            Role::Tool => input.push(json!({
                "type": "function_call_output",
                "call_id": message.tool_call_id.as_deref().unwrap_or_default(),
                "output": message.content,
            })),
        }
    }
    let mut body = json!({
        "model": config.model,
        "input": input,
        "stream": config.stream,
        "store": false,
    });
    if !instructions.is_empty() {
        body["instructions"] = json!(instructions.join("\n\n"));
    }
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(tool_json).collect();
    }
    if include_reasoning {
        body["include"] = json!(["reasoning.encrypted_content"]);
    }
    if let Some(max_tokens) = config.max_output_tokens {
        body["max_output_tokens"] = json!(max_tokens);
    }
    if let Some(temperature) = config.temperature {
        body["temperature"] = json!(temperature);
    }
    body
}

/// A tool as the Responses API describes one (a flat function object); also what the
/// embedded model's `/v1/responses` echoes back.
pub fn tool_json(tool: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    })
}

fn text_item(role: &str, kind: &str, text: &str) -> Value {
    json!({"type": "message", "role": role, "content": [{"type": kind, "text": text}]})
}

/// One output item as far as it has arrived.
#[derive(Debug)]
enum Item {
    Message(String),
    Call {
        call_id: Option<String>,
        name: String,
        arguments: String,
    },
    /// Kept verbatim, minus what cannot be sent back (`id`, `status`).
    Reasoning(Value),
    Other,
}

impl Item {
    fn from_value(item: &Value) -> Item {
        let text = |key: &str| item[key].as_str().unwrap_or_default().to_owned();
        match item["type"].as_str().unwrap_or_default() {
            "message" => Item::Message(
                item["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|part| part["type"] == "output_text")
                    .filter_map(|part| part["text"].as_str())
                    .collect(),
            ),
            "function_call" => Item::Call {
                call_id: item["call_id"].as_str().map(str::to_owned),
                name: text("name"),
                arguments: text("arguments"),
            },
            "reasoning" => {
                let mut kept = item.clone();
                if let Some(object) = kept.as_object_mut() {
                    object.remove("id");
                    object.remove("status");
                }
                Item::Reasoning(kept)
            }
            _ => Item::Other,
        }
    }
}

/// The Responses answer format, for [`Transport::send`].
pub(crate) struct ResponsesFormat;

impl WireFormat for ResponsesFormat {
    type Stream = ResponsesStream;

    fn parse_body(body: &[u8], request: &ModelRequest) -> Result<Decoded, ModelError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ModelError::MalformedResponse {
                detail: format!("the body is not JSON ({e}): {}", snippet(body)),
            })?;
        if let Some(error) = value.get("error").filter(|error| !error.is_null()) {
            return Err(ModelError::Provider {
                message: error_message(error),
            });
        }
        let Some(output) = value["output"].as_array() else {
            return Err(ModelError::MalformedResponse {
                detail: format!(
                    "the answer has no `output` array: {}",
                    snippet(value.to_string().as_bytes())
                ),
            });
        };
        let mut state = ResponsesStream {
            items: output
                .iter()
                .enumerate()
                .map(|(index, item)| (index as u64, None, Item::from_value(item)))
                .collect(),
            ..ResponsesStream::default()
        };
        state.on_final(&value);
        state.finish(request)
    }
}

/// Streamed Responses events accumulated so far.
#[derive(Debug, Default)]
pub(crate) struct ResponsesStream {
    /// Output items by `output_index`, with their item id when known.
    items: Vec<(u64, Option<String>, Item)>,
    usage: Option<Value>,
    /// Set by `response.incomplete`: why the answer was cut short.
    incomplete: Option<String>,
    done: bool,
}

impl ResponsesStream {
    /// The item an event refers to, created by `make` if it has not been announced.
    fn item(&mut self, event: &Value, make: fn() -> Item) -> &mut Item {
        let index = event["output_index"].as_u64();
        let id = event["item_id"].as_str();
        let found = self.items.iter().position(|(i, item_id, _)| match index {
            Some(index) => *i == index,
            None => id.is_some() && item_id.as_deref() == id,
        });
        let position = found.unwrap_or_else(|| {
            let index = index.unwrap_or(self.items.len() as u64);
            self.items.push((index, id.map(str::to_owned), make()));
            self.items.len() - 1
        });
        &mut self.items[position].2
    }

    fn put(&mut self, event: &Value) {
        let item = &event["item"];
        let index = event["output_index"]
            .as_u64()
            .unwrap_or(self.items.len() as u64);
        let id = item["id"].as_str().map(str::to_owned);
        let parsed = Item::from_value(item);
        match self.items.iter_mut().find(|(i, _, _)| *i == index) {
            Some(slot) => *slot = (index, id, parsed),
            None => self.items.push((index, id, parsed)),
        }
    }

    /// `response.completed` / `response.incomplete`, or a whole non-streaming answer.
    fn on_final(&mut self, response: &Value) {
        if let Some(output) = response["output"].as_array().filter(|o| !o.is_empty()) {
            // The final object holds every item whole: it wins over the deltas.
            self.items = output
                .iter()
                .enumerate()
                .map(|(index, item)| (index as u64, None, Item::from_value(item)))
                .collect();
        }
        if response["usage"].is_object() {
            self.usage = Some(response["usage"].clone());
        }
        if response["status"] == "incomplete" {
            let reason = response["incomplete_details"]["reason"]
                .as_str()
                .unwrap_or("incomplete");
            self.incomplete = Some(match reason {
                "max_output_tokens" => "length".to_owned(),
                other => other.to_owned(),
            });
        }
        self.done = true;
    }
}

impl StreamDecoder for ResponsesStream {
    fn on_event(&mut self, event: &SseEvent) -> Result<(), ModelError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let value = wire::data_json(data)?;
        let kind = wire::event_type(&value, event);
        match kind.as_str() {
            "response.output_item.added" | "response.output_item.done" => self.put(&value),
            "response.output_text.delta" => {
                if let Item::Message(text) = self.item(&value, || Item::Message(String::new())) {
                    text.push_str(value["delta"].as_str().unwrap_or_default());
                }
            }
            "response.function_call_arguments.delta" => {
                let make = || Item::Call {
                    call_id: None,
                    name: String::new(),
                    arguments: String::new(),
                };
                if let Item::Call { arguments, .. } = self.item(&value, make) {
                    arguments.push_str(value["delta"].as_str().unwrap_or_default());
                }
            }
            "response.completed" | "response.incomplete" => self.on_final(&value["response"]),
            "response.failed" => {
                let error = &value["response"]["error"];
                return Err(ModelError::Provider {
                    message: if error.is_null() {
                        "the response failed without a reason".to_owned()
                    } else {
                        error_message(error)
                    },
                });
            }
            "error" => {
                let error = value.get("error").unwrap_or(&value);
                return Err(ModelError::Provider {
                    message: error_message(error),
                });
            }
            // Lifecycle events (created, in_progress, content_part.*, *.done summaries)
            // add nothing the events above do not carry.
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
                detail: "the stream ended before `response.completed`".to_owned(),
            });
        }
        let mut items = self.items;
        items.sort_by_key(|(index, _, _)| *index);
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        let mut carry = Vec::new();
        for (_, _, item) in items {
            match item {
                Item::Message(text) => content.push_str(&text),
                Item::Call {
                    call_id,
                    name,
                    arguments,
                } => tool_calls.push(ToolCall {
                    id: call_id_or_generated(call_id, tool_calls.len()),
                    name,
                    arguments: normalize_arguments(arguments),
                }),
                Item::Reasoning(value) if value["encrypted_content"].is_string() => {
                    carry.push(value);
                }
                Item::Reasoning(_) | Item::Other => {}
            }
        }
        let finish_reason = match (&self.incomplete, tool_calls.is_empty()) {
            (Some(reason), _) => reason.clone(),
            (None, false) => "tool_calls".to_owned(),
            (None, true) => "stop".to_owned(),
        };
        let message = Message::assistant(content, tool_calls);
        let usage = self.usage.unwrap_or_default();
        let usage = wire::usage_or_estimate(
            usage["input_tokens"].as_u64(),
            usage["output_tokens"].as_u64(),
            usage["input_tokens_details"]["cached_tokens"].as_u64(),
            request,
            &message,
        );
        Ok(Decoded {
            response: ModelResponse {
                message,
                usage,
                finish_reason: Some(finish_reason),
                skipped_lines: Vec::new(),
            },
            carry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::decode_pieces;

    /// The documented event sequence of a streamed answer: a reasoning item, text in pieces,
    /// a function call whose arguments arrive in pieces, and `response.completed` with usage.
    /// `{OUTPUT}` is the completed response's `output` (real servers repeat every item there).
    const STREAM: &str = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[]}}\n\n",
        "event: response.output_item.done\n",
        "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"gAAA\u{e9}==\"}}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"output_index\":1,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[]}}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":1,\"content_index\":0,\"delta\":\"Let me \"}\n\n",
        ": keep-alive\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":1,\"content_index\":0,\"delta\":\"look \u{2713}\"}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"output_index\":2,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"call_id\":\"call_a\",\"name\":\"read\",\"arguments\":\"\"}}\n\n",
        "event: response.function_call_arguments.delta\n",
        "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":2,\"delta\":\"{\\\"pa\"}\n\n",
        "event: response.function_call_arguments.delta\n",
        "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":2,\"delta\":\"th\\\":\\\"a.rs\\\"}\"}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":{OUTPUT},",
        "\"usage\":{\"input_tokens\":120,\"input_tokens_details\":{\"cached_tokens\":64},\"output_tokens\":30}}}\n\n",
    );

    const FULL_OUTPUT: &str = "[{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"gAAA\u{e9}==\"},{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Let me look \u{2713}\"}]},{\"id\":\"fc_1\",\"type\":\"function_call\",\"call_id\":\"call_a\",\"name\":\"read\",\"arguments\":\"{\\\"path\\\":\\\"a.rs\\\"}\"}]";

    fn expected() -> ModelResponse {
        ModelResponse {
            message: Message::assistant(
                "Let me look \u{2713}",
                vec![ToolCall {
                    id: "call_a".into(),
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

    fn check_every_split(stream: &str) {
        let bytes = stream.as_bytes();
        let request = ModelRequest::default();
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            let decoded = decode_pieces::<ResponsesStream>(&[head, tail], &request).unwrap();
            assert_eq!(decoded.response, expected(), "split at {cut}");
            // The id is dropped: with store=false the server cannot look it up.
            assert_eq!(
                decoded.carry,
                vec![
                    json!({"type": "reasoning", "summary": [], "encrypted_content": "gAAA\u{e9}=="})
                ],
                "split at {cut}"
            );
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        let decoded = decode_pieces::<ResponsesStream>(&single, &request).unwrap();
        assert_eq!(decoded.response, expected());
    }

    #[test]
    fn the_documented_stream_split_at_every_byte_gives_the_same_answer() {
        check_every_split(&STREAM.replace("{OUTPUT}", FULL_OUTPUT));
    }

    #[test]
    fn deltas_alone_are_enough_when_the_final_output_is_empty() {
        // Some compatible servers send `output: []` in response.completed; the reasoning
        // item is then known from its output_item.done event.
        check_every_split(&STREAM.replace("{OUTPUT}", "[]"));
    }

    #[test]
    fn a_stream_without_response_completed_is_malformed() {
        let cut = STREAM.find("event: response.completed").unwrap();
        let err = decode_pieces::<ResponsesStream>(
            &[&STREAM.as_bytes()[..cut]],
            &ModelRequest::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ModelError::MalformedStream { .. }), "{err}");
    }

    #[test]
    fn incomplete_and_failed_responses_are_reported() {
        let incomplete = "data: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"cut\"}]}]}}\n\n";
        let decoded =
            decode_pieces::<ResponsesStream>(&[incomplete.as_bytes()], &ModelRequest::default())
                .unwrap();
        assert_eq!(decoded.response.finish_reason.as_deref(), Some("length"));
        assert_eq!(decoded.response.message.content, "cut");
        // No usage reported: estimated, never zero.
        assert!(decoded.response.usage.output_tokens > 0);

        let failed = "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"The model crashed\"}}}\n\n";
        let err = decode_pieces::<ResponsesStream>(&[failed.as_bytes()], &ModelRequest::default())
            .unwrap_err();
        assert!(err.to_string().contains("The model crashed"), "{err}");
    }
}
