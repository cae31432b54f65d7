//! `write_file` and `edit_file`.

use serde_json::json;

use super::Work;

#[tokio::test]
async fn write_creates_parent_directories_and_reports_what_it_wrote() {
    let w = Work::new();
    let text = w
        .ok(
            "write_file",
            json!({"path": "src/deep/er/new.rs", "content": "fn a() {}\nfn b() {}\n"}),
        )
        .await;
    assert_eq!(
        text,
        "wrote 20 bytes (2 lines) to `src/deep/er/new.rs` (new file)"
    );
    assert_eq!(w.read("src/deep/er/new.rs"), "fn a() {}\nfn b() {}\n");
}

#[tokio::test]
async fn write_replaces_an_existing_file_and_says_so() {
    let w = Work::new();
    w.file("a.txt", "0123456789");
    let text = w
        .ok("write_file", json!({"path": "a.txt", "content": "new\n"}))
        .await;
    assert!(text.contains("replaced its previous 10 bytes"), "{text}");
    assert_eq!(w.read("a.txt"), "new\n");
}

#[tokio::test]
async fn write_refuses_directories_and_the_root() {
    let w = Work::new();
    w.file("src/a.rs", "");
    let text = w
        .err("write_file", json!({"path": "src", "content": "x"}))
        .await;
    assert!(text.contains("`src` is a directory"), "{text}");
    let text = w
        .err("write_file", json!({"path": ".", "content": "x"}))
        .await;
    assert!(text.contains("not the repository root"), "{text}");
    let text = w
        .err(
            "write_file",
            json!({"path": "src/a.rs/inner.rs", "content": "x"}),
        )
        .await;
    assert!(text.contains("could not create the directories"), "{text}");
}

#[tokio::test]
async fn edit_replaces_the_one_occurrence_and_shows_the_changed_lines() {
    let w = Work::new();
    w.file(
        "src/lib.rs",
        "fn one() {}\n\nfn two() {\n    1\n}\n\nfn three() {}\n",
    );
    let text = w
        .ok(
            "edit_file",
            json!({
                "path": "src/lib.rs",
                "old_string": "fn two() {\n    1\n}",
                "new_string": "fn two() -> u8 {\n    let x = 1;\n    x\n}",
            }),
        )
        .await;
    assert_eq!(
        w.read("src/lib.rs"),
        "fn one() {}\n\nfn two() -> u8 {\n    let x = 1;\n    x\n}\n\nfn three() {}\n"
    );
    assert!(
        text.starts_with(
            "edited `src/lib.rs`: replaced lines 3-5 with lines 3-6; the file now has 8 lines."
        ),
        "{text}"
    );
    assert!(text.contains("\n3| fn two() -> u8 {\n"), "{text}");
    assert!(text.contains("\n8| fn three() {}"), "{text}");
}

#[tokio::test]
async fn edit_with_an_empty_new_string_deletes() {
    let w = Work::new();
    w.file("a.txt", "keep\ndrop me\nkeep too\n");
    let text = w
        .ok(
            "edit_file",
            json!({"path": "a.txt", "old_string": "drop me\n", "new_string": ""}),
        )
        .await;
    assert!(text.contains("removed line 2"), "{text}");
    assert_eq!(w.read("a.txt"), "keep\nkeep too\n");
}

#[tokio::test]
async fn edit_without_a_match_says_so_and_leaves_the_file_alone() {
    let w = Work::new();
    w.file("a.rs", "fn main() {\n    run();\n}\n");
    let text = w
        .err(
            "edit_file",
            json!({"path": "a.rs", "old_string": "walk();", "new_string": "x"}),
        )
        .await;
    assert!(
        text.contains("old_string was not found in `a.rs`"),
        "{text}"
    );
    assert!(text.contains("read_file"), "{text}");
    assert_eq!(w.read("a.rs"), "fn main() {\n    run();\n}\n");
}

#[tokio::test]
async fn edit_without_a_match_points_at_a_match_that_differs_only_in_whitespace() {
    let w = Work::new();
    w.file("a.py", "def f():\n    if x:\n        return 1\n");
    let text = w
        .err(
            "edit_file",
            json!({"path": "a.py", "old_string": "if x:\n    return 1", "new_string": "pass"}),
        )
        .await;
    assert!(text.contains("differs only in whitespace"), "{text}");
    assert!(text.contains("at line 2"), "{text}");
}

#[tokio::test]
async fn edit_with_several_matches_gives_the_count_and_the_lines() {
    let w = Work::new();
    w.file("a.txt", "x = 1\ny = 2\nx = 1\nz\nx = 1\n");
    let text = w
        .err(
            "edit_file",
            json!({"path": "a.txt", "old_string": "x = 1", "new_string": "x = 2"}),
        )
        .await;
    assert!(text.contains("occurs 3 times"), "{text}");
    assert!(text.contains("lines 1, 3, 5"), "{text}");
    assert!(text.contains("more surrounding lines"), "{text}");
    assert_eq!(w.read("a.txt"), "x = 1\ny = 2\nx = 1\nz\nx = 1\n");
}

#[tokio::test]
async fn edit_counts_overlapping_matches_as_ambiguous() {
    let w = Work::new();
    w.file("a.txt", "aaa\n");
    let text = w
        .err(
            "edit_file",
            json!({"path": "a.txt", "old_string": "aa", "new_string": "b"}),
        )
        .await;
    assert!(text.contains("occurs 2 times"), "{text}");
}

#[tokio::test]
async fn edit_refuses_empty_and_identical_strings() {
    let w = Work::new();
    w.file("a.txt", "abc\n");
    let text = w
        .err(
            "edit_file",
            json!({"path": "a.txt", "old_string": "", "new_string": "x"}),
        )
        .await;
    assert!(text.contains("old_string is empty"), "{text}");
    let text = w
        .err(
            "edit_file",
            json!({"path": "a.txt", "old_string": "abc", "new_string": "abc"}),
        )
        .await;
    assert!(text.contains("identical"), "{text}");
}

#[tokio::test]
async fn edit_of_a_missing_file_suggests_list_files() {
    let w = Work::new();
    let text = w
        .err(
            "edit_file",
            json!({"path": "nope.rs", "old_string": "a", "new_string": "b"}),
        )
        .await;
    assert!(
        text.contains("`nope.rs` does not exist") && text.contains("list_files"),
        "{text}"
    );
}

#[tokio::test]
async fn edit_matches_newlines_in_a_file_with_windows_line_endings() {
    let w = Work::new();
    w.file("a.txt", "one\r\ntwo\r\nthree\r\n");
    w.ok(
        "edit_file",
        json!({"path": "a.txt", "old_string": "one\ntwo\n", "new_string": "1\n2\n"}),
    )
    .await;
    assert_eq!(w.read("a.txt"), "1\r\n2\r\nthree\r\n");
}

#[tokio::test]
async fn edit_refuses_binary_and_non_utf8_files() {
    let w = Work::new();
    w.file("bin", b"ab\0cd");
    w.file("latin1.txt", b"caf\xe9\n");
    let text = w
        .err(
            "edit_file",
            json!({"path": "bin", "old_string": "ab", "new_string": "x"}),
        )
        .await;
    assert!(text.contains("binary"), "{text}");
    let text = w
        .err(
            "edit_file",
            json!({"path": "latin1.txt", "old_string": "caf", "new_string": "x"}),
        )
        .await;
    assert!(text.contains("not valid UTF-8"), "{text}");
}
