//! One bubblewrap sandbox per `Sandbox`, entered by every command: what must still hold per
//! command, and what happens around it.

use std::time::Duration;

use nightshift_sandbox::SandboxMode;

use super::{Scratch, sh};

/// Children of this test process (nextest runs each test in a process of its own).
fn our_children() -> Vec<String> {
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(list.split_whitespace().map(str::to_owned));
    }
    children
}

#[tokio::test]
async fn nothing_keeps_running_between_commands() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    // The sandbox outlives the bwrap that built it: its namespaces are held open, not a process.
    assert_eq!(our_children(), Vec::<String>::new());
    let out = sh(&sandbox, "sleep 60 & echo started").await;
    assert_eq!(out.output, "started\n");
    assert_eq!(our_children(), Vec::<String>::new());
}

#[tokio::test]
async fn concurrent_commands_in_one_sandbox_each_have_their_own_tmp_and_processes() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let list = r#"for p in /proc/[0-9]*; do printf '%s ' "${p#/proc/}"; done; ls -A /tmp"#;
    let writes = format!("echo mine > /tmp/first; sleep 0.5; {list}");
    let slow = sh(&sandbox, &writes);
    let quick = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sh(&sandbox, list).await
    };
    let (slow, quick) = tokio::join!(slow, quick);
    assert_eq!(slow.output, "1 2 first\nhome\n");
    assert_eq!(quick.output, "1 2 home\n");
}

#[tokio::test]
async fn a_worktree_made_again_at_the_same_path_is_the_one_commands_see() {
    let scratch = Scratch::new();
    let work = scratch.work();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    assert_eq!(sh(&sandbox, "echo one > a; ls").await.output, "a\n");
    // What a worker does when a task's turn restarts on a clean worktree.
    std::fs::remove_dir_all(&work).unwrap();
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("b"), "two\n").unwrap();
    let out = sh(&sandbox, "ls; echo three > c").await;
    assert_eq!(out.output, "b\n");
    assert_eq!(std::fs::read_to_string(work.join("c")).unwrap(), "three\n");
}

#[tokio::test]
async fn a_worktree_that_is_gone_is_a_clear_error() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    std::fs::remove_dir_all(scratch.work()).unwrap();
    let error = sandbox.run("true", &super::limits()).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("it is gone"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}

#[tokio::test]
async fn the_user_and_groups_inside_are_bwraps() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let out = sh(&sandbox, "id -u; id -g; cat /proc/self/uid_map").await;
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    let uid = uid.unwrap();
    let mut lines = out.output.lines();
    assert_eq!(
        lines.next(),
        Some(uid.to_string().as_str()),
        "{}",
        out.output
    );
    assert!(lines.next().is_some(), "{}", out.output);
    // A user namespace maps exactly one id: ours.
    let map: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        map.first(),
        Some(&uid.to_string().as_str()),
        "{}",
        out.output
    );
    assert_eq!(map.last(), Some(&"1"), "{}", out.output);
}
