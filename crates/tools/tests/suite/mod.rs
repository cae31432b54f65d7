//! Every tool against real files in temporary directories, real git repositories and, for
//! `shell`, the real bubblewrap sandbox.

mod args;
mod list_search;
mod paths;
mod read;
mod shell;
mod write_edit;

use std::path::{Path, PathBuf};
use std::process::Command;

use nightshift_sandbox::{Limits, Sandbox, SandboxMode};
use nightshift_tools::{ToolOutput, Toolbox};
use serde_json::Value;
use tempfile::TempDir;

/// A worktree in a temporary directory, with the tools for it.
pub struct Work {
    /// Holds the worktree at `root`; `outside` is a sibling the tools must never reach.
    pub _dir: TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
    pub tools: Toolbox,
}

impl Work {
    /// File tools only: no sandbox needed for them, so `SandboxMode::None`.
    pub fn new() -> Work {
        Work::with(SandboxMode::None, Limits::default())
    }

    pub fn with(mode: SandboxMode, limits: Limits) -> Work {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("work");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        let sandbox = Sandbox::new(&root, mode).unwrap();
        let tools = Toolbox::new(sandbox, limits).unwrap();
        Work {
            _dir: dir,
            root,
            outside,
            tools,
        }
    }

    /// Writes a file under the root (creating directories), for setting up a test.
    pub fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    pub async fn call(&self, name: &str, args: Value) -> ToolOutput {
        self.tools.call(name, &args.to_string()).await
    }

    /// A call that must succeed; returns its text.
    pub async fn ok(&self, name: &str, args: Value) -> String {
        let out = self.call(name, args.clone()).await;
        assert!(!out.is_error, "{name} {args} failed:\n{}", out.text);
        out.text
    }

    /// A call that must fail; returns its text.
    pub async fn err(&self, name: &str, args: Value) -> String {
        let out = self.call(name, args.clone()).await;
        assert!(
            out.is_error,
            "{name} {args} should have failed:\n{}",
            out.text
        );
        out.text
    }

    /// Makes the root a real git repository.
    pub fn git_init(&self) {
        git(&self.root, &["init", "-q", "-b", "main"]);
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "tests set up real git repositories; the tools never run git"
)]
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
pub fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}
