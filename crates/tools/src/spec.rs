//! The tools as the model sees them (name, description, JSON schema) and the typed arguments
//! each one takes. The schemas and the argument structs must agree; a test checks that every
//! schema property is accepted by its struct.

use std::time::Duration;

use nightshift_protocol::ToolSpec;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The names of every tool, in the order they are offered.
pub const TOOL_NAMES: [&str; 7] = [
    "shell",
    "read_file",
    "write_file",
    "edit_file",
    "list_files",
    "search",
    "finish",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShellArgs {
    pub(crate) command: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadArgs {
    pub(crate) path: String,
    #[serde(default)]
    pub(crate) start_line: Option<u64>,
    #[serde(default)]
    pub(crate) end_line: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteArgs {
    pub(crate) path: String,
    pub(crate) content: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditArgs {
    pub(crate) path: String,
    pub(crate) old_string: String,
    pub(crate) new_string: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArgs {
    #[serde(default)]
    pub(crate) path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchArgs {
    pub(crate) pattern: String,
    #[serde(default)]
    pub(crate) path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinishArgs {
    pub(crate) summary: String,
}

/// Every tool's spec; `shell_timeout` is quoted in the shell tool's description so the model
/// knows to keep commands short.
pub fn tool_specs(shell_timeout: Duration) -> Vec<ToolSpec> {
    TOOL_NAMES
        .iter()
        .map(|name| ToolSpec {
            name: (*name).to_owned(),
            description: description(name, shell_timeout),
            parameters: parameters(name),
        })
        .collect()
}

/// The small tool set offered to small local models: fewer and shorter tool descriptions
/// cost fewer prompt tokens and leave the model fewer wrong choices. `edit_tool` is
/// `write_file` (whole-file edits) or `edit_file` (search and replace); `read_file`, `shell`
/// and `finish` are always offered.
pub fn compact_tool_specs(shell_timeout: Duration, edit_tool: &str) -> Vec<ToolSpec> {
    [edit_tool, "read_file", "shell", "finish"]
        .into_iter()
        .map(|name| ToolSpec {
            name: name.to_owned(),
            description: compact_description(name, shell_timeout),
            parameters: parameters(name),
        })
        .collect()
}

fn compact_description(name: &str, shell_timeout: Duration) -> String {
    match name {
        "write_file" => "Write a file. content is the complete new file: every line of it, \
             not only the changed part."
            .to_owned(),
        "edit_file" => "Change a file: old_string is copied exactly from the file (whole \
             lines), new_string replaces it."
            .to_owned(),
        "read_file" => "Read a file.".to_owned(),
        "shell" => format!(
            "Run a shell command in the repository root (no network; stopped after {} s).",
            shell_timeout.as_secs()
        ),
        "finish" => {
            "Say that the task is done, with a one-sentence summary of the change.".to_owned()
        }
        other => description(other, shell_timeout),
    }
}

fn description(name: &str, shell_timeout: Duration) -> String {
    match name {
        "shell" => format!(
            "Run a shell command with `sh -c` in the repository root, inside a sandbox. Returns \
             the exit code and the combined stdout and stderr; long output is cut in the \
             middle. Commands are stopped after {} s. Use it to build, run tests and inspect; \
             use read_file, edit_file and write_file to read and change files.",
            shell_timeout.as_secs()
        ),
        "read_file" => "Read a text file, with line numbers. Without a range it returns the \
             first page (up to 400 lines); start_line and end_line (1-based, inclusive) select \
             other lines."
            .to_owned(),
        "write_file" => "Create a file, or replace a file's whole content. Parent directories \
             are created. Prefer edit_file to change part of an existing file."
            .to_owned(),
        "edit_file" => "Replace one exact occurrence of old_string with new_string in a file. \
             old_string must match the file exactly (whitespace and indentation included) and \
             occur exactly once: include enough surrounding lines to make it unique. Use an \
             empty new_string to delete."
            .to_owned(),
        "list_files" => "List files and directories under a directory (default: the repository \
             root), recursively, skipping what .gitignore ignores. Directories end with `/`."
            .to_owned(),
        "search" => "Search file contents for a regular expression (Rust regex syntax; prefix \
             with (?i) to ignore case), skipping what .gitignore ignores. Returns \
             `path:line: text` for each matching line."
            .to_owned(),
        "finish" => "Say that the task is done. Nightshift then runs the completion checks; \
             if they fail, you get their output and continue. The summary says what you \
             changed and why."
            .to_owned(),
        _ => String::new(),
    }
}

/// The JSON schema of a tool's arguments; `Value::Null` for an unknown name.
pub(crate) fn parameters(name: &str) -> Value {
    let path = |what: &str| json!({"type": "string", "description": what});
    let (properties, required) = match name {
        "shell" => (
            json!({"command": {"type": "string", "description": "The command line, run with sh -c."}}),
            json!(["command"]),
        ),
        "read_file" => (
            json!({
                "path": path("File path relative to the repository root."),
                "start_line": {"type": "integer", "minimum": 1, "description": "First line to read (1-based)."},
                "end_line": {"type": "integer", "minimum": 1, "description": "Last line to read (inclusive)."},
            }),
            json!(["path"]),
        ),
        "write_file" => (
            json!({
                "path": path("File path relative to the repository root."),
                "content": {"type": "string", "description": "The complete new content of the file."},
            }),
            json!(["path", "content"]),
        ),
        "edit_file" => (
            json!({
                "path": path("File path relative to the repository root."),
                "old_string": {"type": "string", "description": "The exact text to replace; must occur exactly once."},
                "new_string": {"type": "string", "description": "The text to put in its place."},
            }),
            json!(["path", "old_string", "new_string"]),
        ),
        "list_files" => (
            json!({"path": path("Directory relative to the repository root; default: the root.")}),
            json!([]),
        ),
        "search" => (
            json!({
                "pattern": {"type": "string", "description": "A regular expression, matched line by line."},
                "path": path("File or directory to search, relative to the repository root; default: the root."),
            }),
            json!(["pattern"]),
        ),
        "finish" => (
            json!({"summary": {"type": "string", "description": "What you changed and why, for the reviewer."}}),
            json!(["summary"]),
        ),
        _ => return Value::Null,
    };
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// Parses a tool's raw argument text, or explains (as text for the model) what is wrong and
/// what was expected.
pub(crate) fn parse_args<T: DeserializeOwned>(tool: &str, arguments: &str) -> Result<T, String> {
    let expected = || {
        format!(
            "expected arguments matching this schema: {}",
            parameters(tool)
        )
    };
    // Some models send nothing at all for a call whose arguments are all optional.
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "the arguments for `{tool}` are not valid JSON ({e}); {}",
            expected()
        )
    })?;
    if !value.is_object() {
        return Err(format!(
            "the arguments for `{tool}` must be a JSON object, not {}; {}",
            kind_of(&value),
            expected()
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| format!("invalid arguments for `{tool}`: {e}; {}", expected()))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts_all_properties<T: DeserializeOwned>(name: &str) {
        let schema = parameters(name);
        let mut args = serde_json::Map::new();
        for (key, prop) in schema["properties"].as_object().unwrap() {
            let sample = match prop["type"].as_str().unwrap() {
                "integer" => json!(1),
                _ => json!("x"),
            };
            args.insert(key.clone(), sample);
        }
        let text = Value::Object(args).to_string();
        if let Err(e) = parse_args::<T>(name, &text) {
            panic!("{name}: schema and argument struct disagree: {e}");
        }
    }

    #[test]
    fn every_schema_matches_its_argument_struct() {
        accepts_all_properties::<ShellArgs>("shell");
        accepts_all_properties::<ReadArgs>("read_file");
        accepts_all_properties::<WriteArgs>("write_file");
        accepts_all_properties::<EditArgs>("edit_file");
        accepts_all_properties::<ListArgs>("list_files");
        accepts_all_properties::<SearchArgs>("search");
        accepts_all_properties::<FinishArgs>("finish");
        for name in TOOL_NAMES {
            let schema = parameters(name);
            assert_eq!(schema["type"], "object", "{name}");
            assert_eq!(schema["additionalProperties"], false, "{name}");
            assert!(schema["required"].is_array(), "{name}");
        }
    }
}
