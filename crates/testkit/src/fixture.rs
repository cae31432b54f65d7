//! Fixture repositories: a directory with a few files, committed once on `main`.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// The identity and date every fixture commit uses, so commit ids are the same on every run.
const AUTHOR_NAME: &str = "Nightshift Fixture";
const AUTHOR_EMAIL: &str = "fixture@nightshift.invalid";
const COMMIT_DATE: &str = "2026-01-01T00:00:00+00:00";

/// Creates a git repository in `dir` (created if missing) on branch `main`, writes `files`
/// (relative paths, parent directories created) and commits them as one commit with a fixed
/// author and date. Returns the canonical path of the repository.
///
/// Panics with git's stderr if anything fails: this is test support.
pub fn fixture_repo(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    // A fixture that writes outside its own directory is a bug in the test; refuse it before
    // touching the disk.
    for (relative, _) in files {
        let confined = Path::new(relative)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        assert!(
            confined && !relative.is_empty(),
            "fixture_repo: file path `{relative}` must be relative and stay inside the repository"
        );
    }
    std::fs::create_dir_all(dir)
        .unwrap_or_else(|e| panic!("fixture_repo: cannot create {}: {e}", dir.display()));
    git(dir, &["init", "-q", "-b", "main"]);
    for (relative, contents) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| {
                panic!("fixture_repo: cannot create {}: {e}", parent.display())
            });
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("fixture_repo: cannot write {}: {e}", path.display()));
    }
    git(dir, &["add", "-A"]);
    // --allow-empty so that even a fixture without files has a HEAD to branch from.
    git(
        dir,
        &[
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "-m",
            "fixture",
        ],
    );
    dir.canonicalize()
        .unwrap_or_else(|e| panic!("fixture_repo: cannot resolve {}: {e}", dir.display()))
}

#[expect(
    clippy::disallowed_methods,
    reason = "test support builds fixture repositories"
)]
fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        // The developer's own git configuration (signing, hooks, templates) must not change
        // what a fixture looks like.
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_AUTHOR_DATE", COMMIT_DATE)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_DATE", COMMIT_DATE)
        .output()
        .unwrap_or_else(|e| panic!("fixture_repo: cannot run git (is it installed?): {e}"));
    assert!(
        output.status.success(),
        "fixture_repo: `git {}` in {} failed ({}):\n{}",
        args.join(" "),
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
