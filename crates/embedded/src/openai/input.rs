//! Reading request fields both APIs share (tools, `tool_choice`, text content, numbers),
//! with a 400 that names the field and says what to send when one is wrong.
//!
//! Fields are read from the JSON by hand rather than through serde structs: unknown fields
//! must pass (clients send `user`, `store`, `top_p`, ...), and each error names its `param`.

use nightshift_protocol::ToolSpec;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::ToolCallMode;

pub(crate) type Object = Map<String, Value>;

/// The request body as a JSON object.
pub(crate) fn body_object(bytes: &[u8]) -> Result<Object, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::invalid_body(
            "the request body must be a JSON object",
        )),
        Err(error) => Err(ApiError::invalid_body(format!(
            "the request body is not valid JSON ({error}); send a JSON object"
        ))),
    }
}

/// A field that is present and not `null`.
pub(crate) fn field<'a>(object: &'a Object, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

/// An optional list field, each item parsed with its own parameter path (`{param}[i]`);
/// `shape` says what the list should hold, for the error when it is not a list.
pub(crate) fn list<T>(
    object: &Object,
    key: &str,
    param: &str,
    shape: &str,
    parse: impl Fn(&Value, &str) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    match field(object, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse(item, &format!("{param}[{i}]")))
            .collect(),
        Some(_) => Err(ApiError::invalid(
            param,
            format!("`{key}` must be a list of {shape}"),
        )),
    }
}

/// A string field; `what` says what it should be.
pub(crate) fn string<'a>(
    object: &'a Object,
    key: &str,
    param: &str,
    what: &str,
) -> Result<&'a str, ApiError> {
    match field(object, key) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(ApiError::invalid(
            param,
            format!("`{param}` must be {what}"),
        )),
        None => Err(ApiError::invalid(
            param,
            format!("`{param}` is missing: it must be {what}"),
        )),
    }
}

/// A JSON object (an array element, a nested field).
pub(crate) fn object<'a>(value: &'a Value, param: &str) -> Result<&'a Object, ApiError> {
    value
        .as_object()
        .ok_or_else(|| ApiError::invalid(param, format!("`{param}` must be a JSON object")))
}

/// Text content: a string, or an array of parts (`{"type": <one of part_types>, "text"}`,
/// or plain strings), joined by newlines. `null` is empty.
pub(crate) fn text(
    value: Option<&Value>,
    param: &str,
    part_types: &[&str],
) -> Result<String, ApiError> {
    let parts = match value {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(text)) => return Ok(text.clone()),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(ApiError::invalid(
                param,
                format!("`{param}` must be a string or an array of text parts"),
            ));
        }
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let param = format!("{param}[{i}]");
        if let Value::String(text) = part {
            texts.push(text.as_str());
            continue;
        }
        let part = object(part, &param)?;
        let kind = string(
            part,
            "type",
            &format!("{param}.type"),
            "a content part type",
        )?;
        if !part_types.contains(&kind) {
            return Err(ApiError::invalid(
                format!("{param}.type"),
                format!(
                    "content parts of type `{kind}` are not supported: this model reads text \
                     only; send parts of type {}",
                    quoted(part_types)
                ),
            ));
        }
        texts.push(string(part, "text", &format!("{param}.text"), "a string")?);
    }
    Ok(texts.join("\n"))
}

/// [`text`] that must be present: a missing (or `null`) field is refused, `needs` saying
/// what it should hold.
pub(crate) fn required_text(
    object: &Object,
    key: &str,
    param: &str,
    part_types: &[&str],
    needs: &str,
) -> Result<String, ApiError> {
    if field(object, key).is_none() {
        return Err(ApiError::invalid(
            param,
            format!("`{param}` is missing: {needs}"),
        ));
    }
    text(object.get(key), param, part_types)
}

/// A function tool: `name`, optional `description` and `parameters` (a JSON schema).
pub(crate) fn function_spec(function: &Object, param: &str) -> Result<ToolSpec, ApiError> {
    let name_param = format!("{param}.name");
    let name = string(function, "name", &name_param, "the function's name")?;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(ApiError::invalid(
            name_param,
            format!(
                "the function name `{name}` is not valid: use 1 to 64 letters, digits, `_` or `-`"
            ),
        ));
    }
    let description = match field(function, "description") {
        None => "",
        Some(Value::String(text)) => text,
        Some(_) => {
            return Err(ApiError::invalid(
                format!("{param}.description"),
                "a function's `description` must be a string",
            ));
        }
    };
    let parameters = match field(function, "parameters") {
        None => json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(_)) => schema.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                format!("{param}.parameters"),
                "a function's `parameters` must be a JSON schema object",
            ));
        }
    };
    Ok(ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    })
}

/// Rejects tools that share a name: a call could not say which one it meant.
pub(crate) fn check_unique(tools: &[ToolSpec]) -> Result<(), ApiError> {
    for (i, tool) in tools.iter().enumerate() {
        if tools[..i].iter().any(|t| t.name == tool.name) {
            return Err(ApiError::invalid(
                format!("tools[{i}]"),
                format!(
                    "two tools are named `{}`; give each tool its own name",
                    tool.name
                ),
            ));
        }
    }
    Ok(())
}

/// What `tool_choice` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    Auto,
    None,
    Required,
    /// This one function must be called.
    Function(String),
}

/// `tool_choice`: `"auto"` (the default), `"none"`, `"required"`, or one named function as
/// either API writes it (`{"type": "function", "function": {"name"}}` in Chat Completions,
/// `{"type": "function", "name"}` in Responses).
pub(crate) fn tool_choice(body: &Object) -> Result<ToolChoice, ApiError> {
    let wrong = || {
        ApiError::invalid(
            "tool_choice",
            "`tool_choice` must be \"auto\", \"none\", \"required\" or \
             {\"type\": \"function\", \"function\": {\"name\": ...}}",
        )
    };
    match field(body, "tool_choice") {
        None => Ok(ToolChoice::Auto),
        Some(Value::String(choice)) => match choice.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            _ => Err(wrong()),
        },
        Some(Value::Object(choice)) if choice.get("type") == Some(&json!("function")) => {
            let name = choice
                .get("function")
                .and_then(|function| function.get("name"))
                .or_else(|| choice.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(wrong)?;
            Ok(ToolChoice::Function(name.to_owned()))
        }
        Some(_) => Err(wrong()),
    }
}

/// The tools to offer and how calls are decided, for `choice`.
pub(crate) fn apply_tool_choice(
    choice: ToolChoice,
    tools: Vec<ToolSpec>,
) -> Result<(Vec<ToolSpec>, Option<ToolCallMode>), ApiError> {
    match choice {
        ToolChoice::None => Ok((Vec::new(), None)),
        ToolChoice::Auto => Ok((tools, Some(ToolCallMode::Lazy))),
        ToolChoice::Required if tools.is_empty() => Err(ApiError::invalid(
            "tool_choice",
            "`tool_choice` is \"required\" but no tools are given; add `tools` or use \"auto\"",
        )),
        ToolChoice::Required => Ok((tools, Some(ToolCallMode::Required))),
        ToolChoice::Function(name) => match tools.into_iter().find(|tool| tool.name == name) {
            Some(tool) => Ok((vec![tool], Some(ToolCallMode::Required))),
            None => Err(ApiError::invalid(
                "tool_choice",
                format!("`tool_choice` names the function `{name}`, which is not in `tools`"),
            )),
        },
    }
}

/// A token limit: a positive integer, or absent. The first of `keys` present wins.
pub(crate) fn max_tokens(body: &Object, keys: &[&str]) -> Result<Option<u32>, ApiError> {
    let Some((key, value)) = keys
        .iter()
        .find_map(|key| field(body, key).map(|value| (*key, value)))
    else {
        return Ok(None);
    };
    match value.as_u64() {
        Some(n) if n >= 1 => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        _ => Err(ApiError::invalid(
            key,
            format!("`{key}` must be a whole number of tokens, at least 1"),
        )),
    }
}

/// `temperature`: 0 to 2, 0 being greedy.
pub(crate) fn temperature(body: &Object) -> Result<Option<f32>, ApiError> {
    match field(body, "temperature") {
        None => Ok(None),
        Some(value) => match value.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => Ok(Some(t as f32)),
            _ => Err(ApiError::invalid(
                "temperature",
                "`temperature` must be a number from 0 to 2 (0 is greedy)",
            )),
        },
    }
}

/// `seed`: any integer; the sampler takes its low 32 bits.
pub(crate) fn seed(body: &Object) -> Result<Option<u32>, ApiError> {
    match field(body, "seed") {
        None => Ok(None),
        Some(value) => match (value.as_u64(), value.as_i64()) {
            (Some(n), _) => Ok(Some(n as u32)),
            (None, Some(n)) => Ok(Some(n as u32)),
            _ => Err(ApiError::invalid("seed", "`seed` must be an integer")),
        },
    }
}

/// A boolean flag such as `stream`; absent is false.
pub(crate) fn flag(body: &Object, key: &str, param: &str) -> Result<bool, ApiError> {
    match field(body, key) {
        None => Ok(false),
        Some(Value::Bool(on)) => Ok(*on),
        Some(_) => Err(ApiError::invalid(
            param,
            format!("`{param}` must be true or false"),
        )),
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}
