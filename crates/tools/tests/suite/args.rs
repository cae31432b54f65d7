//! Tool names, argument parsing and `finish`: every mistake comes back as text the model can
//! act on.

use nightshift_tools::TOOL_NAMES;
use serde_json::json;

use super::Work;

#[tokio::test]
async fn specs_offer_every_tool_with_a_strict_object_schema() {
    let w = Work::new();
    let specs = w.tools.specs();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "shell",
            "read_file",
            "write_file",
            "edit_file",
            "list_files",
            "search",
            "finish"
        ]
    );
    assert_eq!(names, TOOL_NAMES);
    for spec in &specs {
        assert!(!spec.description.is_empty(), "{}", spec.name);
        let p = &spec.parameters;
        assert_eq!(p["type"], "object", "{}", spec.name);
        assert_eq!(p["additionalProperties"], false, "{}", spec.name);
        for required in p["required"].as_array().unwrap() {
            let key = required.as_str().unwrap();
            assert!(p["properties"].get(key).is_some(), "{}: {key}", spec.name);
        }
    }
    let read = &specs[1].parameters;
    assert_eq!(read["required"], json!(["path"]));
    assert_eq!(read["properties"]["start_line"]["type"], "integer");
    // The shell's description tells the model how long it may run.
    assert!(
        specs[0].description.contains("600 s"),
        "{}",
        specs[0].description
    );
}

#[tokio::test]
async fn an_unknown_tool_lists_the_available_ones() {
    let w = Work::new();
    let out = w.tools.call("delete_everything", "{}").await;
    assert!(out.is_error);
    assert!(
        out.text.contains("no tool named `delete_everything`"),
        "{}",
        out.text
    );
    for name in TOOL_NAMES {
        assert!(out.text.contains(name), "{}", out.text);
    }
}

#[tokio::test]
async fn invalid_json_names_the_problem_and_shows_the_schema() {
    let w = Work::new();
    let out = w.tools.call("read_file", r#"{"path": "a.txt""#).await;
    assert!(out.is_error);
    assert!(out.text.contains("not valid JSON"), "{}", out.text);
    assert!(out.text.contains(r#""required":["path"]"#), "{}", out.text);
}

#[tokio::test]
async fn missing_and_extra_fields_are_named() {
    let w = Work::new();
    let text = w.err("read_file", json!({})).await;
    assert!(text.contains("missing field `path`"), "{text}");
    let text = w
        .err(
            "write_file",
            json!({"path": "a", "content": "x", "mode": "0755"}),
        )
        .await;
    assert!(text.contains("unknown field `mode`"), "{text}");
    assert!(
        text.contains("expected arguments matching this schema"),
        "{text}"
    );
    let text = w
        .err("read_file", json!({"path": "a", "start_line": "ten"}))
        .await;
    assert!(text.contains("invalid type"), "{text}");
}

#[tokio::test]
async fn arguments_must_be_an_object() {
    let w = Work::new();
    let out = w.tools.call("shell", r#"["ls"]"#).await;
    assert!(out.is_error);
    assert!(
        out.text.contains("must be a JSON object, not an array"),
        "{}",
        out.text
    );
}

#[tokio::test]
async fn empty_arguments_are_accepted_when_nothing_is_required() {
    let w = Work::new();
    w.file("a.txt", "");
    let out = w.tools.call("list_files", "").await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(out.text, "a.txt");
    let out = w.tools.call("list_files", r#"{"path": null}"#).await;
    assert_eq!(out.text, "a.txt");
}

#[tokio::test]
async fn finish_hands_back_the_summary() {
    let w = Work::new();
    let out = w
        .call(
            "finish",
            json!({"summary": "  Fixed the off-by-one in parse().\n"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(
        out.finish.as_deref(),
        Some("Fixed the off-by-one in parse().")
    );
    assert!(out.command.is_none());
}

#[tokio::test]
async fn finish_requires_a_summary() {
    let w = Work::new();
    let out = w.call("finish", json!({"summary": " \n "})).await;
    assert!(out.is_error);
    assert!(out.finish.is_none());
    assert!(out.text.contains("summary is empty"), "{}", out.text);
    let out = w.call("finish", json!({})).await;
    assert!(out.is_error && out.finish.is_none());
}

#[tokio::test]
async fn the_root_is_canonical() {
    let w = Work::new();
    assert_eq!(w.tools.root(), w.root.canonicalize().unwrap());
}
