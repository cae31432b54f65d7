mod checkout;
mod open;
mod safety;
mod worktree;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs git for a fixture, outside the crate under test, with a fixed identity.
#[expect(
    clippy::disallowed_methods,
    reason = "tests build fixture repositories with git directly"
)]
pub fn git_output(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        // Snapshots of the user's checkout must not refresh its index themselves.
        .env("GIT_OPTIONAL_LOCKS", "0");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("git runs")
}

/// Runs git for a fixture and returns its trimmed stdout; panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_output(
        dir,
        &[
            &[
                "-c",
                "user.name=Fixture",
                "-c",
                "user.email=fixture@example.com",
            ],
            args,
        ]
        .concat(),
        &[],
    );
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("git prints UTF-8 here")
        .trim_end()
        .to_owned()
}

pub fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent directory");
    }
    std::fs::write(path, content).expect("write file");
}

/// A repository on `main` with one commit: a README, a source file and a .gitignore.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).expect("create repo dir");
        git(&repo, &["init", "--quiet", "-b", "main"]);
        write(&repo.join("README.md"), "# demo\n");
        write(
            &repo.join("src/lib.rs"),
            "pub fn one() -> u32 {\n    1\n}\n",
        );
        write(&repo.join(".gitignore"), "target/\n*.log\n");
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "--quiet", "-m", "initial"]);
        Fixture { dir, repo }
    }

    /// A path for a worktree, outside the repository.
    pub fn workspace(&self, name: &str) -> PathBuf {
        self.dir.path().join("workspaces").join(name)
    }
}
