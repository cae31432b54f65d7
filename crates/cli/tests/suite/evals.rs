//! The eval suite in `evals/`: every task is well formed, fails as shipped and passes with its
//! solution (checks run with plain `sh -c`, no model), and the `evals/run` runner drives the
//! real binary against the scripted model server and reports what happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use nightshift_testkit::ScriptedServer;
use serde::Deserialize;
use serde_json::{Value, json};

use super::harness::{finish, tool, tool_results};

const KINDS: [&str; 7] = [
    "bugfix", "feature", "stub", "rename", "docs", "refactor", "exercise",
];

/// `task.toml`, as the runner reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    goal: String,
    checks: Vec<String>,
    language: String,
    kind: String,
    max_steps: Option<u32>,
    #[serde(default)]
    protected: Vec<String>,
}

struct Task {
    name: String,
    dir: PathBuf,
    spec: TaskFile,
}

fn evals_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../evals")
        .canonicalize()
        .unwrap()
}

fn tasks() -> Vec<Task> {
    let mut tasks: Vec<Task> = std::fs::read_dir(evals_dir().join("tasks"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|dir| {
            let text = std::fs::read_to_string(dir.join("task.toml"))
                .unwrap_or_else(|e| panic!("{}/task.toml: {e}", dir.display()));
            let spec: TaskFile = toml::from_str(&text)
                .unwrap_or_else(|e| panic!("{}/task.toml: {e}", dir.display()));
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            Task { name, dir, spec }
        })
        .collect();
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    tasks
}

fn sh(dir: &Path, command: &str, cargo_target: &Path) -> (bool, String) {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", cargo_target)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The task's files as shipped, in a fresh git repository (so `git apply` has a root).
fn shipped_copy(task: &Task, dir: &Path) {
    copy_dir(&task.dir.join("repo"), dir);
    git(dir, &["init", "-q"]);
}

fn apply_solution(task: &Task, dir: &Path) {
    let patch = task.dir.join("solution.patch");
    git(dir, &["apply", patch.to_str().unwrap()]);
}

/// What the task's solution makes of `path`.
fn solved_file(task: &Task, path: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    shipped_copy(task, dir.path());
    apply_solution(task, dir.path());
    std::fs::read_to_string(dir.path().join(path)).unwrap()
}

#[test]
fn every_task_is_well_formed() {
    let tasks = tasks();
    assert!(
        tasks.len() >= 20,
        "at least 20 tasks, found {}",
        tasks.len()
    );
    let python = tasks.iter().filter(|t| t.spec.language == "python").count();
    let rust = tasks.iter().filter(|t| t.spec.language == "rust").count();
    assert_eq!(python + rust, tasks.len(), "every task is python or rust");
    assert!(
        python * 10 >= tasks.len() * 5 && rust * 10 >= tasks.len() * 3,
        "about 60 % python and 40 % rust: {python} python, {rust} rust"
    );
    let mut kinds = BTreeMap::new();
    for task in &tasks {
        let where_ = format!("evals/tasks/{}", task.name);
        let spec = &task.spec;
        assert!(
            KINDS.contains(&spec.kind.as_str()),
            "{where_}: kind `{}` is not one of {KINDS:?}",
            spec.kind
        );
        *kinds.entry(spec.kind.clone()).or_insert(0) += 1;
        assert!(!spec.goal.trim().is_empty(), "{where_}: empty goal");
        assert!(!spec.checks.is_empty(), "{where_}: no checks");
        assert!(
            spec.max_steps.is_none_or(|n| (4..=30).contains(&n)),
            "{where_}: max_steps {:?} out of 4..=30",
            spec.max_steps
        );
        let repo = task.dir.join("repo");
        for file in &spec.protected {
            assert!(
                repo.join(file).is_file(),
                "{where_}: protected file {file} is not in repo/"
            );
        }
        // The solution must not pass by editing what the runner treats as tampering. (Read
        // in a copy: inside this repository's checkout git would skip paths outside the cwd.)
        let copy = tempfile::tempdir().unwrap();
        shipped_copy(task, copy.path());
        let touched = git(
            copy.path(),
            &[
                "apply",
                "--numstat",
                task.dir.join("solution.patch").to_str().unwrap(),
            ],
        );
        assert!(!touched.trim().is_empty(), "{where_}: empty solution.patch");
        for line in touched.lines() {
            let path = line.split('\t').nth(2).unwrap();
            assert!(
                !spec.protected.iter().any(|p| p == path),
                "{where_}: solution.patch changes protected {path}"
            );
        }
        let ignore = std::fs::read_to_string(repo.join(".gitignore")).unwrap_or_default();
        if spec.language == "rust" {
            assert!(ignore.contains("target/"), "{where_}: .gitignore target/");
            let manifest = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
            assert!(
                manifest.contains("[workspace]") && !manifest.contains("[dependencies]\n"),
                "{where_}: a standalone crate without dependencies"
            );
            assert!(repo.join("Cargo.lock").is_file(), "{where_}: Cargo.lock");
        } else {
            assert!(
                ignore.contains("__pycache__"),
                "{where_}: .gitignore __pycache__"
            );
        }
    }
    assert_eq!(kinds.len(), KINDS.len(), "every kind has a task: {kinds:?}");
}

/// For each task of `language`: the checks fail on the shipped files and pass once
/// solution.patch is applied. Every task is tried; the failures are reported together.
fn tasks_fail_as_shipped_and_pass_when_solved(language: &str) {
    let cargo_target = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let tasks: Vec<Task> = tasks()
        .into_iter()
        .filter(|t| t.spec.language == language)
        .collect();
    assert!(!tasks.is_empty());
    for task in &tasks {
        let dir = tempfile::tempdir().unwrap();
        shipped_copy(task, dir.path());
        let shipped: Vec<(bool, String)> = task
            .spec
            .checks
            .iter()
            .map(|check| sh(dir.path(), check, cargo_target.path()))
            .collect();
        if shipped.iter().all(|(passed, _)| *passed) {
            problems.push(format!("{}: the checks already pass as shipped", task.name));
        }
        apply_solution(task, dir.path());
        for check in &task.spec.checks {
            let (passed, output) = sh(dir.path(), check, cargo_target.path());
            if !passed {
                problems.push(format!(
                    "{}: `{check}` fails with the solution:\n{output}",
                    task.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn python_tasks_fail_as_shipped_and_pass_with_their_solution() {
    tasks_fail_as_shipped_and_pass_when_solved("python");
}

#[test]
fn rust_tasks_fail_as_shipped_and_pass_with_their_solution() {
    tasks_fail_as_shipped_and_pass_when_solved("rust");
}

/// `evals/run ARGS` against `server`, with a private data directory.
fn runner(server: &ScriptedServer, args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(evals_dir().join("run"))
        .args(["--nightshift", env!("CARGO_BIN_EXE_nightshift")])
        .args(args)
        .env("NIGHTSHIFT_HOME", home.path())
        .env_remove("NIGHTSHIFT_API_KEY")
        .env("NIGHTSHIFT_MODEL", "scripted")
        .env("NIGHTSHIFT_BASE_URL", server.base_url())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn task(name: &str) -> Task {
    tasks().into_iter().find(|t| t.name == name).unwrap()
}

fn row<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .find(|line| line.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"))
        .split_whitespace()
        .collect()
}

#[test]
fn the_runner_counts_a_pass_a_failure_and_a_tampered_test_and_keeps_going() {
    let leap = solved_file(&task("py-leap"), "leap.py");
    let server = ScriptedServer::start(vec![
        // py-leap: solved through the tools.
        tool("write_file", json!({"path": "leap.py", "content": leap})),
        finish("Implemented leap_year."),
        // py-chunks: gives up without a change; the one verification round fails.
        finish("Nothing to do."),
        // py-median: makes the checks pass by gutting the tests.
        tool(
            "write_file",
            json!({"path": "test_stats.py", "content": "import unittest\n"}),
        ),
        finish("The tests pass now."),
    ]);

    let (code, stdout, stderr) = runner(
        &server,
        &[
            "--only",
            "py-leap,py-chunks,py-median",
            "--",
            "--max-verify-rounds",
            "1",
        ],
    );

    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let header = stdout.lines().next().unwrap();
    for column in [
        "task",
        "language",
        "kind",
        "status",
        "steps",
        "tokens in",
        "seconds",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let leap_row = row(&stdout, "py-leap");
    assert_eq!(leap_row[1..5], ["python", "exercise", "succeeded", "2"]);
    let input_tokens: u64 = leap_row[5].replace(',', "").parse().unwrap();
    assert!(input_tokens > 0, "{stdout}");
    assert_eq!(row(&stdout, "py-chunks")[3], "failed");
    assert_eq!(row(&stdout, "py-median")[3], "tampered");
    assert!(stdout.contains("pass rate: 1/3 (33.3 %)"), "{stdout}");
    assert!(
        stdout.contains("by kind: exercise 1/1, bugfix 0/2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("py-median: tampered") && stdout.contains("changed test_stats.py"),
        "{stdout}"
    );
    assert!(stdout.contains("time: "), "{stdout}");

    // The model got each task's goal and checks, in the order asked for.
    let requests = server.requests();
    assert_eq!(requests.len(), 5, "{stderr}");
    let user = |i: usize| {
        requests[i]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(user(0).contains("Implement leap_year(year) in leap.py"));
    assert!(user(2).contains("chunks() in chunks.py sometimes loses"));
    assert!(user(3).contains("median() in stats.py"));
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("python3 -m unittest -q"), "{system}");
    assert!(tool_results(&requests[1])[0].contains("leap.py"));
}

#[test]
fn the_runner_prints_jsonl_and_a_rust_task_passes_through_the_sandbox() {
    let largest = task("rs-largest");
    let fixed = solved_file(&largest, "src/lib.rs");
    let server = ScriptedServer::start(vec![
        tool(
            "write_file",
            json!({"path": "src/lib.rs", "content": fixed}),
        ),
        finish("largest() starts from the first value, so empty is None."),
    ]);

    let (code, stdout, stderr) = runner(&server, &["--only", "rs-largest", "--json"]);

    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let task_line = &lines[0];
    assert_eq!(task_line["type"], "task");
    assert_eq!(task_line["name"], "rs-largest");
    assert_eq!(task_line["status"], "succeeded", "{task_line}\n{stderr}");
    assert_eq!(task_line["passed"], true);
    assert_eq!(task_line["steps"], 2);
    assert!(task_line["input_tokens"].as_u64().unwrap() > 0);
    assert!(task_line["output_tokens"].as_u64().unwrap() > 0);
    assert!(task_line["seconds"].as_f64().unwrap() > 0.0);
    let summary = &lines[1];
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["tasks"], 1);
    assert_eq!(summary["pass_rate"], 1.0);
    assert_eq!(summary["by_language"]["rust"]["passed"], 1);
    assert_eq!(summary["model"], "(nightshift's default)");
    // `succeeded` means nightshift ran this check in its sandbox (no network, private HOME,
    // read-only host) and it passed: cargo builds and tests the crate in there.
    let system = server.requests()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.contains("cargo test --offline -q"), "{system}");
}

#[test]
fn the_runner_says_how_to_build_nightshift_when_it_is_missing() {
    let output = Command::new(evals_dir().join("run"))
        .args([
            "--nightshift",
            "/nonexistent/nightshift",
            "--only",
            "py-leap",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no nightshift binary at /nonexistent/nightshift")
            && stderr.contains("hint: build it with `cargo build --release -p nightshift-cli`"),
        "{stderr}"
    );
}
