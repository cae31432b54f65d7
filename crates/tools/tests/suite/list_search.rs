//! `list_files` and `search`, in real git repositories (main and linked worktrees).

use nightshift_tools::MAX_TOOL_OUTPUT;
use serde_json::json;

use super::{Work, git};

/// A repository with ignored build output, logs, a hidden file and a nested directory.
fn project() -> Work {
    let w = Work::new();
    w.git_init();
    w.file(".gitignore", "target/\n*.log\n");
    w.file(".env.example", "TOKEN=\n");
    w.file("Cargo.toml", "[package]\nname = \"demo\"\n");
    w.file("src/main.rs", "fn main() {\n    println!(\"hello\");\n}\n");
    w.file("src/util/mod.rs", "pub fn hello() {}\n");
    w.file("src/util/debug.log", "hello from a log\n");
    w.file("target/debug/out.txt", "hello build\n");
    w.file("notes.log", "hello\n");
    w
}

#[tokio::test]
async fn list_respects_gitignore_shows_hidden_files_and_never_git() {
    let w = project();
    let text = w.ok("list_files", json!({})).await;
    assert_eq!(
        text,
        ".env.example\n.gitignore\nCargo.toml\nsrc/\nsrc/main.rs\nsrc/util/\nsrc/util/mod.rs"
    );
}

#[tokio::test]
async fn list_of_a_subdirectory_still_applies_the_root_gitignore() {
    let w = project();
    let text = w.ok("list_files", json!({"path": "src/util"})).await;
    assert_eq!(text, "src/util/mod.rs");
    let text = w.ok("list_files", json!({"path": "./src/"})).await;
    assert_eq!(text, "src/main.rs\nsrc/util/\nsrc/util/mod.rs");
}

#[tokio::test]
async fn list_honours_git_info_exclude() {
    let w = project();
    std::fs::write(w.root.join(".git/info/exclude"), "Cargo.toml\n").unwrap();
    let text = w.ok("list_files", json!({})).await;
    assert!(!text.contains("Cargo.toml"), "{text}");
}

#[tokio::test]
async fn list_in_a_linked_worktree_hides_the_git_file_and_applies_gitignore() {
    let w = project();
    git(&w.root, &["add", "."]);
    git(&w.root, &["commit", "-q", "-m", "init"]);
    let linked = w.outside.join("task");
    git(
        &w.root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "nightshift/t1",
            linked.to_str().unwrap(),
        ],
    );
    std::fs::write(linked.join("build.log"), "x").unwrap();
    std::fs::create_dir_all(linked.join("target")).unwrap();
    std::fs::write(linked.join("target/x"), "x").unwrap();
    let sandbox =
        nightshift_sandbox::Sandbox::new(&linked, nightshift_sandbox::SandboxMode::None).unwrap();
    let tools = nightshift_tools::Toolbox::new(sandbox, Default::default()).unwrap();
    let out = tools.call("list_files", "{}").await;
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(
        out.text,
        ".env.example\n.gitignore\nCargo.toml\nsrc/\nsrc/main.rs\nsrc/util/\nsrc/util/mod.rs"
    );
}

#[tokio::test]
async fn list_of_an_ignored_directory_named_explicitly_lists_it_with_a_note() {
    let w = project();
    let text = w.ok("list_files", json!({"path": "target"})).await;
    assert!(
        text.starts_with("target/debug/\ntarget/debug/out.txt\n"),
        "{text}"
    );
    assert!(
        text.contains("ignored by .gitignore; listed because it was asked for"),
        "{text}"
    );
}

#[tokio::test]
async fn list_errors_name_the_path() {
    let w = project();
    let text = w.err("list_files", json!({"path": "nope"})).await;
    assert!(text.contains("`nope` does not exist"), "{text}");
    let text = w.err("list_files", json!({"path": "Cargo.toml"})).await;
    assert!(
        text.contains("is a file") && text.contains("read_file"),
        "{text}"
    );
}

#[tokio::test]
async fn an_empty_directory_says_so() {
    let w = Work::new();
    std::fs::create_dir(w.root.join("empty")).unwrap();
    let text = w.ok("list_files", json!({"path": "empty"})).await;
    assert!(text.contains("`empty` is empty"), "{text}");
}

#[tokio::test]
async fn a_huge_tree_is_capped_shallowest_first_with_counts_of_what_was_left_out() {
    let w = Work::new();
    w.file("README.md", "");
    for d in 0..30 {
        for f in 0..100 {
            w.file(&format!("dir{d:02}/file{f:03}.txt"), "");
        }
    }
    let text = w.ok("list_files", json!({})).await;
    assert!(text.len() <= MAX_TOOL_OUTPUT, "{} bytes", text.len());
    // Every top-level entry is there, even the last directory.
    assert!(text.starts_with("README.md\n"), "{text}");
    assert!(text.contains("dir29/"), "{text}");
    assert!(text.contains("entries not shown)"), "{text}");
    assert!(text.contains("of 3031 entries, shallowest first"), "{text}");
    // A directory on its own fits.
    let text = w.ok("list_files", json!({"path": "dir07"})).await;
    assert_eq!(text.lines().count(), 100);
}

#[tokio::test]
async fn search_prints_path_line_and_text_and_skips_ignored_files() {
    let w = project();
    let text = w.ok("search", json!({"pattern": "hel+o"})).await;
    assert_eq!(
        text,
        "src/main.rs:2:     println!(\"hello\");\nsrc/util/mod.rs:1: pub fn hello() {}"
    );
}

#[tokio::test]
async fn search_can_be_limited_to_a_directory_or_a_file() {
    let w = project();
    let text = w
        .ok("search", json!({"pattern": "hello", "path": "src/util"}))
        .await;
    assert_eq!(text, "src/util/mod.rs:1: pub fn hello() {}");
    let text = w
        .ok(
            "search",
            json!({"pattern": "(?i)HELLO", "path": "src/main.rs"}),
        )
        .await;
    assert_eq!(text, "src/main.rs:2:     println!(\"hello\");");
    // An ignored file named explicitly is searched, with a note.
    let text = w
        .ok("search", json!({"pattern": "hello", "path": "notes.log"}))
        .await;
    assert!(text.starts_with("notes.log:1: hello\n"), "{text}");
    assert!(text.contains("ignored by .gitignore"), "{text}");
}

#[tokio::test]
async fn search_without_matches_is_not_an_error() {
    let w = project();
    let text = w.ok("search", json!({"pattern": "zebra"})).await;
    assert_eq!(text, "no matches for `zebra` in `.`");
}

#[tokio::test]
async fn an_invalid_regex_comes_back_with_the_regex_error() {
    let w = project();
    let text = w.err("search", json!({"pattern": "fn main("})).await;
    assert!(
        text.contains("invalid regular expression `fn main(`"),
        "{text}"
    );
    assert!(text.contains("unclosed group"), "{text}");
    let text = w.err("search", json!({"pattern": ""})).await;
    assert!(text.contains("pattern is empty"), "{text}");
}

#[tokio::test]
async fn search_skips_binary_files() {
    let w = Work::new();
    w.file("blob.bin", b"needle\0\0\0");
    w.file("a.txt", "needle\n");
    let text = w.ok("search", json!({"pattern": "needle"})).await;
    assert_eq!(text, "a.txt:1: needle");
}

#[tokio::test]
async fn search_stops_at_the_cap_and_says_so() {
    let w = Work::new();
    let content: String = (0..500).map(|i| format!("match {i}\n")).collect();
    w.file("many.txt", &content);
    let text = w.ok("search", json!({"pattern": "match"})).await;
    assert_eq!(
        text.lines().filter(|l| l.starts_with("many.txt:")).count(),
        200
    );
    assert!(
        text.ends_with(
            "[stopped after 200 matches; narrow the pattern or give a path to see the rest]"
        ),
        "{text}"
    );
    assert!(text.len() <= MAX_TOOL_OUTPUT);
}

#[tokio::test]
async fn a_match_in_a_long_line_is_shown_around_the_match() {
    let w = Work::new();
    let line = format!("{}NEEDLE{}", "a".repeat(50_000), "b".repeat(50_000));
    w.file("min.js", format!("{line}\n"));
    let text = w.ok("search", json!({"pattern": "NEEDLE"})).await;
    assert!(text.starts_with("min.js:1: …a"), "{}", &text[..100]);
    assert!(text.contains("NEEDLE"), "{text}");
    assert!(text.ends_with("[line of 100006 bytes cut]"), "{text}");
    assert!(text.len() < 500, "{text}");
}
