//! GBNF grammars that force a tool call to parse and to match one offered tool's schema.
//!
//! The JSON-schema half is llama.cpp's own converter (`json_schema_to_grammar`, the one its
//! server uses for `response_format` and tool calls); we only frame it the way Qwen-style
//! templates expect calls: `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`.

use nightshift_protocol::ToolSpec;

/// What opens a tool call in the model's output (Hermes/Qwen convention).
pub(crate) const CALL_OPEN: &str = "<tool_call>";
/// What closes it.
pub(crate) const CALL_CLOSE: &str = "</tool_call>";

/// Where a grammar starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Just after the model wrote `<tool_call>` on its own: the grammar takes over from there.
    AfterOpen,
    /// At the first token of the answer: the answer must be tool calls.
    Answer,
}

/// One JSON schema that accepts exactly the calls of the offered tools:
/// `{"name": <one tool's name>, "arguments": <that tool's arguments>}`. Written by hand so
/// that `name` comes before `arguments`, the order the template shows the model.
pub(crate) fn calls_schema(tools: &[ToolSpec]) -> String {
    let alternatives: Vec<String> = tools
        .iter()
        .map(|tool| {
            let arguments = if tool.parameters.is_object() {
                tool.parameters.to_string()
            } else {
                r#"{"type": "object"}"#.to_owned()
            };
            format!(
                r#"{{"type": "object", "properties": {{"name": {{"const": {}}}, "arguments": {}}}, "required": ["name", "arguments"], "additionalProperties": false}}"#,
                serde_json::Value::from(tool.name.as_str()),
                arguments
            )
        })
        .collect();
    format!(r#"{{"oneOf": [{}]}}"#, alternatives.join(", "))
}

/// The full grammar: one or more framed calls, starting at `start`. `schema_grammar` is
/// llama.cpp's grammar for [`calls_schema`]; its `root` rule becomes `call`.
pub(crate) fn frame(schema_grammar: &str, start: Start) -> String {
    let body = rename_rule(schema_grammar, "root", "call");
    let head = match start {
        Start::AfterOpen => r#"root ::= "\n" call end"#,
        Start::Answer => r#"root ::= "<tool_call>\n" call end"#,
    };
    // Small models tend to stop right after the call's JSON instead of writing the closing
    // tag: let them (the call is complete by then), or close it and call again.
    format!(
        "{head}\nend ::= \"\\n\"? | \"\\n</tool_call>\" more\nmore ::= (\"\\n<tool_call>\\n\" call \"\\n</tool_call>\")*\n{body}"
    )
}

/// Renames rule `from` to `to` wherever it is defined or referenced, leaving string
/// literals and character classes alone.
pub(crate) fn rename_rule(grammar: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(grammar.len() + 16);
    let mut chars = grammar.chars().peekable();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    while let Some(c) = chars.next() {
        match c {
            '"' | '[' => {
                let close = if c == '"' { '"' } else { ']' };
                out.push(c);
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == '\\' {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    } else if inner == close {
                        break;
                    }
                }
            }
            '#' => {
                out.push(c);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            c if is_name(c) => {
                let mut name = String::from(c);
                while let Some(&next) = chars.peek() {
                    if !is_name(next) {
                        break;
                    }
                    name.push(next);
                    chars.next();
                }
                out.push_str(if name == from { to } else { &name });
            }
            c => out.push(c),
        }
    }
    out
}

/// Splits generated call text (what followed `<tool_call>`, possibly several calls) into
/// `(name, arguments)` pairs. Only complete calls are returned; a call cut off by the token
/// limit is left out.
pub(crate) fn parse_calls(text: &str) -> Vec<(String, serde_json::Value)> {
    let mut calls = Vec::new();
    let mut rest = text;
    while !rest.trim().is_empty() {
        // The last call may lack its closing tag (the grammar lets the model stop after it).
        let (body, next) = match rest.find(CALL_CLOSE) {
            Some(end) => (&rest[..end], &rest[end + CALL_CLOSE.len()..]),
            None => (rest, ""),
        };
        let body = body.trim();
        let body = body.strip_prefix(CALL_OPEN).unwrap_or(body).trim();
        if let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(body)
            && let Some(serde_json::Value::String(name)) = object.remove("name")
        {
            let arguments = object
                .remove("arguments")
                .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
            calls.push((name, arguments));
        }
        rest = next;
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_lists_every_tool_with_name_before_arguments() {
        let tools = vec![
            ToolSpec {
                name: "shell".into(),
                description: String::new(),
                parameters: json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
            },
            ToolSpec {
                name: "odd \"name\"".into(),
                description: String::new(),
                parameters: serde_json::Value::Null,
            },
        ];
        let schema: serde_json::Value = serde_json::from_str(&calls_schema(&tools)).unwrap();
        let alternatives = schema["oneOf"].as_array().unwrap();
        assert_eq!(alternatives.len(), 2);
        assert_eq!(alternatives[0]["properties"]["name"]["const"], "shell");
        assert_eq!(
            alternatives[0]["properties"]["arguments"]["required"],
            json!(["command"])
        );
        assert_eq!(
            alternatives[1]["properties"]["name"]["const"],
            "odd \"name\""
        );
        assert_eq!(
            alternatives[1]["properties"]["arguments"],
            json!({"type": "object"})
        );
        let text = calls_schema(&tools);
        assert!(text.find("\"name\"").unwrap() < text.find("\"arguments\"").unwrap());
    }

    #[test]
    fn llama_cpp_turns_our_tool_schemas_into_one_grammar() {
        let tools = nightshift_tools::tool_specs(std::time::Duration::from_secs(60));
        let converted = llama_cpp_2::json_schema_to_grammar(&calls_schema(&tools)).unwrap();
        let framed = frame(&converted, Start::AfterOpen);
        assert_eq!(framed.matches("root ::=").count(), 1, "{framed}");
        assert!(framed.contains("\ncall ::="), "{framed}");
        for tool in &tools {
            // Each name is a JSON string literal inside a GBNF string literal.
            let literal = format!("\\\"{}\\\"", tool.name);
            assert!(
                framed.contains(&literal),
                "{} missing from {framed}",
                tool.name
            );
        }
        // Required properties are required: edit_file's three, in schema order.
        assert!(framed.contains("new-string"), "{framed}");
    }

    #[test]
    fn rename_touches_rule_names_only() {
        let grammar = "root ::= \"root\" [root] root-kv root # root\nroot-kv ::= root\n";
        assert_eq!(
            rename_rule(grammar, "root", "call"),
            "call ::= \"root\" [root] root-kv call # root\nroot-kv ::= call\n"
        );
        let escaped = r#"root ::= "a\"root" root"#;
        assert_eq!(rename_rule(escaped, "root", "x"), r#"x ::= "a\"root" x"#);
    }

    #[test]
    fn frame_puts_the_call_between_the_template_markers() {
        let framed = frame("root ::= \"{}\"\n", Start::AfterOpen);
        assert!(framed.starts_with("root ::= \"\\n\" call end\n"));
        assert!(framed.contains("end ::= \"\\n\"? | \"\\n</tool_call>\" more"));
        assert!(framed.contains("call ::= \"{}\""));
        assert!(framed.contains("more ::= (\"\\n<tool_call>\\n\" call \"\\n</tool_call>\")*"));
        let forced = frame("root ::= \"{}\"\n", Start::Answer);
        assert!(forced.starts_with("root ::= \"<tool_call>\\n\" call"));
    }

    #[test]
    fn a_last_call_without_closing_tag_counts_when_complete() {
        let text = "\n{\"name\": \"finish\", \"arguments\": {\"summary\": \"ok\"}}\n";
        assert_eq!(
            parse_calls(text),
            vec![("finish".to_owned(), json!({"summary": "ok"}))]
        );
    }

    #[test]
    fn parse_calls_returns_complete_calls_only() {
        let text = "\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}\n</tool_call>\n\
                    <tool_call>\n{\"name\": \"finish\", \"arguments\": {\"summary\": \"ok\"}}\n</tool_call>\n\
                    <tool_call>\n{\"name\": \"shell\", \"argu";
        let calls = parse_calls(text);
        assert_eq!(
            calls,
            vec![
                ("read_file".to_owned(), json!({"path": "a"})),
                ("finish".to_owned(), json!({"summary": "ok"})),
            ]
        );
    }
}
