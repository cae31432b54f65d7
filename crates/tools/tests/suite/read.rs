//! `read_file`: numbered lines, ranges, pages that always fit, and clear refusals.

use nightshift_tools::MAX_TOOL_OUTPUT;
use serde_json::json;

use super::Work;

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

/// The text of numbered lines with the `N| ` prefixes and trailing notes removed.
fn strip_numbers(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('['))
        .map(|l| &l[l.find("| ").unwrap() + 2..])
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test]
async fn a_small_file_comes_back_whole_with_line_numbers() {
    let w = Work::new();
    w.file("src/a.txt", "alpha\n  beta\ngamma");
    let text = w.ok("read_file", json!({"path": "src/a.txt"})).await;
    assert_eq!(text, "1| alpha\n2|   beta\n3| gamma");
}

#[tokio::test]
async fn a_range_is_one_based_and_inclusive() {
    let w = Work::new();
    w.file("a.txt", numbered(12));
    let text = w
        .ok(
            "read_file",
            json!({"path": "a.txt", "start_line": 9, "end_line": 10}),
        )
        .await;
    assert_eq!(text, " 9| line 9\n10| line 10\n[lines 9-10 of 12]");
    // An end past the last line is clamped.
    let text = w
        .ok(
            "read_file",
            json!({"path": "a.txt", "start_line": 12, "end_line": 99}),
        )
        .await;
    assert_eq!(text, "12| line 12\n[lines 12-12 of 12]");
}

#[tokio::test]
async fn a_long_file_is_paged_with_a_note_that_says_how_to_read_on() {
    let w = Work::new();
    w.file("big.txt", numbered(1000));
    let text = w.ok("read_file", json!({"path": "big.txt"})).await;
    assert!(text.starts_with("  1| line 1\n"), "{text}");
    assert!(text.contains("\n400| line 400\n"), "{text}");
    assert!(!text.contains("line 401"));
    assert!(text.ends_with("[lines 1-400 of 1000; call read_file with start_line=401 to read on]"));
    let text = w
        .ok("read_file", json!({"path": "big.txt", "start_line": 801}))
        .await;
    assert!(text.starts_with(" 801| line 801\n"), "{text}");
    assert!(
        text.ends_with("1000| line 1000\n[lines 801-1000 of 1000]"),
        "{text}"
    );
}

#[tokio::test]
async fn pages_fit_the_output_cap_and_together_give_back_the_whole_file() {
    let w = Work::new();
    // 400 lines of ~120 bytes: more than the cap in one page, so pages are cut by size.
    let content: String = (1..=400)
        .map(|i| format!("{i:04} {}\n", "x".repeat(115)))
        .collect();
    w.file("wide.txt", &content);
    let mut rebuilt = String::new();
    let mut start = 1;
    let mut pages = 0;
    loop {
        let text = w
            .ok(
                "read_file",
                json!({"path": "wide.txt", "start_line": start}),
            )
            .await;
        assert!(text.len() <= MAX_TOOL_OUTPUT, "{} bytes", text.len());
        assert!(!text.contains("bytes omitted"), "a page was trimmed");
        rebuilt.push_str(&strip_numbers(&text));
        pages += 1;
        let Some(at) = text.find("start_line=") else {
            break;
        };
        let rest = &text[at + "start_line=".len()..];
        start = rest[..rest.find(' ').unwrap()].parse().unwrap();
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(rebuilt, content);
}

#[tokio::test]
async fn an_explicit_range_larger_than_the_cap_is_cut_with_a_note() {
    let w = Work::new();
    let content: String = (1..=2000)
        .map(|i| format!("{i} {}\n", "y".repeat(60)))
        .collect();
    w.file("a.txt", &content);
    let text = w
        .ok(
            "read_file",
            json!({"path": "a.txt", "start_line": 1, "end_line": 2000}),
        )
        .await;
    assert!(text.len() <= MAX_TOOL_OUTPUT);
    assert!(
        text.contains("of 2000; call read_file with start_line="),
        "{text}"
    );
}

#[tokio::test]
async fn bad_ranges_are_explained() {
    let w = Work::new();
    w.file("a.txt", numbered(3));
    let text = w
        .err("read_file", json!({"path": "a.txt", "start_line": 10}))
        .await;
    assert!(
        text.contains("has 3 lines") && text.contains("past the end"),
        "{text}"
    );
    let text = w
        .err(
            "read_file",
            json!({"path": "a.txt", "start_line": 3, "end_line": 2}),
        )
        .await;
    assert!(text.contains("before start_line"), "{text}");
    let text = w
        .err("read_file", json!({"path": "a.txt", "start_line": 0}))
        .await;
    assert!(text.contains("1-based"), "{text}");
}

#[tokio::test]
async fn a_missing_file_names_the_path_and_suggests_list_files() {
    let w = Work::new();
    let text = w.err("read_file", json!({"path": "src/nope.rs"})).await;
    assert!(text.contains("`src/nope.rs` does not exist"), "{text}");
    assert!(text.contains("list_files"), "{text}");
}

#[tokio::test]
async fn a_directory_is_not_read() {
    let w = Work::new();
    w.file("src/a.rs", "");
    let text = w.err("read_file", json!({"path": "src"})).await;
    assert!(
        text.contains("is a directory") && text.contains("list_files"),
        "{text}"
    );
}

#[tokio::test]
async fn binary_files_are_refused_with_a_clear_message() {
    let w = Work::new();
    w.file("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let text = w.err("read_file", json!({"path": "logo.png"})).await;
    assert!(text.contains("`logo.png` is a binary file"), "{text}");
}

#[tokio::test]
async fn an_empty_file_says_so() {
    let w = Work::new();
    w.file("empty.txt", "");
    assert_eq!(
        w.ok("read_file", json!({"path": "empty.txt"})).await,
        "(`empty.txt` is empty)"
    );
}

#[tokio::test]
async fn a_very_long_line_is_cut_and_says_how_long_it_was() {
    let w = Work::new();
    w.file("min.js", format!("{}\nend\n", "a".repeat(100_000)));
    let text = w.ok("read_file", json!({"path": "min.js"})).await;
    assert!(
        text.contains("line cut: 100000 bytes in all"),
        "{}",
        &text[..200]
    );
    assert!(text.ends_with("2| end"), "{}", &text[text.len() - 200..]);
    assert!(text.len() <= MAX_TOOL_OUTPUT);
}

#[tokio::test]
async fn text_that_is_not_utf8_is_shown_lossily_with_a_note() {
    let w = Work::new();
    w.file("latin1.txt", b"caf\xe9\nok\n");
    let text = w.ok("read_file", json!({"path": "latin1.txt"})).await;
    assert!(text.starts_with("1| caf\u{FFFD}\n2| ok"), "{text}");
    assert!(text.contains("not valid UTF-8"), "{text}");
}

#[tokio::test]
async fn windows_line_endings_do_not_show_up_in_the_text() {
    let w = Work::new();
    w.file("crlf.txt", "a\r\nb\r\n");
    assert_eq!(
        w.ok("read_file", json!({"path": "crlf.txt"})).await,
        "1| a\n2| b"
    );
}
