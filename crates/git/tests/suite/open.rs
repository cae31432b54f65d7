use nightshift_git::{GitError, Repo};

use super::{Fixture, git};

#[test]
fn opening_a_missing_path_says_it_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = Repo::open(&missing).unwrap_err();
    assert!(
        matches!(&err, GitError::PathMissing { path } if *path == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn opening_a_plain_directory_says_it_is_not_a_repository_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let err = Repo::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, GitError::NotARepo { path } if path == dir.path()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("is not a git repository"), "{message}");
    assert!(message.contains("git init"), "{message}");
    assert!(message.contains("--repo"), "{message}");
}

#[test]
fn opening_a_repository_without_commits_asks_for_a_first_commit() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet"]);
    let err = Repo::open(dir.path()).unwrap_err();
    assert!(matches!(err, GitError::NoCommits), "{err:?}");
    assert!(err.to_string().contains("make a first commit"), "{err}");
}

#[test]
fn opening_a_bare_repository_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet", "--bare"]);
    let err = Repo::open(dir.path()).unwrap_err();
    assert!(matches!(err, GitError::BareRepo { .. }), "{err:?}");
}

#[test]
fn opening_a_subdirectory_finds_the_top_level() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo.join("src")).unwrap();
    assert_eq!(repo.path(), fixture.repo.canonicalize().unwrap());
}

#[test]
fn resolve_commit_returns_full_shas_and_names_unknown_refs() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    let head = git(&fixture.repo, &["rev-parse", "HEAD"]);
    assert_eq!(repo.resolve_commit("HEAD").unwrap(), head);
    assert_eq!(repo.resolve_commit("main").unwrap(), head);
    assert_eq!(repo.resolve_commit(&head[..8]).unwrap(), head);

    for bad in ["no-such-branch", "", "--all", "HEAD~5"] {
        let err = repo.resolve_commit(bad).unwrap_err();
        assert!(
            matches!(&err, GitError::UnknownRef { reference } if reference == bad),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("git branch"), "{err}");
    }
    // A tree is not a commit, even though it resolves to an object.
    assert!(matches!(
        repo.resolve_commit("HEAD^{tree}"),
        Err(GitError::UnknownRef { .. })
    ));
}

#[test]
fn branch_names_are_checked_before_use() {
    let fixture = Fixture::new();
    let repo = Repo::open(&fixture.repo).unwrap();
    assert!(repo.branch_exists("main").unwrap());
    assert!(!repo.branch_exists("nightshift/abc").unwrap());
    for bad in ["", "-D", "a..b", "has space", "HEAD", "ends.lock"] {
        assert!(
            matches!(repo.branch_exists(bad), Err(GitError::InvalidBranch { .. })),
            "{bad:?}"
        );
    }
}
