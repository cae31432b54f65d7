//! Tool calls written as text by models without native tool calling, through the Chat
//! Completions client.

use nightshift_model::{ChatCompletionsClient, ModelClient, ModelRequest, ProviderConfig};
use nightshift_protocol::{Message, ToolCall};
use nightshift_testkit::{ScriptedServer, text};
use serde_json::{Value, json};

use super::{complete, config_for, tool_spec};

fn request() -> ModelRequest {
    ModelRequest {
        messages: vec![
            Message::system("You are a coding agent."),
            Message::user("Read a.rs."),
        ],
        tools: vec![tool_spec("read")],
    }
}

#[tokio::test]
async fn hermes_and_fenced_calls_in_the_text_become_tool_calls() {
    let server = ScriptedServer::start(vec![
        text(
            "I will read it.\n<tool_call>\n{\"name\": \"read\", \"arguments\": {\"path\": \"a.rs\"}}\n</tool_call>",
        ),
        text("```json\n{\"name\": \"read\", \"arguments\": {\"path\": \"b.rs\"}}\n```"),
    ]);
    let client = ChatCompletionsClient::new(config_for(&server)).unwrap();
    let first = client.complete(&request(), &|_| {}).await.unwrap();
    assert_eq!(first.message.content, "I will read it.");
    assert_eq!(first.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(first.message.tool_calls.len(), 1);
    let call = &first.message.tool_calls[0];
    assert_eq!(
        (call.id.as_str(), call.name.as_str()),
        ("call_text_1", "read")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&call.arguments).unwrap(),
        json!({"path": "a.rs"})
    );
    let second = client.complete(&request(), &|_| {}).await.unwrap();
    assert_eq!(second.message.content, "");
    // Ids stay unique across the conversation.
    assert_eq!(second.message.tool_calls[0].id, "call_text_2");
    // By default the tools still go natively.
    assert!(server.requests()[0]["tools"].is_array());
}

#[tokio::test]
async fn text_naming_no_offered_tool_stays_text() {
    let answer = "<tool_call>{\"name\": \"browse\", \"arguments\": {}}</tool_call>";
    let server = ScriptedServer::start(vec![text(answer), text(answer)]);
    let (result, _) = complete(config_for(&server), &request()).await;
    let response = result.unwrap();
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.message.content, answer);
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    // Without offered tools nothing is parsed at all.
    let no_tools = ModelRequest {
        tools: Vec::new(),
        ..request()
    };
    let (result, _) = complete(config_for(&server), &no_tools).await;
    assert!(result.unwrap().message.tool_calls.is_empty());
}

#[tokio::test]
async fn with_text_tool_calls_on_tools_go_in_the_prompt_and_history_as_text() {
    let server = ScriptedServer::start(vec![text(
        "<tool_call>{\"name\": \"read\", \"arguments\": {\"path\": \"c.rs\"}}</tool_call>",
    )]);
    let config = ProviderConfig {
        text_tool_calls: true,
        ..config_for(&server)
    };
    let mut request = request();
    request.messages.push(Message::assistant(
        "",
        vec![
            ToolCall {
                id: "t1".into(),
                name: "read".into(),
                arguments: "{\"path\":\"a.rs\"}".into(),
            },
            ToolCall {
                id: "t2".into(),
                name: "read".into(),
                arguments: "{\"path\":\"b.rs\"}".into(),
            },
        ],
    ));
    request.messages.push(Message::tool("t1", "fn a() {}"));
    request.messages.push(Message::tool("t2", "fn b() {}"));
    let (result, _) = complete(config, &request).await;
    let response = result.unwrap();
    assert_eq!(response.message.tool_calls[0].name, "read");

    let body = &server.requests()[0];
    assert!(body.get("tools").is_none(), "{body}");
    let messages = body["messages"].as_array().unwrap();
    let system = messages[0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("You are a coding agent.\n\n# Tools"),
        "{system}"
    );
    assert!(
        system.contains("\"name\":\"read\"") && system.contains("<tool_call>"),
        "{system}"
    );
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(
        messages[2]["content"],
        "<tool_call>\n{\"arguments\":{\"path\":\"a.rs\"},\"name\":\"read\"}\n</tool_call>\n<tool_call>\n{\"arguments\":{\"path\":\"b.rs\"},\"name\":\"read\"}\n</tool_call>"
    );
    assert_eq!(
        messages[3],
        json!({"role": "user", "content": "<tool_response>\nfn a() {}\n</tool_response>\n<tool_response>\nfn b() {}\n</tool_response>"})
    );
    assert_eq!(messages.len(), 4);
}
