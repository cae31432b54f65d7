//! The user's checkout, configuration and hooks are never touched or run.

use std::path::Path;
use std::time::Duration;

use nightshift_git::{GitError, Repo};

use super::{Fixture, git, git_output, write};

/// Everything about the user's checkout that nightshift must leave exactly as it was.
fn snapshot(repo: &Path) -> Vec<String> {
    let read = |name: &str| std::fs::read(repo.join(name)).expect("fixture file exists");
    vec![
        git(
            repo,
            &[
                "status",
                "--porcelain=v2",
                "--branch",
                "--untracked-files=all",
                "--ignored",
            ],
        ),
        git(repo, &["symbolic-ref", "HEAD"]),
        git(repo, &["rev-parse", "HEAD"]),
        git(repo, &["diff"]),
        git(repo, &["diff", "--cached"]),
        git(repo, &["stash", "list"]),
        git(
            repo,
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "--exclude=refs/heads/nightshift/",
                "refs/",
            ],
        ),
        format!("{:?}", read(".git/index")),
        String::from_utf8_lossy(&read("README.md")).into_owned(),
        String::from_utf8_lossy(&read("src/lib.rs")).into_owned(),
        String::from_utf8_lossy(&read("untracked.txt")).into_owned(),
        String::from_utf8_lossy(&read("debug.log")).into_owned(),
    ]
}

#[test]
fn the_users_dirty_checkout_and_current_branch_are_untouched() {
    let fixture = Fixture::new();
    let user = &fixture.repo;
    git(user, &["checkout", "--quiet", "-b", "feature"]);
    write(&user.join("README.md"), "# demo\nunstaged edit\n");
    write(&user.join("src/lib.rs"), "staged edit\n");
    git(user, &["add", "src/lib.rs"]);
    write(&user.join("untracked.txt"), "untracked\n");
    write(&user.join("debug.log"), "ignored\n");
    let before = snapshot(user);

    let repo = Repo::open(user).unwrap();
    let base = repo.resolve_commit("main").unwrap();
    assert!(repo.branch_exists("feature").unwrap());
    let path = fixture.workspace("t");
    let wt = repo.add_worktree(&path, "nightshift/t", &base).unwrap();
    // The worktree starts from the commit, not from the user's uncommitted edits.
    assert_eq!(
        std::fs::read_to_string(wt.path().join("README.md")).unwrap(),
        "# demo\n"
    );
    assert!(!wt.path().join("untracked.txt").exists());
    write(&wt.path().join("README.md"), "# changed by the task\n");
    write(&wt.path().join("new.txt"), "new\n");
    wt.tracked_files().unwrap();
    wt.commit_all("Task work", None).unwrap().unwrap();
    wt.diff_stat(&base).unwrap();
    wt.head().unwrap();
    assert_eq!(wt.commit_all("again", None).unwrap(), None);
    // git refuses to delete the branch the user has checked out.
    assert!(repo.delete_branch("feature").is_err());
    repo.remove_worktree(&path).unwrap();
    repo.delete_branch("nightshift/t").unwrap();

    assert_eq!(snapshot(user), before);
}

#[test]
fn the_users_hooks_never_run() {
    let fixture = Fixture::new();
    let marker = fixture.dir.path().join("hook-ran");
    for hook in [
        "post-checkout",
        "pre-commit",
        "commit-msg",
        "post-commit",
        "reference-transaction",
    ] {
        let script = fixture.repo.join(".git/hooks").join(hook);
        write(
            &script,
            &format!("#!/bin/sh\necho {hook} >> '{}'\nexit 1\n", marker.display()),
        );
        let mut perms = std::fs::metadata(&script).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&script, perms).unwrap();
    }
    // The hooks are live: a plain git commit runs them (and the failing pre-commit stops it).
    let plain = git_output(
        &fixture.repo,
        &[
            "-c",
            "core.hooksPath=.git/hooks",
            "commit",
            "--allow-empty",
            "-m",
            "x",
        ],
        &[],
    );
    assert!(!plain.status.success());
    assert!(marker.exists());
    std::fs::remove_file(&marker).unwrap();

    let repo = Repo::open(&fixture.repo).unwrap();
    let path = fixture.workspace("t");
    let wt = repo.add_worktree(&path, "nightshift/t", "HEAD").unwrap();
    write(&wt.path().join("a.txt"), "a\n");
    wt.commit_all("Add a", None).unwrap().unwrap();
    repo.remove_worktree(&path).unwrap();
    repo.delete_branch("nightshift/t").unwrap();
    assert!(
        !marker.exists(),
        "a hook ran: {}",
        std::fs::read_to_string(&marker).unwrap()
    );
}

#[test]
fn commits_work_without_any_git_identity_or_signing_setup() {
    let fixture = Fixture::new();
    let home = tempfile::tempdir().unwrap();
    // A machine where git knows nobody and refuses to guess, and where signing is on.
    git(&fixture.repo, &["config", "user.useConfigOnly", "true"]);
    git(&fixture.repo, &["config", "commit.gpgsign", "true"]);
    let isolated: [(&str, &Path); 3] = [
        ("HOME", home.path()),
        ("XDG_CONFIG_HOME", home.path()),
        ("GIT_CONFIG_NOSYSTEM", Path::new("1")),
    ];
    let plain = git_output(
        &fixture.repo,
        &[
            "-c",
            "commit.gpgsign=false",
            "commit",
            "--allow-empty",
            "-m",
            "x",
        ],
        &isolated,
    );
    assert!(
        !plain.status.success(),
        "the fixture really has no identity"
    );

    let repo = Repo::open_with_env(&fixture.repo, isolated).unwrap();
    let wt = repo
        .add_worktree(&fixture.workspace("t"), "nightshift/t", "HEAD")
        .unwrap();
    write(&wt.path().join("a.txt"), "a\n");
    let commit = wt.commit_all("Add a", None).unwrap().unwrap();
    assert_eq!(
        git(
            &fixture.repo,
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%G?", &commit]
        ),
        "Nightshift <nightshift@localhost>|Nightshift <nightshift@localhost>|N"
    );
}

#[test]
fn a_tampered_dot_git_file_in_the_worktree_cannot_redirect_commits() {
    let fixture = Fixture::new();
    let user_head = git(&fixture.repo, &["rev-parse", "HEAD"]);
    let user_status = git(&fixture.repo, &["status", "--porcelain"]);
    let repo = Repo::open(&fixture.repo).unwrap();
    let path = fixture.workspace("t");
    let wt = repo.add_worktree(&path, "nightshift/t", "HEAD").unwrap();
    // The agent can write anywhere in its workspace, including the `.git` file.
    write(
        &wt.path().join(".git"),
        &format!("gitdir: {}\n", fixture.repo.join(".git").display()),
    );
    write(&wt.path().join("evil.txt"), "evil\n");
    let commit = wt.commit_all("Task work", None).unwrap().unwrap();

    assert_eq!(repo.resolve_commit("nightshift/t").unwrap(), commit);
    assert_eq!(git(&fixture.repo, &["rev-parse", "HEAD"]), user_head);
    assert_eq!(git(&fixture.repo, &["status", "--porcelain"]), user_status);
    assert_eq!(
        git(&fixture.repo, &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    repo.remove_worktree(&path).unwrap();
    assert!(!path.exists());
}

#[test]
fn a_git_command_that_hangs_is_stopped_at_the_timeout() {
    let fixture = Fixture::new();
    // A clean filter that never answers, as a misconfigured git-lfs might.
    git(&fixture.repo, &["config", "filter.slow.clean", "sleep 30"]);
    write(&fixture.repo.join(".gitattributes"), "*.slow filter=slow\n");
    git(&fixture.repo, &["add", ".gitattributes"]);
    git(&fixture.repo, &["commit", "--quiet", "-m", "attributes"]);

    let repo = Repo::open(&fixture.repo)
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let wt = repo
        .add_worktree(&fixture.workspace("t"), "nightshift/t", "HEAD")
        .unwrap();
    write(&wt.path().join("data.slow"), "data\n");
    let started = std::time::Instant::now();
    let err = wt.commit_all("Add data", None).unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.to_string().contains("did not finish within 2s"),
        "{err}"
    );
}
