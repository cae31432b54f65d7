//! Tool calls written as text, for servers and models without native tool calling.
//!
//! Many local models (Qwen, Hermes, Mistral fine-tunes behind Ollama, vLLM or llama.cpp
//! without a tool-aware chat template) answer a tool request with text: Hermes-style
//! `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` tags or a fenced ```json block
//! holding the same object. [`parse_text_tool_calls`] recovers those calls; the rendering
//! helpers below describe the tools in the prompt and write past calls and results back as
//! text for servers that reject the `tools` parameter altogether.

use nightshift_protocol::{Message, Role, ToolCall, ToolSpec};
use serde_json::{Value, json};

const OPEN_TAG: &str = "<tool_call>";
const CLOSE_TAG: &str = "</tool_call>";
const FENCE: &str = "```";

/// Splits `text` into the prose that remains and the tool calls written in it.
///
/// Recognises Hermes-style `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (the
/// closing tag may be missing at the very end, as when a server stops on it) and fenced code
/// blocks (```` ```json ````, ```` ```tool_call ```` or no language) holding such an object
/// or an array of them. `arguments` may be an object or a string of JSON; `parameters` is
/// accepted for it too. A block is taken only when it parses and every call in it names one
/// of `tools`; anything else (unknown names, malformed JSON, ordinary code) stays in the text
/// untouched. Calls get ids `call_text_1`, `call_text_2`, ... in order of appearance.
pub fn parse_text_tool_calls(text: &str, tools: &[ToolSpec]) -> (String, Vec<ToolCall>) {
    let mut remaining = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    loop {
        let tag = rest.find(OPEN_TAG);
        let fence = rest.find(FENCE);
        let (start, is_tag) = match (tag, fence) {
            (Some(t), Some(f)) if f < t => (f, false),
            (Some(t), _) => (t, true),
            (None, Some(f)) => (f, false),
            (None, None) => break,
        };
        let (inner, end) = if is_tag {
            let body = &rest[start + OPEN_TAG.len()..];
            match body.find(CLOSE_TAG) {
                Some(close) => (
                    Some(&body[..close]),
                    start + OPEN_TAG.len() + close + CLOSE_TAG.len(),
                ),
                None => (Some(body), rest.len()),
            }
        } else {
            fenced_block(rest, start)
        };
        let found = inner.and_then(|inner| calls_in(inner, tools));
        match found {
            Some(found) => {
                remaining.push_str(&rest[..start]);
                calls.extend(found);
            }
            None => remaining.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
    remaining.push_str(rest);
    for (index, call) in calls.iter_mut().enumerate() {
        call.id = format!("call_text_{}", index + 1);
    }
    (remaining.trim().to_owned(), calls)
}

/// The body of the fenced block opening at `start` if its language fits a tool call, and
/// where the block ends (past its closing fence, or the end of the text if unclosed).
fn fenced_block(text: &str, start: usize) -> (Option<&str>, usize) {
    let after_open = start + FENCE.len();
    let Some(line_end) = text[after_open..].find('\n').map(|i| after_open + i) else {
        return (None, text.len());
    };
    let language = text[after_open..line_end].trim().to_ascii_lowercase();
    let body_start = line_end + 1;
    let (body, end) = match text[body_start..].find(FENCE) {
        Some(close) => (
            &text[body_start..body_start + close],
            body_start + close + FENCE.len(),
        ),
        // An unclosed fence is not a call; keep scanning after its opening line.
        None => return (None, body_start),
    };
    let fits = matches!(
        language.as_str(),
        "" | "json" | "tool_call" | "tool" | "jsonc"
    );
    (fits.then_some(body), end)
}

/// The calls in one block's text, if it is a call object (or array of them) naming only
/// offered tools.
fn calls_in(inner: &str, tools: &[ToolSpec]) -> Option<Vec<ToolCall>> {
    let mut inner = inner.trim();
    // Some models fence the JSON inside the tags too.
    if let Some(stripped) = inner.strip_prefix(FENCE) {
        let stripped = stripped.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        inner = stripped.strip_suffix(FENCE).unwrap_or(stripped).trim();
    }
    let value: Value = serde_json::from_str(inner).ok()?;
    let items = match value {
        Value::Array(items) if !items.is_empty() => items,
        object @ Value::Object(_) => vec![object],
        _ => return None,
    };
    items.iter().map(|item| call_from(item, tools)).collect()
}

fn call_from(item: &Value, tools: &[ToolSpec]) -> Option<ToolCall> {
    let name = item.get("name")?.as_str()?;
    if !tools.iter().any(|tool| tool.name == name) {
        return None;
    }
    let arguments = match item.get("arguments").or_else(|| item.get("parameters")) {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(_)) => text.clone(),
            _ => return None,
        },
        Some(_) => return None,
    };
    Some(ToolCall {
        id: String::new(),
        name: name.to_owned(),
        arguments,
    })
}

/// The system-prompt section that tells a model without native tool calling which tools
/// exist and how to call them (the Hermes format, which most open models were trained on).
pub(crate) fn tools_prompt(tools: &[ToolSpec]) -> String {
    let mut prompt = String::from(
        "# Tools\n\nYou may call one or more functions to help with the task. The available \
         functions, as JSON schemas:\n<tools>\n",
    );
    for tool in tools {
        let schema = json!({"type": "function", "function": {
            "name": tool.name, "description": tool.description, "parameters": tool.parameters,
        }});
        prompt.push_str(&schema.to_string());
        prompt.push('\n');
    }
    prompt.push_str(
        "</tools>\n\nTo call a function, answer with a JSON object inside <tool_call></tool_call> \
         tags, one block per call:\n<tool_call>\n{\"name\": \"<function name>\", \"arguments\": \
         {<arguments as JSON>}}\n</tool_call>",
    );
    prompt
}

/// An assistant message's tool calls written as `<tool_call>` text after its content.
pub(crate) fn assistant_text(message: &Message) -> String {
    let mut text = message.content.clone();
    for call in &message.tool_calls {
        let arguments = serde_json::from_str::<Value>(&call.arguments)
            .unwrap_or_else(|_| Value::String(call.arguments.clone()));
        let object = json!({"name": call.name, "arguments": arguments});
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{OPEN_TAG}\n{object}\n{CLOSE_TAG}"));
    }
    text
}

/// A tool result written as `<tool_response>` text for a user turn.
pub(crate) fn tool_result_text(message: &Message) -> String {
    debug_assert_eq!(message.role, Role::Tool);
    format!("<tool_response>\n{}\n</tool_response>", message.content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<ToolSpec> {
        ["shell", "read"]
            .into_iter()
            .map(|name| ToolSpec {
                name: name.into(),
                description: String::new(),
                parameters: json!({"type": "object"}),
            })
            .collect()
    }

    fn args(call: &ToolCall) -> Value {
        serde_json::from_str(&call.arguments).unwrap()
    }

    #[test]
    fn hermes_tags_are_parsed_and_removed() {
        let text = "Let me check.\n<tool_call>\n{\"name\": \"shell\", \"arguments\": {\"command\": \"ls\"}}\n</tool_call>\n<tool_call>{\"name\":\"read\",\"arguments\":\"{\\\"path\\\":\\\"a.rs\\\"}\"}</tool_call>";
        let (rest, calls) = parse_text_tool_calls(text, &tools());
        assert_eq!(rest, "Let me check.");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].id, "call_text_1");
        assert_eq!(calls[0].name, "shell");
        assert_eq!(args(&calls[0]), json!({"command": "ls"}));
        assert_eq!(calls[1].id, "call_text_2");
        assert_eq!(args(&calls[1]), json!({"path": "a.rs"}));
    }

    #[test]
    fn an_unclosed_tag_at_the_end_and_fences_inside_tags_are_accepted() {
        let text =
            "<tool_call>\n```json\n{\"name\": \"read\", \"parameters\": {\"path\": \"b\"}}\n```\n";
        let (rest, calls) = parse_text_tool_calls(text, &tools());
        assert_eq!(rest, "");
        assert_eq!(args(&calls[0]), json!({"path": "b"}));
    }

    #[test]
    fn fenced_json_blocks_are_parsed_and_ordinary_code_is_kept() {
        let text = "Here is the code:\n```rust\nfn main() {}\n```\nNow run it:\n```json\n{\"name\": \"shell\", \"arguments\": {\"command\": \"cargo run\"}}\n```\nDone.";
        let (rest, calls) = parse_text_tool_calls(text, &tools());
        assert_eq!(
            rest,
            "Here is the code:\n```rust\nfn main() {}\n```\nNow run it:\n\nDone."
        );
        assert_eq!(calls.len(), 1);
        assert_eq!(args(&calls[0]), json!({"command": "cargo run"}));
        let (_, calls) = parse_text_tool_calls(
            "```\n[{\"name\": \"read\", \"arguments\": {}}, {\"name\": \"shell\"}]\n```",
            &tools(),
        );
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].arguments, "{}");
    }

    #[test]
    fn unknown_tool_names_are_ignored() {
        for text in [
            "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>",
            "```json\n{\"name\": \"browse\", \"arguments\": {\"url\": \"x\"}}\n```",
            "```json\n[{\"name\": \"read\", \"arguments\": {}}, {\"name\": \"nope\"}]\n```",
            "```json\n{\"title\": \"config\", \"version\": 2}\n```",
        ] {
            let (rest, calls) = parse_text_tool_calls(text, &tools());
            assert!(calls.is_empty(), "{text}");
            assert_eq!(rest, text);
        }
    }

    #[test]
    fn malformed_json_is_ignored() {
        for text in [
            "<tool_call>{\"name\": \"shell\", \"arguments\": {\"command\": </tool_call>",
            "```json\n{\"name\": \"shell\", \"arguments\": {\n```",
            "<tool_call>{\"name\": \"shell\", \"arguments\": \"not json\"}</tool_call>",
            "<tool_call>{\"name\": \"shell\", \"arguments\": [1]}</tool_call>",
            "```json\n{\"name\": \"shell\"",
        ] {
            let (rest, calls) = parse_text_tool_calls(text, &tools());
            assert!(calls.is_empty(), "{text}");
            assert_eq!(rest, text.trim());
        }
        // A malformed block does not hide a good one after it.
        let text = "<tool_call>{oops}</tool_call> then <tool_call>{\"name\": \"read\", \"arguments\": {}}</tool_call>";
        let (rest, calls) = parse_text_tool_calls(text, &tools());
        assert_eq!(rest, "<tool_call>{oops}</tool_call> then");
        assert_eq!(calls.len(), 1);
    }

    #[test]
    fn plain_text_is_returned_unchanged() {
        let (rest, calls) = parse_text_tool_calls("  All done: tests pass.  ", &tools());
        assert_eq!(rest, "All done: tests pass.");
        assert!(calls.is_empty());
    }

    #[test]
    fn rendered_calls_parse_back() {
        let message = Message::assistant(
            "Checking.",
            vec![ToolCall {
                id: "c1".into(),
                name: "shell".into(),
                arguments: "{\"command\":\"ls\"}".into(),
            }],
        );
        let (rest, calls) = parse_text_tool_calls(&assistant_text(&message), &tools());
        assert_eq!(rest, "Checking.");
        assert_eq!(args(&calls[0]), json!({"command": "ls"}));
        assert!(tools_prompt(&tools()).contains("\"name\":\"shell\""));
    }
}
