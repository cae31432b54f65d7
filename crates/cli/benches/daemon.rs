//! The daemon under load (issue 4): 200 tasks of 5 scripted steps each, submitted at once over
//! the HTTP API to the real `nightshift serve --workers 8 --sandbox bwrap`, with real git and
//! bubblewrap, against the scripted model server (which answers at once, so every figure is
//! Nightshift's own time).
//!
//! Run: `cargo bench -p nightshift-cli --bench daemon` (results go in docs/BENCHMARKS.md).
//!
//! Measured: tasks per minute (200 / first submit → last `task_finished`); submit → first model
//! request, split at the task's `running` event into queue wait and the daemon's own pickup
//! time; SSE delivery latency (receive time − the event's `ts`) on every 5th task, 40 streams
//! open at once; the daemon's peak RSS (VmHWM; sandboxed commands are other processes).
//! Two closed-loop phases follow on the same daemon, each submitting a task as another
//! finishes: 40 tasks with 8 in flight, then 10 one at a time, so submit → first request is
//! also measured with a free worker (the burst's figure is mostly queue wait). SSE deliveries
//! over the 50 ms target are counted by event type, to show where the tail comes from.
//! Reference in the same run: `nightshift run` of the same task, one at a time, 5 runs before
//! the daemon and 5 after; the ratios compare the daemon's per-task cost with it.
//! Tasks that fail and streams that end early are listed, not hidden.

#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark spawns processes and prints its figures"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nightshift_testkit::{ScriptedReply, ScriptedServer, fixture_repo};

// The tests' small HTTP client; the bench keeps its own SSE reader, which timestamps chunks.
#[allow(dead_code, reason = "the bench needs only the plain request")]
#[path = "../tests/suite/http.rs"]
mod http;
use serde_json::{Value, json};

const TASKS: usize = 200;
const STEPS: usize = 5;
const WORKERS: usize = 8;
/// Every FOLLOW_EVERY-th burst task is followed over SSE: 40 streams.
const FOLLOW_EVERY: usize = 5;
/// Tasks in the second phase (8 in flight, a free worker at each submit).
const PACED: usize = 40;
/// Tasks in the last phase, one at a time on an otherwise idle daemon.
const SINGLE: usize = 10;
/// `nightshift run` reference runs before the daemon, and as many after.
const REFERENCE_HALF: usize = 5;
const BURST: &str = "bench task ";
const PACED_GOAL: &str = "paced task ";
const SINGLE_GOAL: &str = "single task ";
const REFERENCE: &str = "reference task ";
const CHECK: &str = "test -f done.txt";

fn main() {
    let load_before = load_average();
    let tick = clock_ticks_per_second();
    let dir = tempfile::tempdir().unwrap();
    let repo = fixture_repo(
        &dir.path().join("repo"),
        &[
            ("README.md", "# bench\n"),
            ("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n"),
        ],
    );

    let reference_server = ScriptedServer::start_per_conversation(script());
    let reference_home = dir.path().join("home-reference");
    let mut reference: Vec<ReferenceRun> = (0..REFERENCE_HALF)
        .map(|n| reference_run(&reference_home, &repo, &reference_server, n, tick))
        .collect();

    let server = ScriptedServer::start_per_conversation(script());
    let daemon = Daemon::start(&dir.path().join("home-daemon"), &server);
    let idle = usage(daemon.pid(), tick);
    let burst = burst(&daemon, &repo, &server);
    let after_burst = usage(daemon.pid(), tick);
    let paced = in_flight(&daemon, &repo, &server, PACED_GOAL, PACED, WORKERS);
    let single = in_flight(&daemon, &repo, &server, SINGLE_GOAL, SINGLE, 1);
    let end = usage(daemon.pid(), tick);
    let status = daemon.stop();
    assert!(
        status.success(),
        "the daemon did not stop cleanly: {status}"
    );

    reference.extend(
        (REFERENCE_HALF..2 * REFERENCE_HALF)
            .map(|n| reference_run(&reference_home, &repo, &reference_server, n, tick)),
    );
    print_report(
        &burst,
        [&paced, &single],
        &reference,
        [idle, after_burst, end],
    );
    // Other work on the machine moves every figure here; this says how busy it was.
    println!(
        "\nload average (1 min) at the start: {load_before}; at the end: {}",
        load_average()
    );
}

/// The same five steps for every conversation: four sandboxed commands, then a reply that
/// writes the file the check looks for and finishes.
fn script() -> Vec<ScriptedReply> {
    let shell = |command: &str| {
        ScriptedReply::ToolCalls(vec![("shell".to_owned(), json!({ "command": command }))])
    };
    vec![
        shell("echo step 1"),
        shell("echo step 2 > notes.txt"),
        shell("cat notes.txt"),
        shell("ls -la"),
        ScriptedReply::ToolCalls(vec![
            (
                "write_file".to_owned(),
                json!({"path": "done.txt", "content": "done\n"}),
            ),
            ("finish".to_owned(), json!({"summary": "wrote done.txt"})),
        ]),
    ]
}

fn goal(marker: &str, n: usize) -> String {
    format!("{marker}{n:03}: run four commands, then write done.txt")
}

/// `nightshift` with a private home, pointed at the scripted server.
fn nightshift(home: &Path, server: &ScriptedServer) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nightshift"));
    for name in [
        "NIGHTSHIFT_API_KEY",
        "NIGHTSHIFT_DATABASE_URL",
        "NIGHTSHIFT_URL",
        "NIGHTSHIFT_TOKEN",
    ] {
        command.env_remove(name);
    }
    command
        .env("NIGHTSHIFT_HOME", home)
        .env("NIGHTSHIFT_BASE_URL", server.base_url())
        .env("NIGHTSHIFT_MODEL", "scripted");
    command
}

// ---- the reference: `nightshift run`, one task at a time ----

struct ReferenceRun {
    wall: Duration,
    startup: Duration,
    /// CPU seconds of the run and everything it waited for (git, bubblewrap, the commands).
    cpu: f64,
}

fn reference_run(
    home: &Path,
    repo: &Path,
    server: &ScriptedServer,
    n: usize,
    tick: f64,
) -> ReferenceRun {
    let goal = goal(REFERENCE, n);
    let cpu_before = children_cpu(tick);
    let started = Instant::now();
    let output = nightshift(home, server)
        .args(["run", "--json", "--sandbox", "bwrap", "--check", CHECK])
        .arg("--repo")
        .arg(repo)
        .arg(&goal)
        .env("NIGHTSHIFT_QUIET", "1")
        .output()
        .unwrap();
    let wall = started.elapsed();
    let cpu = children_cpu(tick) - cpu_before;
    assert!(
        output.status.success(),
        "reference run {n} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["status"], "succeeded", "reference run {n}: {result}");
    let first = conversations(server, REFERENCE)[&n];
    assert_eq!(first.requests, STEPS, "reference run {n}: requests");
    ReferenceRun {
        wall,
        startup: first.first - started,
        cpu,
    }
}

// ---- the daemon ----

/// A running `nightshift serve`; killed on drop if not stopped.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    token: String,
}

impl Daemon {
    fn start(home: &Path, server: &ScriptedServer) -> Daemon {
        let token = nightshift(home, server)
            .args(["token", "create"])
            .output()
            .unwrap();
        assert!(
            token.status.success(),
            "token create: {}",
            String::from_utf8_lossy(&token.stderr)
        );
        let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
        let mut child = nightshift(home, server)
            .args(["serve", "--listen", "127.0.0.1:0", "--sandbox", "bwrap"])
            .args(["--workers", &WORKERS.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the daemon exited before serving")
                .unwrap();
            if let Some(rest) = line.split("serving http://").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // Keep draining stderr so the daemon never blocks on a full pipe; show its complaints.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line.contains("WARN") || line.contains("ERROR") {
                    println!("daemon: {line}");
                }
            }
        });
        Daemon { child, addr, token }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn auth(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }

    fn get(&self, path: &str) -> Value {
        let response = http::request(self.addr, "GET", path, &[&self.auth()], None);
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.json()
    }

    /// POSTs a task; returns its id.
    fn submit(&self, repo: &Path, goal: &str) -> String {
        let body = json!({"repo": repo, "goal": goal, "checks": [CHECK]}).to_string();
        let response = http::request(
            self.addr,
            "POST",
            "/api/tasks",
            &[&self.auth(), "Content-Type: application/json"],
            Some(body.as_bytes()),
        );
        assert_eq!(response.status, 201, "POST /api/tasks: {}", response.body);
        response.json()["id"].as_str().unwrap().to_owned()
    }

    /// SIGTERM, then waits for the exit.
    fn stop(mut self) -> ExitStatus {
        let pid = self.pid().to_string();
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

/// One task as the benchmark saw it.
struct Task {
    id: String,
    submitted: Instant,
    /// Wall-clock ms of `submitted`, to compare with the events' `ts`.
    submitted_ms: f64,
    /// The POST's answer time.
    post: Duration,
}

struct Phase {
    tasks: Vec<Task>,
    /// First submit → last `task_finished`.
    span: Duration,
    succeeded: usize,
    requests: usize,
    /// Per task, in ms.
    submit_to_first: Vec<f64>,
    queue_wait: Vec<f64>,
    pickup_to_first: Vec<f64>,
    sse: Vec<f64>,
    /// Deliveries slower than the SSE target, by event type, most first.
    slow_sse: Vec<(String, usize)>,
    streams: usize,
    /// What went wrong with tasks that did not succeed, for the report.
    failures: Vec<String>,
    /// Tasks in flight at once in a closed-loop phase (0 for the burst).
    at_once: usize,
}

fn submit_timed(daemon: &Daemon, repo: &Path, goal: &str) -> Task {
    let submitted_ms = wall_ms(SystemTime::now());
    let submitted = Instant::now();
    let id = daemon.submit(repo, goal);
    Task {
        id,
        submitted,
        submitted_ms,
        post: submitted.elapsed(),
    }
}

/// 200 tasks submitted back to back; waits for all to finish.
fn burst(daemon: &Daemon, repo: &Path, server: &ScriptedServer) -> Phase {
    let mut tasks = Vec::new();
    let mut followers = Vec::new();
    for n in 0..TASKS {
        let task = submit_timed(daemon, repo, &goal(BURST, n));
        if n % FOLLOW_EVERY == 0 {
            followers.push(spawn_follower(daemon, &task.id, None));
        }
        tasks.push(task);
    }
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let open = daemon.get("/api/tasks?status=queued,running,verifying&limit=500");
        if open["tasks"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tasks still open after 30 minutes"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let followed: Vec<Followed> = followers.into_iter().map(|f| f.join().unwrap()).collect();
    phase(daemon, server, BURST, tasks, followed)
}

/// `count` tasks, `at_once` in flight: a new one is submitted as soon as one finishes (its
/// event stream ends), so a worker is free at every submit.
fn in_flight(
    daemon: &Daemon,
    repo: &Path,
    server: &ScriptedServer,
    marker: &str,
    count: usize,
    at_once: usize,
) -> Phase {
    let (done_tx, done_rx) = mpsc::channel();
    let mut tasks = Vec::new();
    let mut followers = Vec::new();
    let mut finished = Vec::new();
    while finished.len() < count {
        while tasks.len() < count && tasks.len() - finished.len() < at_once {
            let task = submit_timed(daemon, repo, &goal(marker, tasks.len()));
            followers.push(spawn_follower(daemon, &task.id, Some(done_tx.clone())));
            tasks.push(task);
        }
        let id: String = done_rx
            .recv_timeout(Duration::from_secs(600))
            .expect("a task finished within 10 minutes");
        finished.push(id);
    }
    let followed: Vec<Followed> = followers.into_iter().map(|f| f.join().unwrap()).collect();
    let mut phase = phase(daemon, server, marker, tasks, followed);
    phase.at_once = at_once;
    phase
}

/// Collects a finished phase's figures from the API, the events and the model server's log.
fn phase(
    daemon: &Daemon,
    server: &ScriptedServer,
    marker: &str,
    tasks: Vec<Task>,
    followed: Vec<Followed>,
) -> Phase {
    // A task's row turns final one event before its `task_finished` is appended (and its
    // stream may end in between); let that last event land before reading the events.
    std::thread::sleep(Duration::from_millis(500));
    let seen = conversations(server, marker);
    let anchor = (Instant::now(), wall_ms(SystemTime::now()));
    let wall_of = |at: Instant| anchor.1 - ms(anchor.0 - at);
    let mut phase = Phase {
        span: Duration::ZERO,
        succeeded: 0,
        requests: seen.values().map(|c| c.requests).sum(),
        submit_to_first: Vec::new(),
        queue_wait: Vec::new(),
        pickup_to_first: Vec::new(),
        sse: followed
            .iter()
            .flat_map(|f| f.latencies.iter().map(|(_, ms)| *ms))
            .collect(),
        slow_sse: slow_by_type(&followed),
        streams: followed.len(),
        tasks: Vec::new(),
        failures: Vec::new(),
        at_once: 0,
    };
    let mut last_final: f64 = 0.0;
    for (n, task) in tasks.iter().enumerate() {
        let record = daemon.get(&format!("/api/tasks/{}", task.id));
        let events = daemon.get(&format!("/api/tasks/{}/events", task.id))["events"].clone();
        let events = events.as_array().unwrap();
        if record["status"] == "succeeded" {
            phase.succeeded += 1;
        } else {
            phase.failures.push(format!(
                "{marker}{n:03} ({}) ended {}: {}\n    events: {}",
                task.id,
                record["status"],
                record["result"]["reason"],
                events
                    .iter()
                    .map(|e| e["type"].as_str().unwrap_or("?"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ));
        }
        let ts_of = |kind: &str, to: Option<&str>| {
            events
                .iter()
                .find(|e| e["type"] == kind && to.is_none_or(|to| e["to"] == to))
                .map(|e| parse_ts(e["ts"].as_str().unwrap()))
        };
        let (Some(running), Some(finished)) = (
            ts_of("state_changed", Some("running")),
            ts_of("task_finished", None),
        ) else {
            phase
                .failures
                .push(format!("{marker}{n:03}: no running or task_finished event"));
            continue;
        };
        last_final = last_final.max(finished);
        let Some(conversation) = seen.get(&n) else {
            phase
                .failures
                .push(format!("{marker}{n:03}: no model request"));
            continue;
        };
        if conversation.requests != STEPS {
            phase.failures.push(format!(
                "{marker}{n:03}: {} model requests, not {STEPS}",
                conversation.requests
            ));
        }
        phase
            .submit_to_first
            .push(ms(conversation.first - task.submitted));
        phase.queue_wait.push(running - task.submitted_ms);
        phase
            .pickup_to_first
            .push(wall_of(conversation.first) - running);
    }
    phase.span = Duration::from_secs_f64((last_final - tasks[0].submitted_ms).max(0.0) / 1000.0);
    for cut in followed.iter().filter(|f| f.last != "task_finished") {
        phase.failures.push(format!(
            "the SSE stream of {} ended after `{}`, not `task_finished`",
            cut.id, cut.last
        ));
    }
    phase.tasks = tasks;
    phase
}

/// How many deliveries of each event type took longer than the 50 ms target.
fn slow_by_type(followed: &[Followed]) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (kind, _) in followed
        .iter()
        .flat_map(|f| &f.latencies)
        .filter(|(_, ms)| *ms > 50.0)
    {
        *counts.entry(kind.clone()).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
}

/// One conversation on the model server: when its first request arrived, and how many it made.
#[derive(Clone, Copy)]
struct Conversation {
    first: Instant,
    requests: usize,
}

/// The conversations whose goal starts with `marker`, by task number.
fn conversations(server: &ScriptedServer, marker: &str) -> HashMap<usize, Conversation> {
    let mut seen: HashMap<usize, Conversation> = HashMap::new();
    for (body, timing) in server.requests().iter().zip(server.request_log()) {
        let text = body.to_string();
        let Some(at) = text.find(marker) else {
            continue;
        };
        let digits = &text[at + marker.len()..at + marker.len() + 3];
        let n: usize = digits.parse().unwrap();
        seen.entry(n)
            .and_modify(|c| c.requests += 1)
            .or_insert(Conversation {
                first: timing.received,
                requests: 1,
            });
    }
    seen
}

// ---- SSE ----

struct Followed {
    /// Event type and receive time − `ts` in ms, for events appended after the stream opened.
    latencies: Vec<(String, f64)>,
    /// The task, and the type of the last event its stream delivered.
    id: String,
    last: String,
}

fn spawn_follower(
    daemon: &Daemon,
    id: &str,
    done: Option<mpsc::Sender<String>>,
) -> JoinHandle<Followed> {
    let (addr, token, id) = (daemon.addr, daemon.token.clone(), id.to_owned());
    std::thread::spawn(move || {
        let followed = follow(addr, &token, &id);
        if let Some(done) = done {
            let _ = done.send(id);
        }
        followed
    })
}

/// Follows one task's event stream to its end.
fn follow(addr: SocketAddr, token: &str, id: &str) -> Followed {
    // Events stamped before this were already stored when the stream opened: replay, not live.
    let opened = wall_ms(SystemTime::now()).floor();
    let mut stream = TcpStream::connect(addr).unwrap();
    // Keep-alive comments come every 15 s, so a quiet stream still reads something.
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let head = format!(
        "GET /api/tasks/{id}/events/stream HTTP/1.1\r\nHost: {addr}\r\n\
         Accept: text/event-stream\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let (status, chunked) = read_head(&mut reader);
    // An endless body over HTTP/1.1 is always chunked; a chunk boundary is also when the
    // event's bytes arrived.
    assert!(status == 200 && chunked, "SSE stream for {id}: {status}");
    let mut followed = Followed {
        latencies: Vec::new(),
        id: id.to_owned(),
        last: "nothing".to_owned(),
    };
    let mut pending: Vec<u8> = Vec::new();
    while let Some(piece) = read_chunk(&mut reader) {
        let received = wall_ms(SystemTime::now());
        pending.extend_from_slice(&piece);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = pending.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&block);
            // Keep-alive comments carry no data.
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let event: Value = serde_json::from_str(data.trim()).unwrap();
            let ts = parse_ts(event["ts"].as_str().unwrap());
            followed.last = event["type"].as_str().unwrap_or("?").to_owned();
            if ts >= opened {
                followed
                    .latencies
                    .push((followed.last.clone(), received - ts));
            }
        }
    }
    followed
}

// ---- HTTP/1.1 over a plain TCP stream ----

/// The status code, and whether the body is chunked.
fn read_head(reader: &mut impl BufRead) -> (u16, bool) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {line:?}"));
    let mut chunked = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            return (status, chunked);
        }
        chunked |= line.starts_with("transfer-encoding:") && line.contains("chunked");
    }
}

/// The next chunk of a chunked body; `None` at its end (or when the connection drops).
fn read_chunk(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size = String::new();
    if reader.read_line(&mut size).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    Some(chunk)
}

// ---- /proc ----

#[derive(Clone, Copy)]
struct Usage {
    peak_rss_kib: u64,
    rss_kib: u64,
    /// CPU seconds of the daemon itself, and of the children it waited for.
    cpu_own: f64,
    cpu_children: f64,
}

fn usage(pid: u32, tick: f64) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    let times = stat_times(&format!("/proc/{pid}/stat"), tick);
    Usage {
        peak_rss_kib: field("VmHWM:"),
        rss_kib: field("VmRSS:"),
        cpu_own: times[0] + times[1],
        cpu_children: times[2] + times[3],
    }
}

/// utime, stime, cutime, cstime in seconds.
fn stat_times(path: &str, tick: f64) -> [f64; 4] {
    let stat = std::fs::read_to_string(path).unwrap();
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let at = |field: usize| rest[field - 3].parse::<f64>().unwrap() / tick;
    [at(14), at(15), at(16), at(17)]
}

/// CPU seconds of this process's waited-for children (and theirs).
fn children_cpu(tick: f64) -> f64 {
    let times = stat_times("/proc/self/stat", tick);
    times[2] + times[3]
}

fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg.split_whitespace().next().unwrap_or("?").to_owned()
}

fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}

// ---- time ----

fn wall_ms(at: SystemTime) -> f64 {
    ms(at.duration_since(UNIX_EPOCH).unwrap())
}

/// An event's `ts` (RFC 3339 UTC, milliseconds) as wall-clock ms.
fn parse_ts(ts: &str) -> f64 {
    wall_ms(humantime::parse_rfc3339(ts).unwrap_or_else(|e| panic!("bad ts {ts:?}: {e}")))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---- the report ----

fn pct(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn row(label: &str, samples: &[f64], target: &str) {
    println!(
        "{label:<52} {:>5} {:>9.1} {:>9.1} {:>9.1}  {target}",
        samples.len(),
        pct(samples, 0.5),
        pct(samples, 0.99),
        pct(samples, 1.0),
    );
}

fn print_slow(phase: &Phase) {
    let kinds: Vec<String> = phase
        .slow_sse
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !kinds.is_empty() {
        println!(
            "  deliveries over 50 ms by event type: {}",
            kinds.join(", ")
        );
    }
}

fn print_report(burst: &Phase, closed: [&Phase; 2], reference: &[ReferenceRun], usage: [Usage; 3]) {
    let [idle, after_burst, end] = usage;
    let per_minute = TASKS as f64 / burst.span.as_secs_f64() * 60.0;
    let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
    let peak = mb(end.peak_rss_kib);
    let posts = |phase: &Phase| -> Vec<f64> { phase.tasks.iter().map(|t| ms(t.post)).collect() };
    let first_target =
        |samples: &[f64]| format!("p50 ≤ 100 ms: {}", verdict(pct(samples, 0.5) <= 100.0));

    println!(
        "\nnightshift daemon benchmark: {TASKS} tasks × {STEPS} scripted steps, {WORKERS} workers, \
         --sandbox bwrap, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "burst: {}/{TASKS} tasks succeeded {}; {}/{} model requests {}",
        burst.succeeded,
        verdict(burst.succeeded == TASKS),
        burst.requests,
        TASKS * STEPS,
        verdict(burst.requests == TASKS * STEPS),
    );
    for phase in closed {
        println!(
            "{} in flight: {}/{} succeeded, {}/{} model requests",
            phase.at_once,
            phase.succeeded,
            phase.tasks.len(),
            phase.requests,
            phase.tasks.len() * STEPS
        );
    }
    for failure in closed
        .iter()
        .flat_map(|p| &p.failures)
        .chain(&burst.failures)
    {
        println!("  {failure}");
    }
    println!(
        "tasks per minute: {per_minute:.1} ({TASKS} tasks in {:.1} s, first submit → last final)",
        burst.span.as_secs_f64()
    );
    println!(
        "\n{:<52} {:>5} {:>9} {:>9} {:>9}  target",
        "figure (ms)", "n", "p50", "p99", "max"
    );
    row(
        "burst: submit → first model request",
        &burst.submit_to_first,
        &first_target(&burst.submit_to_first),
    );
    row("  queue wait (submit → running)", &burst.queue_wait, "");
    row(
        "  pickup (running → first request)",
        &burst.pickup_to_first,
        "",
    );
    row(
        &format!("burst: SSE delivery latency ({} streams)", burst.streams),
        &burst.sse,
        &format!("p99 ≤ 50 ms: {}", verdict(pct(&burst.sse, 0.99) <= 50.0)),
    );
    print_slow(burst);
    row("burst: POST /api/tasks answer time", &posts(burst), "");
    for phase in closed {
        let label = format!("{} in flight:", phase.at_once);
        row(
            &format!("{label} submit → first model request"),
            &phase.submit_to_first,
            &first_target(&phase.submit_to_first),
        );
        row("  POST /api/tasks answer time", &posts(phase), "");
        row("  submit → running (POST + claim)", &phase.queue_wait, "");
        row(
            "  pickup (running → first request)",
            &phase.pickup_to_first,
            "",
        );
        row(
            &format!("{label} SSE delivery latency ({} streams)", phase.streams),
            &phase.sse,
            "",
        );
        print_slow(phase);
    }
    println!(
        "\ndaemon peak RSS (VmHWM, {} tasks run): {peak:.1} MB; target ≤ 150 MB: {}",
        TASKS + closed.iter().map(|p| p.tasks.len()).sum::<usize>(),
        verdict(peak <= 150.0)
    );
    println!(
        "daemon RSS idle {:.1} MB, after the burst {:.1} MB, at the end {:.1} MB",
        mb(idle.rss_kib),
        mb(after_burst.rss_kib),
        mb(end.rss_kib),
    );

    let ref_wall: Vec<f64> = reference.iter().map(|r| ms(r.wall)).collect();
    let ref_startup: Vec<f64> = reference.iter().map(|r| ms(r.startup)).collect();
    let ref_cpu: Vec<f64> = reference.iter().map(|r| r.cpu * 1000.0).collect();
    println!("\nreference: `nightshift run` of the same task, one at a time");
    row("reference: wall time per task", &ref_wall, "");
    row("reference: start → first model request", &ref_startup, "");
    row("reference: CPU per task (with its children)", &ref_cpu, "");
    let own = (after_burst.cpu_own - idle.cpu_own) / TASKS as f64 * 1000.0;
    let children = (after_burst.cpu_children - idle.cpu_children) / TASKS as f64 * 1000.0;
    let wall_per_task = ms(burst.span) / TASKS as f64;
    println!(
        "\nburst, per task: wall {wall_per_task:.1} ms (= span / {TASKS}); CPU {:.1} ms \
         (daemon {own:.1} ms + children {children:.1} ms)",
        own + children
    );
    println!(
        "ratios to the reference median: wall per task {:.2}x; CPU per task {:.2}x; \
         burst pickup p50 / `nightshift run` startup p50 {:.2}x",
        wall_per_task / pct(&ref_wall, 0.5),
        (own + children) / pct(&ref_cpu, 0.5),
        pct(&burst.pickup_to_first, 0.5) / pct(&ref_startup, 0.5),
    );
}
