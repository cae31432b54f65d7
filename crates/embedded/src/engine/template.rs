//! The model's own chat template (Jinja, from the GGUF metadata `tokenizer.chat_template`),
//! rendered the way Hugging Face's `apply_chat_template` renders it, with tools.
//!
//! Hugging Face templates expect OpenAI-shaped messages (`tool_calls[].function.arguments` as
//! an object) and tools (`{"type": "function", "function": {...}}`), and a `tojson` filter that
//! writes Python's `json.dumps` layout (`", "` and `": "`). We give them exactly that, so the
//! prompt the model sees is the one it was trained on, and so an assistant turn the model
//! wrote renders back to the same text (and tokens) it generated: that is what lets the
//! KV cache be reused across turns.

use minijinja::value::ValueKind;
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use nightshift_protocol::{Message, Role, ToolCall, ToolSpec};
use serde::Serialize;

/// A compiled chat template.
pub(crate) struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<TemplateToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct TemplateToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: TemplateFunctionCall<'a>,
}

#[derive(Serialize)]
struct TemplateFunctionCall<'a> {
    name: &'a str,
    /// An object when the model's argument text parses (what templates expect), the raw
    /// text otherwise.
    arguments: serde_json::Value,
}

#[derive(Serialize)]
struct TemplateTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: TemplateFunction<'a>,
}

#[derive(Serialize)]
struct TemplateFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

impl ChatTemplate {
    /// Compiles `source`. `bos_token`/`eos_token` are what templates may print as
    /// `{{ bos_token }}` / `{{ eos_token }}`.
    pub(crate) fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, String> {
        // Hugging Face's settings: a block tag eats the newline after it and the spaces
        // before it, and the template's final newline is dropped.
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source.to_owned())
            .map_err(|e| describe(&e))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// The prompt for `messages` and `tools`, ending with the opening of the assistant's turn.
    pub(crate) fn render(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
    ) -> Result<String, String> {
        let messages: Vec<TemplateMessage<'_>> = messages.iter().map(template_message).collect();
        let tools: Vec<TemplateTool<'_>> = tools
            .iter()
            .map(|tool| TemplateTool {
                kind: "function",
                function: TemplateFunction {
                    name: &tool.name,
                    description: &tool.description,
                    parameters: &tool.parameters,
                },
            })
            .collect();
        let template = self.env.get_template("chat").map_err(|e| describe(&e))?;
        let ctx = minijinja::context! {
            messages => Value::from_serialize(&messages),
            // Templates test `if tools`: none offered must be falsy, not an empty list.
            tools => if tools.is_empty() { Value::from(()) } else { Value::from_serialize(&tools) },
            add_generation_prompt => true,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        };
        template.render(ctx).map_err(|e| describe(&e))
    }
}

fn template_message(message: &Message) -> TemplateMessage<'_> {
    TemplateMessage {
        role: match message.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        },
        content: &message.content,
        tool_calls: message.tool_calls.iter().map(template_tool_call).collect(),
        tool_call_id: message.tool_call_id.as_deref(),
    }
}

fn template_tool_call(call: &ToolCall) -> TemplateToolCall<'_> {
    let arguments = if call.arguments.trim().is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str(&call.arguments)
            .unwrap_or_else(|_| serde_json::Value::String(call.arguments.clone()))
    };
    TemplateToolCall {
        id: &call.id,
        kind: "function",
        function: TemplateFunctionCall {
            name: &call.name,
            arguments,
        },
    }
}

fn describe(error: &JinjaError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn raise_exception(message: String) -> Result<Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

/// Hugging Face's `tojson`: Python's `json.dumps(x, ensure_ascii=False)`, keys in the order
/// they were given.
fn tojson(value: &Value) -> Result<Value, JinjaError> {
    let mut out = String::new();
    write_python_json(value, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn write_python_json(value: &Value, out: &mut String) -> Result<(), JinjaError> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Some(int) = value.as_i64() {
                out.push_str(&int.to_string());
            } else {
                let float = f64::try_from(value.clone())?;
                out.push_str(&python_float(float));
            }
        }
        ValueKind::String => write_json_string(value.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, item) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(&item, out)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in value.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match key.as_str() {
                    Some(text) => write_json_string(text, out),
                    None => write_json_string(&key.to_string(), out),
                }
                out.push_str(": ");
                write_python_json(&value.get_item(&key)?, out)?;
            }
            out.push('}');
        }
        _ => write_json_string(&value.to_string(), out),
    }
    Ok(())
}

/// Python prints `1.0` for a whole float, and so does serde_json; `repr` otherwise.
fn python_float(float: f64) -> String {
    if float.is_finite() {
        serde_json::Value::from(float).to_string()
    } else if float.is_nan() {
        "NaN".to_owned()
    } else if float > 0.0 {
        "Infinity".to_owned()
    } else {
        "-Infinity".to_owned()
    }
}

fn write_json_string(text: &str, out: &mut String) {
    // serde_json escapes exactly what json.dumps(ensure_ascii=False) escapes.
    out.push_str(&serde_json::Value::from(text).to_string());
}

/// A JSON value laid out as Python's `json.dumps` writes it, the layout chat templates use
/// for tool-call arguments.
pub(crate) fn python_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    // A serde_json value always converts; the fallback keeps the compact form.
    match write_python_json(&Value::from_serialize(value), &mut out) {
        Ok(()) => out,
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A ChatML template with tools in the system message, in the style of Qwen2.5's (our
    /// own text, exercising the same features: `tojson`, `tool_calls[].function`, tool
    /// results grouped into one user turn, `loop.index0` look-behind, block tags on lines of
    /// their own and a final newline that must not reach the prompt).
    const CHATML_TOOLS: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}{{- messages[0].content }}{% else %}{{- 'Default.' }}{% endif %}
    {{- '\n<tools>' }}
    {%- for tool in tools %}
        {{- '\n' }}{{- tool | tojson }}
    {%- endfor %}
    {{- '\n</tools><|im_end|>\n' }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant' }}
        {%- if message.content %}{{- '\n' + message.content }}{% endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}{% set tool_call = tool_call.function %}{% endif %}
            {{- '\n<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.index0 == 0 or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{% endif %}
        {{- '\n<tool_response>\n' + message.content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\n' }}{% endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a file.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            }),
        }]
    }

    #[test]
    fn renders_tools_and_calls_in_the_layout_hugging_face_uses() {
        let template = ChatTemplate::new(CHATML_TOOLS, "", "<|im_end|>").unwrap();
        let call = ToolCall {
            id: "call_1".into(),
            name: "read_file".into(),
            arguments: r#"{"path":"src/ü.rs"}"#.into(),
        };
        let messages = vec![
            Message::system("Be brief."),
            Message::user("Read it."),
            Message::assistant("", vec![call]),
            Message::tool("call_1", "fn main() {}"),
            Message::tool("call_2", "second"),
        ];
        let prompt = template.render(&messages, &tools()).unwrap();
        let expected = "<|im_start|>system\nBe brief.\n<tools>\n\
            {\"type\": \"function\", \"function\": {\"name\": \"read_file\", \"description\": \"Read a file.\", \
            \"parameters\": {\"properties\": {\"path\": {\"type\": \"string\"}}, \"required\": [\"path\"], \"type\": \"object\"}}}\n\
            </tools><|im_end|>\n\
            <|im_start|>user\nRead it.<|im_end|>\n\
            <|im_start|>assistant\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"src/ü.rs\"}}\n</tool_call><|im_end|>\n\
            <|im_start|>user\n<tool_response>\nfn main() {}\n</tool_response>\n<tool_response>\nsecond\n</tool_response><|im_end|>\n\
            <|im_start|>assistant\n";
        assert_eq!(prompt, expected);
    }

    #[test]
    fn without_tools_the_template_sees_a_falsy_tools_value() {
        let template = ChatTemplate::new(CHATML_TOOLS, "", "").unwrap();
        let prompt = template
            .render(&[Message::system("S"), Message::user("hi")], &[])
            .unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn unparsable_arguments_are_rendered_as_a_string_not_dropped() {
        let template = ChatTemplate::new(CHATML_TOOLS, "", "").unwrap();
        let call = ToolCall {
            id: "c".into(),
            name: "read_file".into(),
            arguments: "{broken".into(),
        };
        let prompt = template
            .render(
                &[Message::user("x"), Message::assistant("", vec![call])],
                &tools(),
            )
            .unwrap();
        assert!(prompt.contains(r#""arguments": "{broken"}"#), "{prompt}");
    }

    #[test]
    fn template_errors_are_reported_with_their_cause() {
        let error = ChatTemplate::new("{% for x in %}", "", "").unwrap_err();
        assert!(error.contains("syntax error"), "{error}");
        let raising = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        let error = raising.render(&[Message::user("x")], &[]).unwrap_err();
        assert!(error.contains("no system role"), "{error}");
    }

    #[test]
    fn python_json_matches_json_dumps() {
        let value = json!({"b": [1, 2.5, true, null], "a": "q\"\n", "c": {}});
        // serde_json sorts keys; json.dumps would keep insertion order, which sorted input has.
        assert_eq!(
            python_json(&value),
            r#"{"a": "q\"\n", "b": [1, 2.5, true, null], "c": {}}"#
        );
    }
}
