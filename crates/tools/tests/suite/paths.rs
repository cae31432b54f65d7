//! Path confinement: nothing outside the worktree is read or written, symlinks included, and
//! `.git` is never written.

use serde_json::json;

use super::{Work, symlink};

const RULE: &str = "relative to the repository root";

#[tokio::test]
async fn dot_dot_out_of_the_root_is_refused_for_every_tool() {
    let w = Work::new();
    std::fs::write(w.outside.join("secret.txt"), "s3cret").unwrap();
    for (tool, args) in [
        ("read_file", json!({"path": "../outside/secret.txt"})),
        (
            "write_file",
            json!({"path": "../outside/new.txt", "content": "x"}),
        ),
        (
            "edit_file",
            json!({"path": "../outside/secret.txt", "old_string": "s3cret", "new_string": "x"}),
        ),
        ("list_files", json!({"path": ".."})),
        ("search", json!({"pattern": "s3cret", "path": "../outside"})),
    ] {
        let text = w.err(tool, args).await;
        assert!(text.contains(RULE), "{tool}: {text}");
        assert!(!text.contains("s3cret\n"), "{tool} leaked: {text}");
    }
    assert_eq!(
        std::fs::read_to_string(w.outside.join("secret.txt")).unwrap(),
        "s3cret"
    );
    assert!(!w.outside.join("new.txt").exists());
}

#[tokio::test]
async fn dot_dot_that_climbs_out_through_a_subdirectory_is_refused() {
    let w = Work::new();
    w.file("a/keep.txt", "k");
    w.file("b.txt", "inside\n");
    let text = w.err("read_file", json!({"path": "a/../../x"})).await;
    assert!(text.contains(RULE), "{text}");
    let text = w
        .err(
            "write_file",
            json!({"path": "a/../../outside/x", "content": "x"}),
        )
        .await;
    assert!(text.contains(RULE), "{text}");
    assert!(!w.outside.join("x").exists());
    // A `..` that stays inside is fine.
    let text = w.ok("read_file", json!({"path": "a/../b.txt"})).await;
    assert!(text.contains("inside"), "{text}");
}

#[tokio::test]
async fn absolute_paths_are_refused_even_inside_the_root() {
    let w = Work::new();
    w.file("x.txt", "x");
    for path in ["/etc/passwd", w.root.join("x.txt").to_str().unwrap()] {
        let text = w.err("read_file", json!({"path": path})).await;
        assert!(text.contains("absolute") && text.contains(RULE), "{text}");
    }
    let text = w.err("list_files", json!({"path": "/etc"})).await;
    assert!(text.contains(RULE), "{text}");
    let text = w
        .err("search", json!({"pattern": "root", "path": "/etc"}))
        .await;
    assert!(text.contains(RULE), "{text}");
    let text = w
        .err(
            "write_file",
            json!({"path": "/tmp/nightshift-escape", "content": "x"}),
        )
        .await;
    assert!(text.contains(RULE), "{text}");
    assert!(!std::path::Path::new("/tmp/nightshift-escape").exists());
}

#[tokio::test]
async fn a_symlink_to_etc_is_not_a_way_out() {
    let w = Work::new();
    symlink("/etc", w.root.join("etc"));
    let text = w.err("read_file", json!({"path": "etc/passwd"})).await;
    assert!(text.contains("outside the repository"), "{text}");
    assert!(!text.contains("root:"), "{text}");
    let text = w.err("list_files", json!({"path": "etc"})).await;
    assert!(text.contains("outside the repository"), "{text}");
    let text = w
        .err("search", json!({"pattern": "root", "path": "etc"}))
        .await;
    assert!(text.contains("outside the repository"), "{text}");
    // A whole-tree search or listing shows the link but does not follow it.
    let text = w.ok("search", json!({"pattern": "root:"})).await;
    assert!(text.starts_with("no matches"), "{text}");
    let text = w.ok("list_files", json!({})).await;
    assert_eq!(text, "etc -> /etc");
}

#[tokio::test]
async fn writing_into_a_symlinked_directory_that_points_outside_is_refused() {
    let w = Work::new();
    std::fs::write(w.outside.join("existing.txt"), "old\n").unwrap();
    symlink(&w.outside, w.root.join("link"));
    for path in ["link/new.txt", "link/deeper/new.txt", "link/existing.txt"] {
        let text = w
            .err("write_file", json!({"path": path, "content": "pwned"}))
            .await;
        assert!(text.contains("outside the repository"), "{path}: {text}");
    }
    let text = w
        .err(
            "edit_file",
            json!({"path": "link/existing.txt", "old_string": "old", "new_string": "pwned"}),
        )
        .await;
    assert!(text.contains("outside the repository"), "{text}");
    assert!(!w.outside.join("new.txt").exists());
    assert!(!w.outside.join("deeper").exists());
    assert_eq!(
        std::fs::read_to_string(w.outside.join("existing.txt")).unwrap(),
        "old\n"
    );
}

#[tokio::test]
async fn a_dangling_symlink_cannot_be_used_to_create_a_file_outside() {
    let w = Work::new();
    let target = w.outside.join("created-through-link");
    symlink(&target, w.root.join("trap"));
    let text = w
        .err("write_file", json!({"path": "trap", "content": "x"}))
        .await;
    assert!(text.contains("symlink"), "{text}");
    assert!(!target.exists());
}

#[tokio::test]
async fn symlinks_that_stay_inside_the_root_work() {
    let w = Work::new();
    w.file("src/lib.rs", "fn a() {}\n");
    symlink("src", w.root.join("docs"));
    symlink("src/lib.rs", w.root.join("lib-link.rs"));
    let text = w.ok("read_file", json!({"path": "lib-link.rs"})).await;
    assert_eq!(text, "1| fn a() {}");
    w.ok(
        "write_file",
        json!({"path": "docs/new.rs", "content": "x\n"}),
    )
    .await;
    assert_eq!(w.read("src/new.rs"), "x\n");
    let text = w.ok("list_files", json!({"path": "docs"})).await;
    assert!(text.contains("src/lib.rs\nsrc/new.rs"), "{text}");
    assert!(text.contains("`docs` is a symlink to `src`"), "{text}");
}

#[tokio::test]
async fn git_metadata_is_never_written() {
    let w = Work::new();
    w.git_init();
    let config = w.read(".git/config");
    let text = w
        .err("write_file", json!({"path": ".git/config", "content": "x"}))
        .await;
    assert!(text.contains(".git"), "{text}");
    let text = w
        .err(
            "write_file",
            json!({"path": "./sub/../.git/hooks/pre-commit", "content": "x"}),
        )
        .await;
    assert!(text.contains(".git"), "{text}");
    let text = w
        .err(
            "edit_file",
            json!({"path": ".git/config", "old_string": "[core]", "new_string": "[x]"}),
        )
        .await;
    assert!(text.contains(".git"), "{text}");
    // Nor through a symlink that leads into it.
    symlink(".git/hooks", w.root.join("hooks"));
    let text = w
        .err(
            "write_file",
            json!({"path": "hooks/pre-commit", "content": "#!/bin/sh\n"}),
        )
        .await;
    assert!(text.contains("resolves into `.git`"), "{text}");
    assert!(!w.root.join(".git/hooks/pre-commit").exists());
    assert_eq!(w.read(".git/config"), config);
    // Reading it is harmless and sometimes useful.
    let text = w.ok("read_file", json!({"path": ".git/HEAD"})).await;
    assert!(text.contains("refs/heads/main"), "{text}");
    // Walks skip it, and say so when asked for it.
    let text = w.err("list_files", json!({"path": ".git"})).await;
    assert!(text.contains("git log"), "{text}");
    let text = w
        .err("search", json!({"pattern": "core", "path": ".git/config"}))
        .await;
    assert!(text.contains("inside `.git`"), "{text}");
    assert_eq!(w.ok("list_files", json!({})).await, "hooks -> .git/hooks");
}
