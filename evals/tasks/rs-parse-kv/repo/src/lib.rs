//! A tiny `key = value` configuration format.

/// Parses one line of a config file.
///
/// - Surrounding whitespace is ignored.
/// - A blank line, or a line whose first non-blank character is `#`, is not a setting: `None`.
/// - Otherwise the line is split at its first `=`: the key is the text before it and the value
///   the text after it, both with surrounding whitespace removed. The value may be empty and
///   may itself contain `=`.
/// - A line without `=`, or with an empty key, is not a setting: `None`.
pub fn parse_line(line: &str) -> Option<(String, String)> {
    todo!("parse_line({line:?})")
}

/// Every setting in `text`, in order; lines that are not settings are skipped.
pub fn parse_config(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(parse_line).collect()
}
