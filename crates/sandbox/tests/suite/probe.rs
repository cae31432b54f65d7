//! Sandbox::new refuses clearly when bubblewrap is missing or cannot work here.

use std::os::unix::fs::PermissionsExt;

use nightshift_sandbox::{BwrapSetup, Sandbox, SandboxError, SandboxMode, locate_bwrap};

use super::Scratch;

fn assert_unavailable(err: &SandboxError, reason_has: &str, fix_has: &[&str]) {
    let SandboxError::Unavailable { reason, fix } = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(reason.contains(reason_has), "reason: {reason}");
    for needle in fix_has {
        assert!(fix.contains(needle), "fix: {fix}");
    }
    let text = err.to_string();
    assert!(text.contains(reason) && text.contains("hint: "), "{text}");
}

#[test]
fn missing_bwrap_on_path_says_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    let err = locate_bwrap(empty.path().as_os_str()).unwrap_err();
    assert_unavailable(
        &err,
        "not on PATH",
        &["apt-get install bubblewrap", "--sandbox none"],
    );
    // The real PATH has it.
    let found = locate_bwrap(&std::env::var_os("PATH").unwrap()).unwrap();
    assert!(found.ends_with("bwrap"));
}

#[test]
fn a_bwrap_path_that_does_not_exist_is_unavailable() {
    let scratch = Scratch::new();
    let err = Sandbox::new_with_bwrap(&scratch.work(), "/nonexistent/bwrap".as_ref()).unwrap_err();
    assert_unavailable(
        &err,
        "/nonexistent/bwrap",
        &["apt-get install bubblewrap", "--sandbox none"],
    );
}

#[test]
fn a_bwrap_that_cannot_create_namespaces_is_unavailable() {
    let scratch = Scratch::new();
    let fake = scratch.dir.path().join("bwrap");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let setup = BwrapSetup {
        bwrap: fake,
        ..BwrapSetup::detect().unwrap()
    };
    let err = Sandbox::new_with_setup(&scratch.work(), &setup).unwrap_err();
    assert_unavailable(
        &err,
        "No permissions to create new namespace",
        &["user namespaces", "--sandbox none"],
    );
}

#[test]
fn a_missing_workdir_is_refused() {
    let scratch = Scratch::new();
    let missing = scratch.dir.path().join("nope");
    for mode in [SandboxMode::Bwrap, SandboxMode::None] {
        let err = Sandbox::new(&missing, mode).unwrap_err();
        assert!(matches!(err, SandboxError::Workdir { .. }), "{err:?}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
    let err = Sandbox::new("/".as_ref(), SandboxMode::Bwrap).unwrap_err();
    assert!(matches!(err, SandboxError::Workdir { .. }), "{err:?}");
}
