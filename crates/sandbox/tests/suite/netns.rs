//! The network namespace of bwrap commands: never the host's, never another sandbox's (task's),
//! loopback works inside, and nothing a command leaves listening on its loopback is there for
//! the next command. These hold whether each command gets its own namespace (today) or the
//! commands of one sandbox share one, which is what they guard if that optimisation returns.

use nightshift_sandbox::SandboxMode;

use super::{Scratch, assert_gone, sh};

const NS: &str = "readlink /proc/self/ns/net";

#[tokio::test]
async fn commands_run_in_a_network_namespace_that_is_not_the_hosts() {
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let host = format!("{}\n", host.display());
    let scratch = Scratch::new();

    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let inside = sh(&sandbox, NS).await;
    assert_eq!(inside.exit_code, Some(0), "{}", inside.output);
    assert!(inside.output.starts_with("net:["), "{}", inside.output);
    assert_ne!(inside.output, host);
    // Nor is a clone's (the same task).
    let again = sh(&sandbox.clone(), NS).await;
    assert_ne!(again.output, host);
    // Another sandbox (another task) does not share its loopback with this one. Compared
    // while both are alive: the kernel reuses a freed namespace's number, so a command that
    // ran after another's namespace was gone may show the same one.
    let other_sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let held = format!("{NS}; sleep 1");
    let (one, other) = tokio::join!(sh(&sandbox, &held), sh(&other_sandbox, &held));
    assert_eq!(one.exit_code, Some(0), "{}", one.output);
    assert_ne!(other.output, one.output);
    assert_ne!(other.output, host);

    // Without isolation the same command sees the host's, so the comparison can fail.
    let unisolated = sh(&scratch.sandbox(SandboxMode::None), NS).await;
    assert_eq!(unisolated.output, host);
}

#[tokio::test]
async fn a_listener_left_by_one_command_is_gone_for_the_next() {
    let scratch = Scratch::new();
    let sandbox = scratch.sandbox(SandboxMode::Bwrap);
    let marker = format!("netns-listener-{}", std::process::id());
    let connect = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 4519), timeout=2); print('connected')\"";
    // The first command starts a listener in the background, checks that it answers (so
    // loopback works inside), and returns with the listener still running.
    let first = sh(
        &sandbox,
        &format!(
            "python3 -c \"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 4519)); s.listen(); time.sleep(60)\" {marker} &\n\
             for i in $(seq 100); do {connect} 2>/dev/null && exit 0; sleep 0.05; done; exit 1"
        ),
    )
    .await;
    assert_eq!(first.exit_code, Some(0), "{}", first.output);
    assert_eq!(first.output, "connected\n");
    assert_gone(&marker).await;

    // The next command of the same sandbox (and of a clone) finds nothing on that port.
    for sandbox in [sandbox.clone(), sandbox] {
        let next = sh(&sandbox, &format!("{connect} 2>&1")).await;
        assert_ne!(next.exit_code, Some(0), "{}", next.output);
        assert!(next.output.contains("ConnectionRefused"), "{}", next.output);
    }
}
