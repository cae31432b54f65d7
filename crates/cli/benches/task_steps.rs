//! Nightshift's own overhead per tool step and at startup, with a scripted model that answers
//! instantly, on a generated repository of 10,000 files.
//!
//! Run: `cargo bench -p nightshift-cli --bench task_steps` (results go in docs/BENCHMARKS.md).
//!
//! "Own time" of a step is the time from the scripted server finishing one answer to it
//! receiving the next request: tool execution, sandboxing, event persistence, prompt assembly
//! and request encoding. Startup is from spawning the binary to the first request arriving.
//! The worktree is checked out while the first request is in flight, so the first step also
//! waits for whatever remains of the checkout (disk-bound: it varies with the machine's
//! writeback); it is reported on its own line.
//! References measured in the same run: a plain spawn of `true`, and a spawn of
//! `nightshift --version` (the process-startup floor).

#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark spawns processes and prints its figures"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nightshift_testkit::{ScriptedReply, ScriptedServer};
use serde_json::json;

const FILES: usize = 10_000;
const RUNS: usize = 5;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let started = Instant::now();
    generate_repo(&repo);
    println!(
        "generated {FILES}-file repository in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut startup = Vec::new();
    let mut first_steps = Vec::new();
    let mut steps = Vec::new();
    for run in 0..RUNS {
        let (first, own) = one_task(dir.path(), &repo, run);
        startup.push(first);
        first_steps.push(own[0]);
        steps.extend_from_slice(&own[1..]);
    }
    let spawn_true = reference(|| {
        Command::new("true").status().unwrap();
    });
    let spawn_version = reference(|| {
        Command::new(env!("CARGO_BIN_EXE_nightshift"))
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .unwrap();
    });

    println!("\nnightshift task_steps benchmark ({RUNS} runs of a 20-step task, {FILES} files)");
    report("startup → first model request", &mut startup);
    report("own time per tool step (steps 2-20)", &mut steps);
    report(
        "first step (includes the rest of the checkout)",
        &mut first_steps,
    );
    report("reference: plain spawn of `true`", &mut spawn_true.clone());
    report(
        "reference: spawn of `nightshift --version`",
        &mut spawn_version.clone(),
    );
    let startup_median = median(&mut startup);
    let step_median = median(&mut steps);
    println!(
        "\nratios: startup / `nightshift --version` = {:.1}x; step / spawn of `true` = {:.1}x",
        ratio(startup_median, median(&mut spawn_version.clone())),
        ratio(step_median, median(&mut spawn_true.clone())),
    );
    println!(
        "targets: startup ≤ 150 ms: {}; step median ≤ 50 ms: {}",
        verdict(startup_median <= Duration::from_millis(150)),
        verdict(step_median <= Duration::from_millis(50)),
    );
}

/// Runs one scripted 20-step task; returns startup latency and the own time of each step.
fn one_task(dir: &Path, repo: &Path, run: usize) -> (Duration, Vec<Duration>) {
    let target = format!("src/m{:02}/f{:03}.rs", run, 7);
    let script = vec![
        tool("list_files", json!({})),
        tool("search", json!({"pattern": "fn value_42\\b"})),
        tool("read_file", json!({"path": target})),
        tool(
            "edit_file",
            json!({"path": target, "old_string": "fn value_7()", "new_string": "fn value_seven()"}),
        ),
        tool("shell", json!({"command": "git status --short | head"})),
        tool("list_files", json!({"path": "src/m01"})),
        tool("search", json!({"pattern": "value_seven"})),
        tool("read_file", json!({"path": "README.md"})),
        tool(
            "write_file",
            json!({"path": "NOTES.md", "content": "benchmark notes\n"}),
        ),
        tool("shell", json!({"command": "ls src | wc -l"})),
        tool(
            "read_file",
            json!({"path": target, "start_line": 1, "end_line": 3}),
        ),
        tool(
            "search",
            json!({"pattern": "struct S[0-9]+", "path": "src/m02"}),
        ),
        tool(
            "edit_file",
            json!({"path": "NOTES.md", "old_string": "benchmark", "new_string": "bench"}),
        ),
        tool("shell", json!({"command": "true"})),
        tool("list_files", json!({"path": "src/m03"})),
        tool("read_file", json!({"path": "src/m04/f004.rs"})),
        tool("search", json!({"pattern": "TODO"})),
        tool(
            "write_file",
            json!({"path": "src/new.rs", "content": "pub fn new() {}\n"}),
        ),
        tool("shell", json!({"command": "cat NOTES.md"})),
        tool("finish", json!({"summary": "benchmark task done"})),
    ];
    let server = ScriptedServer::start(script);
    let home = dir.join(format!("home-{run}"));
    let spawned = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args(["run", "--json", "--max-steps", "25", "--repo"])
        .arg(repo)
        .arg("Rename value_7 to value_seven and take notes")
        .env("NIGHTSHIFT_HOME", &home)
        .env("NIGHTSHIFT_BASE_URL", server.base_url())
        .env("NIGHTSHIFT_MODEL", "scripted")
        .env("NIGHTSHIFT_QUIET", "1")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "benchmark task failed: {status}");
    let log = server.request_log();
    assert_eq!(log.len(), 20, "every scripted step was requested");
    let startup = log[0].received - spawned;
    let own: Vec<Duration> = log
        .windows(2)
        .map(|pair| pair[1].received - pair[0].answered)
        .collect();
    let slowest = own.iter().enumerate().skip(1).max_by_key(|(_, d)| **d);
    if let Some((step, took)) = slowest {
        println!(
            "run {run}: startup {:.1} ms; first step {:.1} ms; slowest later step {} ({}) {:.1} ms",
            ms(startup),
            ms(own[0]),
            step + 1,
            STEP_TOOLS[step],
            ms(*took)
        );
    }
    (startup, own)
}

/// The tool each step calls, for the report (matches the script above).
const STEP_TOOLS: [&str; 20] = [
    "list_files",
    "search",
    "read_file",
    "edit_file",
    "shell",
    "list_files",
    "search",
    "read_file",
    "write_file",
    "shell",
    "read_file",
    "search",
    "edit_file",
    "shell",
    "list_files",
    "read_file",
    "search",
    "write_file",
    "shell",
    "finish",
];

fn tool(name: &str, args: serde_json::Value) -> ScriptedReply {
    ScriptedReply::ToolCalls(vec![(name.to_owned(), args)])
}

fn generate_repo(repo: &Path) {
    for i in 0..FILES {
        let path = repo.join(format!("src/m{:02}/f{:03}.rs", i / 100, i % 100));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let body = format!(
            "pub struct S{i};\n\npub fn value_{n}() -> u32 {{\n    {i}\n}}\n",
            n = i % 100
        );
        std::fs::write(path, body).unwrap();
    }
    std::fs::write(repo.join("README.md"), "# generated\n").unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "generated"]);
}

fn reference(mut f: impl FnMut()) -> Vec<Duration> {
    (0..50)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn report(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "{label:<44} n={:<4} min {:>7.2} ms  median {:>7.2} ms  p90 {:>7.2} ms  max {:>7.2} ms",
        samples.len(),
        ms(samples[0]),
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(samples[samples.len() - 1]),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}
