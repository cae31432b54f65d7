//! The client commands (`submit`, `ls`, `show`, `logs -f`, `diff`, `apply`, `reply`,
//! `cancel`) run as the real binary against a small axum server in this test that speaks the
//! API of docs/API.md (`mock.rs`), including a dropped event stream resumed with
//! `Last-Event-ID`; then once through the real daemon.

mod mock;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::{Run, World, git, run};
use mock::{CREATED_AT, Mock, TOKEN, lifecycle, result_json, spec, task_json};

/// `nightshift ARGS` with the daemon at `url` (if any) and the token.
fn client(world: &World, url: Option<&str>, args: &[&str]) -> Command {
    let mut command = world.command();
    command
        .env_remove("NIGHTSHIFT_URL")
        .env("NIGHTSHIFT_TOKEN", TOKEN)
        .args(args);
    if let Some(url) = url {
        command.env("NIGHTSHIFT_URL", url);
    }
    command
}

fn nightshift(world: &World, mock: &Mock, args: &[&str]) -> Run {
    run(client(world, Some(&mock.url()), args))
}

#[test]
fn submit_prints_the_id_alone_and_sends_only_what_was_given() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();
    let repo = world.repo.to_str().unwrap();
    let submitted = nightshift(
        &world,
        &mock,
        &[
            "submit",
            "--repo",
            repo,
            "--check",
            "cargo test",
            "--label",
            "nightly",
            "--max-steps",
            "7",
            "--timeout",
            "90s",
            "Fix the bug",
        ],
    );
    assert_eq!(submitted.code(), 0, "{}", submitted.stderr);
    assert_eq!(submitted.stdout, "19ab3c4d5e60000\n");
    let posted = mock.seen_at("/api/tasks");
    assert_eq!(posted[0].method, "POST");
    let body: Value = serde_json::from_str(&posted[0].body).unwrap();
    assert_eq!(
        body,
        json!({
            "repo": repo, "goal": "Fix the bug", "checks": ["cargo test"], "labels": ["nightly"],
            "budget": {"max_steps": 7, "timeout_secs": 90},
        })
    );

    let as_json = nightshift(
        &world,
        &mock,
        &["submit", "--json", "--repo", repo, "Again"],
    );
    assert_eq!(as_json.code(), 0, "{}", as_json.stderr);
    let task = &as_json.lines()[0];
    assert_eq!(task["id"], "19ab3c4d5e60001");
    assert_eq!(task["status"], "queued");
    assert_eq!(task["spec"]["checks"], json!([]));

    // The API's error and hint become the CLI's.
    let refused = nightshift(&world, &mock, &["submit", "--repo", repo, "refuse me"]);
    assert_eq!(refused.code(), 2);
    assert!(
        refused
            .stderr
            .contains("error: the goal is refused by this test\nhint: pick another goal"),
        "{}",
        refused.stderr
    );
}

#[test]
fn without_a_daemon_configured_the_client_commands_say_how_to_start_one() {
    let world = World::new(&[("a.txt", "a\n")]);
    for args in [
        vec!["submit", "Do it"],
        vec!["ls"],
        vec!["diff", "19ab3c4d5e60000"],
        vec!["reply", "19ab3c4d5e60000", "more"],
        vec!["cancel", "19ab3c4d5e60000"],
        vec!["apply", "19ab3c4d5e60000"],
    ] {
        let out = run(client(&world, None, &args));
        assert_eq!(out.code(), 2, "{args:?}");
        assert!(
            out.stderr.contains("no daemon is configured")
                && out.stderr.contains(
                    "hint: start the daemon with `nightshift serve`, then export \
                     NIGHTSHIFT_URL=http://127.0.0.1:7878 NIGHTSHIFT_TOKEN=$(nightshift token create)"
                ),
            "{args:?}: {}",
            out.stderr
        );
    }
    // `show` and `logs` fall back to the local store.
    let show = run(client(&world, None, &["show", "19ab3c4d5e60000"]));
    assert!(
        show.stderr.contains("no tasks have run here yet"),
        "{}",
        show.stderr
    );
}

#[test]
fn the_config_file_names_the_daemon_and_the_token() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();
    mock.add_task(
        task_json(
            "19ab3c4d5e6000a",
            "running",
            spec("/r", "Configured"),
            Value::Null,
        ),
        vec![],
    );
    std::fs::create_dir_all(world.home()).unwrap();
    std::fs::write(
        world.home().join("config.toml"),
        format!("[client]\nurl = \"{}/\"\ntoken = \"{TOKEN}\"\n", mock.url()),
    )
    .unwrap();
    let mut command = client(&world, None, &["show", "19ab3c4d5e6000a"]);
    command.env_remove("NIGHTSHIFT_TOKEN");
    let show = run(command);
    assert_eq!(show.code(), 0, "{}", show.stderr);
    assert_eq!(
        show.stdout,
        "task 19ab3c4d5e6000a is running (no result yet)\n"
    );

    // The environment wins over the file: a wrong token there is what the daemon gets.
    let mut command = client(&world, None, &["ls"]);
    command.env("NIGHTSHIFT_TOKEN", "wrong");
    let refused = run(command);
    assert_eq!(refused.code(), 2);
    assert!(
        refused.stderr.contains("missing or invalid token")
            && refused.stderr.contains("hint: set NIGHTSHIFT_TOKEN")
            && refused.stderr.contains("nightshift token create"),
        "{}",
        refused.stderr
    );
}

#[test]
fn unreachable_daemons_unknown_tasks_and_bad_ids_are_explained() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}");
    let refused = run(client(&world, Some(&url), &["ls"]));
    assert_eq!(refused.code(), 2);
    assert!(
        refused
            .stderr
            .contains(&format!("could not reach the daemon at {url}"))
            && refused.stderr.contains(&format!(
                "hint: is the daemon running? (nightshift serve --listen 127.0.0.1:{port})"
            )),
        "{}",
        refused.stderr
    );

    let unknown = nightshift(&world, &mock, &["show", "19ab3c4d5e6fffff"]);
    assert_eq!(unknown.code(), 2);
    assert!(
        unknown
            .stderr
            .contains("error: there is no task 19ab3c4d5e6fffff\nhint: list tasks"),
        "{}",
        unknown.stderr
    );

    let junk = nightshift(&world, &mock, &["diff", "../etc"]);
    assert_eq!(junk.code(), 2);
    assert!(junk.stderr.contains("is not a task id"), "{}", junk.stderr);
    assert!(
        mock.seen().iter().all(|s| !s.path.contains("etc")),
        "refused before any request"
    );

    let no_token = run({
        let mut command = client(&world, Some(&mock.url()), &["ls"]);
        command.env_remove("NIGHTSHIFT_TOKEN");
        command
    });
    assert!(
        no_token.stderr.contains("(no token was sent)"),
        "{}",
        no_token.stderr
    );
}

#[test]
fn ls_prints_a_table_filters_and_follows_pages() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();
    let repo = world.repo.to_str().unwrap().to_owned();
    for (n, status) in ["succeeded", "running", "queued", "running"]
        .iter()
        .enumerate()
    {
        let mut spec = spec(&repo, &format!("Goal number {n}\nwith a second line"));
        spec["labels"] = json!(["nightly"]);
        mock.add_task(
            task_json(&format!("19ab3c4d5e6100{n}"), status, spec, Value::Null),
            vec![],
        );
    }
    let all = nightshift(&world, &mock, &["ls"]);
    assert_eq!(all.code(), 0, "{}", all.stderr);
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", all.stdout);
    assert!(lines[0].starts_with("ID "), "{}", lines[0]);
    for header in ["STATUS", "AGE", "REPO", "GOAL"] {
        assert!(lines[0].contains(header), "{}", lines[0]);
    }
    assert!(
        lines[1].starts_with("19ab3c4d5e61003  running  "),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with(&format!("{repo}  Goal number 3 with a second line")),
        "{}",
        lines[1]
    );
    assert!(
        lines[4].starts_with("19ab3c4d5e61000  succeeded"),
        "{}",
        lines[4]
    );
    // Pages of two: the client asked again with `before`.
    let pages = mock.seen_at("/api/tasks");
    assert_eq!(pages.len(), 2);
    assert!(
        pages[1].query.contains("before=19ab3c4d5e61002"),
        "{pages:?}"
    );

    // A path inside the repository finds tasks recorded with its top level.
    let inner = world.repo.join("sub");
    std::fs::create_dir_all(&inner).unwrap();
    let filtered = nightshift(
        &world,
        &mock,
        &[
            "ls",
            "--status",
            "running,queued",
            "--label",
            "nightly",
            "--limit",
            "2",
            "--repo",
            inner.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(filtered.code(), 0, "{}", filtered.stderr);
    let ids: Vec<Value> = filtered.lines().iter().map(|t| t["id"].clone()).collect();
    assert_eq!(ids, [json!("19ab3c4d5e61003"), json!("19ab3c4d5e61002")]);
    let query = mock.seen_at("/api/tasks").last().unwrap().query.clone();
    assert!(query.contains("status=running%2Cqueued"), "{query}");
    assert!(
        query.contains("label=nightly") && query.contains("limit=2"),
        "{query}"
    );

    let bad = nightshift(&world, &mock, &["ls", "--status", "runing"]);
    assert_eq!(bad.code(), 2);
    assert!(
        bad.stderr.contains("`runing` is not a task status"),
        "{}",
        bad.stderr
    );
}

#[test]
fn show_and_logs_print_what_the_local_commands_print() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();
    let id = "19ab3c4d5e62000";
    let result = result_json(id, "failed", Some("nightshift/19ab3c4d5e62000"));
    mock.add_task(
        task_json(id, "failed", spec("/r", "g"), result.clone()),
        lifecycle(id, "failed"),
    );
    let show = nightshift(&world, &mock, &["show", id]);
    assert_eq!(show.code(), 0, "{}", show.stderr);
    assert!(
        show.stdout.contains(&format!("Task {id} FAILED")),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("branch: nightshift/19ab3c4d5e62000 (commit 0123456789)")
    );
    assert!(show.stdout.contains(&format!("Summary of {id}.")));
    let show_json = nightshift(&world, &mock, &["show", id, "--json"]);
    let mut expected = result.clone();
    expected["type"] = json!("result");
    assert_eq!(show_json.lines(), [expected]);

    let logs = nightshift(&world, &mock, &["logs", id]);
    assert_eq!(logs.code(), 0, "{}", logs.stderr);
    let lines: Vec<&str> = logs.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", logs.stdout);
    assert_eq!(lines[2], format!("{CREATED_AT}    3 note: working on it"));
    assert!(lines[4].ends_with("finished: failed"), "{}", lines[4]);
    let logs_json = nightshift(&world, &mock, &["logs", id, "--json"]);
    assert_eq!(logs_json.lines(), lifecycle(id, "failed"));
}

#[test]
fn logs_follow_resumes_after_a_dropped_stream_and_exits_with_the_tasks_code() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();
    let id = "19ab3c4d5e63000";
    mock.add_task(
        task_json(id, "running", spec("/r", "g"), Value::Null),
        lifecycle(id, "failed"),
    );
    mock.state
        .cut_first_stream_after
        .lock()
        .unwrap()
        .insert(id.into(), 3);
    mock.state
        .gate_before_seq
        .lock()
        .unwrap()
        .insert(id.into(), 5);

    let mut child = client(&world, Some(&mock.url()), &["logs", "-f", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Events arrive live: seq 4 is printed while the stream still holds back the last one.
    let mut printed = Vec::new();
    while !printed
        .last()
        .is_some_and(|l: &String| l.contains("running → failed"))
    {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("logs -f prints events as they come");
        printed.push(line);
    }
    assert!(child.try_wait().unwrap().is_none(), "still following");
    mock.state.gate.notify_one();
    let status = child.wait().unwrap();
    printed.extend(rx.iter());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();

    assert_eq!(status.code(), Some(1), "a failed task exits 1: {stderr}");
    let seqs: Vec<String> = printed
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        seqs,
        ["1", "2", "3", "4", "5"],
        "each event once: {printed:?}"
    );
    assert!(stderr.contains("resuming after event 3"), "{stderr}");
    let streams = mock.seen_at(&format!("/api/tasks/{id}/events/stream"));
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert_eq!(streams[0].last_event_id, None);
    assert_eq!(streams[1].last_event_id.as_deref(), Some("3"));
}

#[test]
fn logs_follow_json_prints_jsonl_and_each_final_status_has_its_exit_code() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();
    for (n, (status, code)) in [
        ("succeeded", 0),
        ("budget_exhausted", 3),
        ("cancelled", 4),
        ("error", 5),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("19ab3c4d5e6400{n}");
        mock.add_task(
            task_json(&id, status, spec("/r", "g"), result_json(&id, status, None)),
            lifecycle(&id, status),
        );
        let follow = nightshift(&world, &mock, &["logs", "--follow", "--json", &id]);
        assert_eq!(follow.code(), code, "{status}: {}", follow.stderr);
        assert_eq!(follow.lines(), lifecycle(&id, status));
    }
}

#[test]
fn diff_reply_and_cancel_talk_to_the_task() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();
    let done = "19ab3c4d5e65000";
    let running = "19ab3c4d5e65001";
    mock.add_task(
        task_json(
            done,
            "succeeded",
            spec("/r", "g"),
            result_json(done, "succeeded", Some("nightshift/x")),
        ),
        vec![],
    );
    mock.add_task(
        task_json(running, "running", spec("/r", "g"), Value::Null),
        vec![],
    );
    let patch = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n";
    mock.state
        .diffs
        .lock()
        .unwrap()
        .insert(done.into(), patch.into());

    let diff = nightshift(&world, &mock, &["diff", done]);
    assert_eq!(diff.code(), 0, "{}", diff.stderr);
    assert_eq!(diff.stdout, patch);
    let not_yet = nightshift(&world, &mock, &["diff", running]);
    assert_eq!(not_yet.code(), 2);
    assert!(
        not_yet
            .stderr
            .contains("its diff is ready when it finishes\nhint: follow it")
    );

    let reply = nightshift(&world, &mock, &["reply", done, "Also update the README"]);
    assert_eq!(reply.code(), 0, "{}", reply.stderr);
    assert!(
        reply.stderr.contains(&format!("nightshift logs -f {done}")),
        "{}",
        reply.stderr
    );
    let posted = &mock.seen_at(&format!("/api/tasks/{done}/messages"))[0];
    assert_eq!(
        serde_json::from_str::<Value>(&posted.body).unwrap(),
        json!({"message": "Also update the README"})
    );
    let empty = nightshift(&world, &mock, &["reply", done, "  "]);
    assert_eq!(empty.code(), 2);
    assert!(empty.stderr.contains("the follow-up message is empty"));

    let cancel = nightshift(&world, &mock, &["cancel", running]);
    assert_eq!(cancel.code(), 0, "{}", cancel.stderr);
    assert!(
        cancel
            .stderr
            .contains(&format!("task {running} is cancelled")),
        "{}",
        cancel.stderr
    );
    assert_eq!(
        mock.seen_at(&format!("/api/tasks/{running}/cancel"))[0].method,
        "POST"
    );
}

#[test]
fn apply_merges_the_branch_only_into_a_clean_checkout_of_the_same_repository() {
    let world = World::new(&[("a.txt", "a\n")]);
    let mock = Mock::start();
    let repo = world.repo.to_str().unwrap();
    let id = "19ab3c4d5e66000";
    let branch = format!("nightshift/{id}");
    // The task's branch, as a worker leaves it: one commit on top of main.
    let worktree = world.dir.path().join("wt");
    git(
        &world.repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            &branch,
            worktree.to_str().unwrap(),
        ],
    );
    std::fs::write(worktree.join("b.txt"), "b\n").unwrap();
    git(&worktree, &["add", "b.txt"]);
    git(
        &worktree,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "Add b",
        ],
    );
    git(
        &world.repo,
        &["worktree", "remove", worktree.to_str().unwrap()],
    );
    let tip = git(&world.repo, &["rev-parse", &branch]);
    let head = git(&world.repo, &["rev-parse", "HEAD"]);
    mock.add_task(
        task_json(
            id,
            "succeeded",
            spec(repo, "Add b"),
            result_json(id, "succeeded", Some(&branch)),
        ),
        vec![],
    );

    // Uncommitted work: refused, the files named, nothing touched.
    std::fs::write(world.repo.join("a.txt"), "changed\n").unwrap();
    std::fs::write(world.repo.join("notes.txt"), "mine\n").unwrap();
    let dirty = nightshift(&world, &mock, &["apply", id, "--repo", repo]);
    assert_eq!(dirty.code(), 2);
    assert!(
        dirty
            .stderr
            .contains("has uncommitted changes: a.txt, notes.txt")
            && dirty.stderr.contains("hint: commit or stash them"),
        "{}",
        dirty.stderr
    );
    assert_eq!(git(&world.repo, &["rev-parse", "HEAD"]), head);
    git(&world.repo, &["checkout", "-q", "a.txt"]);
    std::fs::remove_file(world.repo.join("notes.txt")).unwrap();

    // Another repository: refused.
    let other = nightshift_testkit::fixture_repo(&world.dir.path().join("other"), &[("x", "x\n")]);
    let elsewhere = nightshift(
        &world,
        &mock,
        &["apply", id, "--repo", other.to_str().unwrap()],
    );
    assert_eq!(elsewhere.code(), 2);
    assert!(
        elsewhere
            .stderr
            .contains(&format!("task {id} belongs to the repository at {repo}"))
            && elsewhere
                .stderr
                .contains(&format!("hint: run `nightshift apply {id} --repo {repo}`")),
        "{}",
        elsewhere.stderr
    );

    // A running task and a task without changes: nothing to apply.
    let running = "19ab3c4d5e66001";
    mock.add_task(
        task_json(running, "running", spec(repo, "g"), Value::Null),
        vec![],
    );
    let early = nightshift(&world, &mock, &["apply", running, "--repo", repo]);
    assert!(
        early
            .stderr
            .contains("is running; there is nothing to apply until it finishes"),
        "{}",
        early.stderr
    );
    let empty = "19ab3c4d5e66002";
    mock.add_task(
        task_json(
            empty,
            "succeeded",
            spec(repo, "g"),
            result_json(empty, "succeeded", None),
        ),
        vec![],
    );
    let nothing = nightshift(&world, &mock, &["apply", empty, "--repo", repo]);
    assert!(
        nothing
            .stderr
            .contains("without changes, so there is nothing to apply"),
        "{}",
        nothing.stderr
    );

    // Clean and the same repository (named by a subdirectory): fast-forwarded.
    let sub = world.repo.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let applied = nightshift(
        &world,
        &mock,
        &["apply", id, "--repo", sub.to_str().unwrap()],
    );
    assert_eq!(applied.code(), 0, "{}", applied.stderr);
    assert_eq!(
        applied.stdout,
        format!(
            "applied task {id}: fast-forwarded main to {branch} ({})\n",
            &tip[..10]
        )
    );
    assert_eq!(git(&world.repo, &["rev-parse", "HEAD"]), tip);
    assert_eq!(
        std::fs::read_to_string(world.repo.join("b.txt")).unwrap(),
        "b\n"
    );

    let again = nightshift(&world, &mock, &["apply", id, "--repo", repo]);
    assert_eq!(again.code(), 0, "{}", again.stderr);
    assert_eq!(
        again.stdout,
        format!("{branch} is already in main; nothing to do\n")
    );
}

/// `nightshift logs -f` on the local store (no daemon): follows a finished task to its end
/// and exits with its code.
#[test]
fn local_logs_follow_exits_with_the_tasks_code() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![super::harness::finish("ok")]);
    let ran = world.run(
        &["--check", "false", "--max-verify-rounds", "1"],
        "Fail the checks",
    );
    assert_eq!(ran.code(), 1, "{}", ran.stderr);
    let id = ran.result()["task_id"].as_str().unwrap().to_owned();
    let follow = run(client(&world, None, &["logs", "-f", &id]));
    assert_eq!(follow.code(), 1, "{}", follow.stderr);
    assert!(
        follow
            .stdout
            .lines()
            .last()
            .unwrap()
            .ends_with("finished: failed"),
        "{}",
        follow.stdout
    );
}

/// The whole loop through the real daemon: submit, follow live, read the diff, apply it, and
/// a follow-up turn on the same branch applied on top.
#[test]
fn through_the_real_daemon_submit_follow_diff_apply_and_reply() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        super::harness::tool("write_file", json!({"path": "b.txt", "content": "b\n"})),
        super::harness::finish("Added b.txt."),
        super::harness::tool("write_file", json!({"path": "c.txt", "content": "c\n"})),
        super::harness::finish("Added c.txt too."),
    ]);
    let daemon = super::daemon::Daemon::start(&world, &["--workers", "1"]);
    let url = format!("http://{}", daemon.addr);
    let cli = |args: &[&str]| {
        let mut command = client(&world, Some(&url), args);
        command.env("NIGHTSHIFT_TOKEN", &daemon.token);
        run(command)
    };
    let repo = world.repo.to_str().unwrap();

    let submitted = cli(&[
        "submit",
        "--repo",
        repo,
        "--check",
        "test -f b.txt",
        "Add b.txt",
    ]);
    assert_eq!(submitted.code(), 0, "{}", submitted.stderr);
    let id = submitted.stdout.trim().to_owned();
    assert!(nightshift_protocol::TaskId::parse(&id).is_some(), "{id:?}");

    let follow = cli(&["logs", "-f", &id]);
    assert_eq!(follow.code(), 0, "{}", follow.stderr);
    let last = follow.stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with("finished: succeeded"), "{}", follow.stdout);
    assert!(follow.stdout.contains("write_file"), "{}", follow.stdout);

    let listed = cli(&["ls", "--status", "succeeded"]);
    assert_eq!(listed.code(), 0, "{}", listed.stderr);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with(&format!("{id}  succeeded"))),
        "{}",
        listed.stdout
    );
    let show = cli(&["show", &id]);
    assert!(
        show.stdout.contains(&format!("Task {id} succeeded")),
        "{}",
        show.stdout
    );

    let diff = cli(&["diff", &id]);
    assert_eq!(diff.code(), 0, "{}", diff.stderr);
    assert!(
        diff.stdout.contains("+++ b/b.txt\n@@ -0,0 +1 @@\n+b\n"),
        "{}",
        diff.stdout
    );

    let applied = cli(&["apply", &id, "--repo", repo]);
    assert_eq!(applied.code(), 0, "{}", applied.stderr);
    assert!(
        applied.stdout.starts_with(&format!(
            "applied task {id}: fast-forwarded main to nightshift/{id}"
        )),
        "{}",
        applied.stdout
    );
    assert_eq!(
        std::fs::read_to_string(world.repo.join("b.txt")).unwrap(),
        "b\n"
    );

    // A follow-up continues on the branch; applying again brings just the new commit.
    let reply = cli(&["reply", &id, "Add c.txt as well"]);
    assert_eq!(reply.code(), 0, "{}", reply.stderr);
    let second = cli(&["logs", "-f", &id]);
    assert_eq!(second.code(), 0, "{}", second.stderr);
    assert!(
        second.stdout.contains("follow-up: Add c.txt as well"),
        "{}",
        second.stdout
    );
    let again = cli(&["apply", &id, "--repo", repo]);
    assert_eq!(again.code(), 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("fast-forwarded main"),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(world.repo.join("c.txt")).unwrap(),
        "c\n"
    );

    let cancel = cli(&["cancel", &id]);
    assert_eq!(cancel.code(), 2);
    assert!(
        cancel.stderr.contains("there is nothing to cancel\nhint:"),
        "{}",
        cancel.stderr
    );
}
