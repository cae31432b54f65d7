//! Scripted text and tool-call replies rendered on the OpenAI Responses and Anthropic
//! Messages wire formats, streamed (SSE with `event:` lines, as those APIs send) or whole.

use std::time::Duration;

use serde_json::{Value, json};

use crate::reply::{Call, EVENT_GAP, Rendered, RequestInfo, output_tokens, pieces};

/// One SSE event with its type on an `event:` line, as the Responses and Messages APIs send.
fn typed_event(value: &Value) -> (Duration, Vec<u8>) {
    let kind = value["type"].as_str().unwrap_or("message");
    (
        EVENT_GAP,
        format!("event: {kind}\ndata: {value}\n\n").into_bytes(),
    )
}

fn whole(body: &Value) -> Rendered {
    Rendered {
        status: 200,
        content_type: "application/json",
        retry_after: None,
        chunks: vec![(Duration::ZERO, body.to_string().into_bytes())],
    }
}

fn stream(events: &[Value]) -> Rendered {
    Rendered {
        status: 200,
        content_type: "text/event-stream",
        retry_after: None,
        chunks: events.iter().map(typed_event).collect(),
    }
}

/// A Responses API answer: a message item with the text, then one `function_call` item per
/// call (`call_id` `call_N`, item id `fc_N`), usage with `cached_tokens: 0`.
pub(crate) fn responses(content: &str, calls: &[Call], request: &RequestInfo) -> Rendered {
    let output_tokens = output_tokens(content, calls);
    let message_item = |text: &str, status: &str| {
        json!({
            "id": "msg_scripted", "type": "message", "role": "assistant", "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        })
    };
    let call_item = |(call_id, name, arguments): &Call, status: &str| {
        json!({
            "id": format!("fc_{}", call_id.trim_start_matches("call_")),
            "type": "function_call", "status": status,
            "call_id": call_id, "name": name, "arguments": arguments,
        })
    };
    let mut output = Vec::new();
    if !content.is_empty() {
        output.push(message_item(content, "completed"));
    }
    output.extend(calls.iter().map(|call| call_item(call, "completed")));
    let response = |status: &str, output: Vec<Value>, usage: Value| {
        json!({
            "id": "resp_scripted", "object": "response", "created_at": 0,
            "status": status, "model": request.model, "output": output, "usage": usage,
            "incomplete_details": null, "error": null,
        })
    };
    let usage = json!({
        "input_tokens": request.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": request.prompt_tokens + output_tokens,
    });
    if !request.stream {
        return whole(&response("completed", output, usage));
    }
    let mut events = vec![json!({
        "type": "response.created",
        "response": response("in_progress", Vec::new(), Value::Null),
    })];
    let mut index = 0;
    if !content.is_empty() {
        let item = message_item("", "in_progress");
        events.push(
            json!({"type": "response.output_item.added", "output_index": index, "item": item}),
        );
        for piece in pieces(content, 3) {
            events.push(json!({
                "type": "response.output_text.delta", "item_id": "msg_scripted",
                "output_index": index, "content_index": 0, "delta": piece,
            }));
        }
        events.push(json!({
            "type": "response.output_text.done", "item_id": "msg_scripted",
            "output_index": index, "content_index": 0, "text": content,
        }));
        events.push(
            json!({"type": "response.output_item.done", "output_index": index, "item": output[0]}),
        );
        index += 1;
    }
    for call in calls {
        let mut added = call_item(call, "in_progress");
        added["arguments"] = json!("");
        let item_id = added["id"].clone();
        events.push(
            json!({"type": "response.output_item.added", "output_index": index, "item": added}),
        );
        for piece in pieces(&call.2, 3) {
            events.push(json!({
                "type": "response.function_call_arguments.delta",
                "item_id": item_id, "output_index": index, "delta": piece,
            }));
        }
        events.push(json!({
            "type": "response.function_call_arguments.done",
            "item_id": item_id, "output_index": index, "arguments": call.2,
        }));
        events.push(json!({
            "type": "response.output_item.done", "output_index": index,
            "item": call_item(call, "completed"),
        }));
        index += 1;
    }
    events.push(json!({
        "type": "response.completed",
        "response": response("completed", output, usage),
    }));
    stream(&events)
}

/// An Anthropic Messages answer: a text block, then one `tool_use` block per call (id
/// `call_N`), `stop_reason` `tool_use` or `end_turn`, no cache use reported.
pub(crate) fn anthropic(content: &str, calls: &[Call], request: &RequestInfo) -> Rendered {
    let output_tokens = output_tokens(content, calls);
    let stop_reason = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    let input = |arguments: &str| {
        serde_json::from_str::<Value>(arguments)
            .unwrap_or_else(|_| Value::String(arguments.to_owned()))
    };
    let usage = json!({
        "input_tokens": request.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    });
    let message = |content: Vec<Value>, stop_reason: Value, usage: Value| {
        json!({
            "id": "msg_scripted", "type": "message", "role": "assistant",
            "model": request.model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": null, "usage": usage,
        })
    };
    if !request.stream {
        let mut blocks = Vec::new();
        if !content.is_empty() {
            blocks.push(json!({"type": "text", "text": content}));
        }
        for (id, name, arguments) in calls {
            blocks.push(
                json!({"type": "tool_use", "id": id, "name": name, "input": input(arguments)}),
            );
        }
        return whole(&message(blocks, json!(stop_reason), usage));
    }
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let mut events = vec![
        json!({"type": "message_start", "message": message(Vec::new(), Value::Null, start_usage)}),
        json!({"type": "ping"}),
    ];
    let mut index = 0;
    if !content.is_empty() {
        events.push(json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "text", "text": ""}}));
        for piece in pieces(content, 3) {
            events.push(json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": piece}}));
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    for (id, name, arguments) in calls {
        events.push(json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}));
        for piece in pieces(arguments, 3) {
            events.push(json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece}}));
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": output_tokens}}));
    events.push(json!({"type": "message_stop"}));
    stream(&events)
}
