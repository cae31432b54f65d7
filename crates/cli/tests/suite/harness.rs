//! Running the real binary against a scripted model server and a fixture repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nightshift_testkit::{ScriptedReply, ScriptedServer, fixture_repo};
use serde_json::Value;

pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// The JSONL lines of `--json` output.
    pub fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// The final `{"type":"result"}` object.
    pub fn result(&self) -> Value {
        let lines = self.lines();
        let last = lines
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("no output; stderr:\n{}", self.stderr));
        assert_eq!(last["type"], "result", "last line is the result: {last}");
        last
    }

    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }
}

/// A test's world: a data directory, a repository and (optionally) a model server.
pub struct World {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub server: Option<ScriptedServer>,
}

impl World {
    pub fn new(files: &[(&str, &str)]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture_repo(&dir.path().join("repo"), files);
        World {
            dir,
            repo,
            server: None,
        }
    }

    pub fn with_script(mut self, script: Vec<ScriptedReply>) -> World {
        self.server = Some(ScriptedServer::start(script));
        self
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn server(&self) -> &ScriptedServer {
        self.server
            .as_ref()
            .expect("the world has a scripted server")
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nightshift"));
        command
            .env("NIGHTSHIFT_HOME", self.home())
            .env_remove("NIGHTSHIFT_BASE_URL")
            .env_remove("NIGHTSHIFT_MODEL")
            .env_remove("NIGHTSHIFT_API_KEY")
            .env("NIGHTSHIFT_MODEL", "scripted");
        if let Some(server) = &self.server {
            command.env("NIGHTSHIFT_BASE_URL", server.base_url());
        }
        command
    }

    /// `nightshift run --json --repo <repo> <extra...> <goal>`.
    pub fn run(&self, extra: &[&str], goal: &str) -> Run {
        let mut command = self.command();
        command
            .arg("run")
            .arg("--json")
            .arg("--repo")
            .arg(&self.repo);
        command.args(extra).arg(goal);
        run(command)
    }

    pub fn nightshift(&self, args: &[&str]) -> Run {
        let mut command = self.command();
        command.args(args);
        run(command)
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.repo, args)
    }
}

pub fn run(mut command: Command) -> Run {
    let output = command.output().expect("the nightshift binary runs");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

pub fn tool(name: &str, args: Value) -> ScriptedReply {
    ScriptedReply::ToolCalls(vec![(name.to_owned(), args)])
}

pub fn finish(summary: &str) -> ScriptedReply {
    tool("finish", serde_json::json!({ "summary": summary }))
}

/// The text of every tool result the model was sent in `request`.
pub fn tool_results(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}
