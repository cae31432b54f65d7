//! Fixture repositories are real, committed and reproducible.

use std::path::Path;
use std::process::Command;

use nightshift_testkit::fixture_repo;

#[expect(
    clippy::disallowed_methods,
    reason = "the test inspects the fixture with git"
)]
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn fixture_repos_are_committed_on_main_with_a_fixed_author() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("one");
    let files = [
        ("README.md", "# demo\n"),
        ("src/lib.rs", "pub fn one() -> u32 { 1 }\n"),
    ];
    let repo = fixture_repo(&dir, &files);
    assert_eq!(repo, dir.canonicalize().unwrap());
    assert_eq!(git(&repo, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    assert_eq!(git(&repo, &["ls-files"]), "README.md\nsrc/lib.rs");
    assert_eq!(
        git(&repo, &["log", "--format=%an <%ae>"]),
        "Nightshift Fixture <fixture@nightshift.invalid>"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("src/lib.rs")).unwrap(),
        files[1].1
    );

    // Same files, same commit id: fixtures are reproducible.
    let again = fixture_repo(&tmp.path().join("two"), &files);
    assert_eq!(
        git(&repo, &["rev-parse", "HEAD"]),
        git(&again, &["rev-parse", "HEAD"])
    );
}

#[test]
fn an_empty_fixture_still_has_a_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = fixture_repo(&tmp.path().join("empty"), &[]);
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]), "1");
}

#[test]
fn fixture_paths_may_not_escape_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("escape");
    let outcome = std::panic::catch_unwind(|| fixture_repo(&dir, &[("../outside.txt", "no")]));
    let panic = outcome.unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("must be relative and stay inside the repository"),
        "{message}"
    );
    assert!(!dir.exists(), "nothing is created for a refused fixture");
    assert!(!tmp.path().join("outside.txt").exists());
}
