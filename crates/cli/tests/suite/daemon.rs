//! The daemon end to end: the real `nightshift serve` binary as a child process, real HTTP,
//! real git and bubblewrap, the scripted model server.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::{World, finish, git, tool};
use super::http::{self, EventStream, Response};
use nightshift_testkit::{ScriptedReply, ScriptedServer};

/// A running `nightshift serve`; killed (SIGKILL) on drop.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    pub token: String,
}

impl Daemon {
    pub fn start(world: &World, extra: &[&str]) -> Daemon {
        let token = world.nightshift(&["token", "create"]);
        assert_eq!(token.code(), 0, "{}", token.stderr);
        let token = token.stdout.trim().to_owned();
        Daemon::start_with_token(world, extra, token)
    }

    pub fn start_with_token(world: &World, extra: &[&str], token: String) -> Daemon {
        let mut command = world.command();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--sandbox", "bwrap"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("the daemon exited before serving"))
                .unwrap();
            if let Some(rest) = line.split("serving http://").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // Keep draining stderr so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if std::env::var_os("NIGHTSHIFT_TEST_DAEMON_LOG").is_some() {
                    eprintln!("daemon: {line}");
                }
            }
        });
        Daemon { child, addr, token }
    }

    fn auth(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }

    pub fn get(&self, path: &str) -> Response {
        http::request(self.addr, "GET", path, &[&self.auth()], None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        let body = body.to_string();
        http::request(
            self.addr,
            "POST",
            path,
            &[&self.auth(), "Content-Type: application/json"],
            Some(body.as_bytes()),
        )
    }

    pub fn submit(&self, repo: &Path, goal: &str, checks: &[&str]) -> String {
        let response = self.post(
            "/api/tasks",
            &json!({"repo": repo, "goal": goal, "checks": checks}),
        );
        assert_eq!(response.status, 201, "{}", response.body);
        let task = response.json();
        assert_eq!(task["status"], "queued");
        task["id"].as_str().unwrap().to_owned()
    }

    pub fn task(&self, id: &str) -> Value {
        let response = self.get(&format!("/api/tasks/{id}"));
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()
    }

    pub fn events(&self, id: &str) -> Vec<Value> {
        let response = self.get(&format!("/api/tasks/{id}/events"));
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()["events"].as_array().unwrap().clone()
    }

    /// Waits until the task is final; returns it.
    pub fn wait(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let task = self.task(id);
            if is_final(&task["status"]) {
                return task;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} not finished after {within:?}: {task}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn is_final(status: &Value) -> bool {
    matches!(
        status.as_str(),
        Some("succeeded" | "failed" | "budget_exhausted" | "cancelled" | "error")
    )
}

/// One reply that writes `path` and finishes: a whole task in one model turn, whatever
/// order concurrent tasks take the script's replies in.
fn write_and_finish(path: &str, content: &str) -> ScriptedReply {
    ScriptedReply::ToolCalls(vec![
        (
            "write_file".to_owned(),
            json!({"path": path, "content": content}),
        ),
        (
            "finish".to_owned(),
            json!({"summary": format!("wrote {path}")}),
        ),
    ])
}

fn worktrees(world: &World) -> Vec<String> {
    match std::fs::read_dir(world.home().join("worktrees")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn fifty_tasks_submitted_at_once_all_finish_on_their_own_branches() {
    const TASKS: usize = 50;
    let mut world = World::new(&[("README.md", "hello\n")]);
    // Every conversation gets the same one-reply script, whatever order tasks ask in.
    world.server = Some(ScriptedServer::start_per_conversation(vec![
        write_and_finish("done.txt", "done\n"),
    ]));
    let daemon = Daemon::start(&world, &["--workers", "4"]);
    let ids: Vec<String> = (0..TASKS)
        .map(|n| daemon.submit(&world.repo, &format!("task {n}"), &["test -f done.txt"]))
        .collect();
    for id in &ids {
        let task = daemon.wait(id, Duration::from_secs(240));
        assert_eq!(task["status"], "succeeded", "{task}");
        assert_eq!(task["branch"], format!("nightshift/{id}"), "{task}");
        assert_eq!(
            git(&world.repo, &["show", &format!("nightshift/{id}:done.txt")]),
            "done"
        );
    }
    // Tasks on the same repository ran at the same time, each on its own worktree.
    let spans: Vec<(String, String)> = ids
        .iter()
        .map(|id| {
            let events = daemon.events(id);
            let ready = events
                .iter()
                .find(|e| e["type"] == "workspace_ready")
                .unwrap();
            let done = events.last().unwrap();
            assert_eq!(done["type"], "task_finished");
            (
                ready["ts"].as_str().unwrap().to_owned(),
                done["ts"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let overlapping = spans
        .iter()
        .enumerate()
        .any(|(i, a)| spans.iter().skip(i + 1).any(|b| a.0 < b.1 && b.0 < a.1));
    assert!(overlapping, "no two tasks overlapped: {spans:?}");
    assert!(worktrees(&world).is_empty(), "{:?}", worktrees(&world));
    let listed = daemon.get("/api/tasks?status=succeeded&limit=500").json();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), TASKS);
    let status = daemon.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn every_call_without_a_valid_token_is_refused() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(Vec::new());
    let daemon = Daemon::start(&world, &["--workers", "1"]);
    let routes = [
        ("GET", "/api/tasks"),
        ("POST", "/api/tasks"),
        ("GET", "/api/tasks/19ab3c4d5e60abc"),
        ("GET", "/api/tasks/19ab3c4d5e60abc/events"),
        ("GET", "/api/tasks/19ab3c4d5e60abc/events/stream"),
        ("GET", "/api/tasks/19ab3c4d5e60abc/diff"),
        ("POST", "/api/tasks/19ab3c4d5e60abc/cancel"),
        ("POST", "/api/tasks/19ab3c4d5e60abc/messages"),
    ];
    for (method, path) in routes {
        for headers in [
            vec![],
            vec!["Authorization: Bearer not-a-token"],
            vec!["Authorization: Basic dXNlcjpwYXNz"],
        ] {
            let response = http::request(daemon.addr, method, path, &headers, Some(b"{}"));
            assert_eq!(response.status, 401, "{method} {path} {headers:?}");
            let body = response.json();
            assert!(
                body["hint"]
                    .as_str()
                    .unwrap()
                    .contains("nightshift token create")
            );
        }
    }
    // The API's description is public and names every route.
    let openapi = http::request(daemon.addr, "GET", "/api/openapi.json", &[], None);
    assert_eq!(openapi.status, 200);
    let doc = openapi.json();
    for path in [
        "/api/tasks",
        "/api/tasks/{id}",
        "/api/tasks/{id}/events",
        "/api/tasks/{id}/events/stream",
        "/api/tasks/{id}/diff",
        "/api/tasks/{id}/cancel",
        "/api/tasks/{id}/messages",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
}

#[test]
fn bad_input_gets_a_4xx_that_says_what_to_fix() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        finish("nothing to do"),
        ScriptedReply::Delayed(Duration::from_secs(30), Box::new(finish("late"))),
    ]);
    let daemon = Daemon::start(&world, &["--workers", "1"]);
    let auth = daemon.auth();
    let post_raw = |path: &str, content_type: &str, body: &[u8]| {
        http::request(
            daemon.addr,
            "POST",
            path,
            &[&auth, &format!("Content-Type: {content_type}")],
            Some(body),
        )
    };
    let expect = |response: Response, status: u16, needle: &str| {
        assert_eq!(response.status, status, "{}", response.body);
        let body = response.json();
        let text = format!("{} {}", body["error"], body["hint"]);
        assert!(text.contains(needle), "{needle:?} not in {text}");
    };
    expect(
        post_raw("/api/tasks", "application/json", b"{\"repo\": "),
        400,
        "JSON",
    );
    expect(
        post_raw("/api/tasks", "text/plain", b"{}"),
        415,
        "application/json",
    );
    let repo = world.repo.display().to_string();
    expect(
        daemon.post(
            "/api/tasks",
            &json!({"repo": repo, "goal": "g", "colour": "red"}),
        ),
        400,
        "colour",
    );
    expect(
        daemon.post("/api/tasks", &json!({"goal": "g"})),
        400,
        "repo",
    );
    expect(
        daemon.post("/api/tasks", &json!({"repo": repo, "goal": " "})),
        400,
        "goal is empty",
    );
    expect(
        daemon.post(
            "/api/tasks",
            &json!({"repo": "/nonexistent/repo", "goal": "g"}),
        ),
        400,
        "/nonexistent/repo",
    );
    let huge = format!(
        "{{\"repo\": \"{}\", \"goal\": \"{}\"}}",
        repo,
        "x".repeat(2 << 20)
    );
    expect(
        post_raw("/api/tasks", "application/json", huge.as_bytes()),
        413,
        "bytes",
    );
    expect(daemon.get("/api/tasks/19ab3c4d5e60abc"), 404, "no task");
    expect(daemon.get("/api/tasks/not-an-id/events"), 404, "no task");
    expect(daemon.get("/api/tasks?status=sleeping"), 400, "queued");
    expect(daemon.get("/api/tasks?limit=0"), 400, "1 to 500");
    expect(daemon.get("/api/tasks?colour=red"), 400, "colour");
    expect(daemon.get("/api/nothing/here"), 404, "openapi");

    // Invalid transitions: cancel a finished task; reply to a running one.
    let done = daemon.submit(&world.repo, "nothing", &["true"]);
    assert_eq!(
        daemon.wait(&done, Duration::from_secs(60))["status"],
        "succeeded"
    );
    expect(
        daemon.post(&format!("/api/tasks/{done}/cancel"), &json!({})),
        409,
        "already finished",
    );
    expect(
        daemon.post(
            &format!("/api/tasks/{done}/messages"),
            &json!({"message": ""}),
        ),
        400,
        "empty",
    );
    expect(
        daemon.post(
            &format!("/api/tasks/{done}/messages"),
            &json!({"text": "x"}),
        ),
        400,
        "message",
    );
    let running = daemon.submit(&world.repo, "slow", &["true"]);
    expect(
        daemon.post(
            &format!("/api/tasks/{running}/messages"),
            &json!({"message": "more"}),
        ),
        409,
        "finished task",
    );
    expect(
        daemon.get(&format!("/api/tasks/{running}/diff")),
        409,
        "finishes",
    );
    let cancelled = daemon.post(&format!("/api/tasks/{running}/cancel"), &json!({}));
    assert_eq!(cancelled.status, 202, "{}", cancelled.body);
    assert_eq!(
        daemon.wait(&running, Duration::from_secs(10))["status"],
        "cancelled"
    );
}

#[test]
fn a_running_task_is_cancelled_within_two_seconds_and_its_commands_killed() {
    // A duration no other process on the machine sleeps for, to find this one by.
    let marker = "61.2345";
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![tool(
        "shell",
        json!({"command": format!("sleep {marker}")}),
    )]);
    let daemon = Daemon::start(&world, &["--workers", "1"]);
    let id = daemon.submit(&world.repo, "sleep", &["true"]);
    // Wait for the command to be running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !process_running(marker) {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = Instant::now();
    let response = daemon.post(&format!("/api/tasks/{id}/cancel"), &json!({}));
    assert_eq!(response.status, 202, "{}", response.body);
    let task = daemon.wait(&id, Duration::from_secs(10));
    let took = asked.elapsed();
    assert_eq!(task["status"], "cancelled", "{task}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(!process_running(marker), "the sandboxed command survived");
    let kinds: Vec<_> = daemon
        .events(&id)
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert!(kinds.contains(&json!("cancel_requested")), "{kinds:?}");
}

fn process_running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().any(|entry| {
        let path = entry.unwrap().path().join("cmdline");
        std::fs::read(path).is_ok_and(|cmdline| {
            let cmdline = String::from_utf8_lossy(&cmdline);
            let args: Vec<&str> = cmdline.split('\0').collect();
            args.len() >= 2 && args[0].ends_with("sleep") && args[1] == marker
        })
    })
}

#[test]
fn sse_resumes_after_a_reconnect_with_no_gap_and_no_duplicate() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        tool("shell", json!({"command": "echo one"})),
        ScriptedReply::Delayed(
            Duration::from_millis(800),
            Box::new(tool("shell", json!({"command": "echo two"}))),
        ),
        ScriptedReply::Delayed(Duration::from_millis(800), Box::new(finish("done"))),
    ]);
    let daemon = Daemon::start(&world, &["--workers", "1"]);
    let id = daemon.submit(&world.repo, "echo", &["true"]);
    let path = format!("/api/tasks/{id}/events/stream");
    let mut first = EventStream::open(daemon.addr, &path, &daemon.token, None);
    assert_eq!(first.status, 200);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let (id, event) = first.next_event().expect("events before the reconnect");
        assert_eq!(event["seq"], id);
        seen.push(id);
    }
    drop(first); // the connection drops mid-task
    let mut second = EventStream::open(daemon.addr, &path, &daemon.token, seen.last().copied());
    let mut last = Value::Null;
    while let Some((id, event)) = second.next_event() {
        seen.push(id);
        last = event;
    }
    assert_eq!(
        last["type"], "task_finished",
        "the stream ends with the task"
    );
    let expected: Vec<u64> = (1..=seen.len() as u64).collect();
    assert_eq!(seen, expected, "gap or duplicate");
    assert_eq!(seen.len(), daemon.events(&id).len());
    // A stream opened after the end replays and ends.
    let mut replay = EventStream::open(daemon.addr, &path, &daemon.token, Some(2));
    let mut count = 0;
    while replay.next_event().is_some() {
        count += 1;
    }
    assert_eq!(count, seen.len() - 2);
}

#[test]
fn a_follow_up_continues_the_task_on_its_branch() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![
        write_and_finish("first.txt", "1\n"),
        write_and_finish("second.txt", "2\n"),
    ]);
    let daemon = Daemon::start(&world, &["--workers", "1"]);
    let id = daemon.submit(&world.repo, "write first", &["test -f first.txt"]);
    let first = daemon.wait(&id, Duration::from_secs(60));
    assert_eq!(first["status"], "succeeded", "{first}");
    let first_commit = first["result"]["commit"].as_str().unwrap().to_owned();

    let response = daemon.post(
        &format!("/api/tasks/{id}/messages"),
        &json!({"message": "Also write second.txt"}),
    );
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(response.json()["status"], "queued");
    let second = daemon.wait(&id, Duration::from_secs(60));
    assert_eq!(second["status"], "succeeded", "{second}");
    let branch = format!("nightshift/{id}");
    assert_eq!(second["branch"], branch);
    // The new commit sits on top of the first, on the same branch.
    assert_eq!(
        git(&world.repo, &["rev-parse", &format!("{branch}~1")]),
        first_commit
    );
    assert_eq!(
        git(&world.repo, &["show", &format!("{branch}:first.txt")]),
        "1"
    );
    assert_eq!(
        git(&world.repo, &["show", &format!("{branch}:second.txt")]),
        "2"
    );
    // The model saw the follow-up and the earlier summary.
    let requests = world.server().requests();
    let prompt = requests.last().unwrap()["messages"].to_string();
    assert!(prompt.contains("Also write second.txt"), "{prompt}");
    assert!(prompt.contains("wrote first.txt"), "{prompt}");
    // The diff covers both turns.
    let diff = daemon.get(&format!("/api/tasks/{id}/diff"));
    assert_eq!(diff.status, 200);
    assert!(diff.body.contains("+++ b/first.txt") && diff.body.contains("+++ b/second.txt"));
}

#[test]
fn kill_9_mid_run_then_restart_loses_nothing_and_finishes_every_task() {
    const TASKS: usize = 6;
    // Every reply is slow enough that the kill lands mid-run for some tasks.
    let world = World::new(&[("a.txt", "a\n")]).with_script(
        (0..TASKS * 2)
            .map(|_| {
                ScriptedReply::Delayed(
                    Duration::from_millis(400),
                    Box::new(write_and_finish("out.txt", "x\n")),
                )
            })
            .collect(),
    );
    let daemon = Daemon::start(&world, &["--workers", "2", "--lease", "2s"]);
    let token = daemon.token.clone();
    let ids: Vec<String> = (0..TASKS)
        .map(|n| daemon.submit(&world.repo, &format!("task {n}"), &["test -f out.txt"]))
        .collect();
    // Kill once some task is mid-run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ids.iter().any(|id| daemon.task(id)["status"] == "running") {
        assert!(Instant::now() < deadline, "no task started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before: Vec<Vec<Value>> = ids.iter().map(|id| daemon.events(id)).collect();
    daemon.kill();

    let daemon = Daemon::start_with_token(&world, &["--workers", "2", "--lease", "2s"], token);
    for (id, before) in ids.iter().zip(&before) {
        let task = daemon.wait(id, Duration::from_secs(120));
        assert_eq!(task["status"], "succeeded", "{task}");
        let after = daemon.events(id);
        // Every event acknowledged before the crash is still there, unchanged.
        assert_eq!(&after[..before.len()], &before[..], "task {id}");
        // One run at a time: turns never interleave (a new `running` state comes only after
        // the previous run's events, and the task finished exactly once).
        let finished = after
            .iter()
            .filter(|e| e["type"] == "task_finished")
            .count();
        assert_eq!(finished, 1, "task {id}: {after:?}");
        let seqs: Vec<u64> = after.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=after.len() as u64).collect::<Vec<_>>());
    }
    let resumed = ids
        .iter()
        .filter(|id| {
            daemon.events(id).iter().any(|e| {
                e["type"] == "notice" && e["message"].as_str().unwrap().contains("lease lapsed")
            })
        })
        .count();
    assert!(
        resumed >= 1,
        "the kill interrupted no task: the test proved nothing"
    );
    assert!(
        worktrees(&world).is_empty(),
        "leaked: {:?}",
        worktrees(&world)
    );
    let listed = git(&world.repo, &["worktree", "list", "--porcelain"]);
    assert_eq!(listed.matches("worktree ").count(), 1, "{listed}");
}

#[test]
fn a_queued_task_is_cancelled_at_once_even_while_every_worker_is_busy() {
    let world = World::new(&[("a.txt", "a\n")]).with_script(vec![ScriptedReply::Delayed(
        Duration::from_secs(30),
        Box::new(finish("late")),
    )]);
    let daemon = Daemon::start(&world, &["--workers", "1"]);
    let busy = daemon.submit(&world.repo, "keeps the worker busy", &["true"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon.task(&busy)["status"] != "running" {
        assert!(Instant::now() < deadline, "the first task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let queued = daemon.submit(&world.repo, "waits in the queue", &["true"]);
    let response = daemon.post(&format!("/api/tasks/{queued}/cancel"), &json!({}));
    assert_eq!(response.status, 202, "{}", response.body);
    // Cancelled by the API itself: no worker was free to do it.
    assert_eq!(response.json()["status"], "cancelled", "{}", response.body);
    assert_eq!(daemon.task(&busy)["status"], "running");
    let kinds: Vec<Value> = daemon
        .events(&queued)
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            json!("task_created"),
            json!("cancel_requested"),
            json!("state_changed"),
            json!("task_finished")
        ]
    );
    let stopped = daemon.post(&format!("/api/tasks/{busy}/cancel"), &json!({}));
    assert_eq!(stopped.status, 202);
    assert_eq!(
        daemon.wait(&busy, Duration::from_secs(10))["status"],
        "cancelled"
    );
}
