//! Shared helpers; each file tests one side of the sandbox.

mod basics;
mod env;
mod isolation;
mod limits;
mod matrix;
mod netns;
mod network;
mod probe;
mod resources;
mod session;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nightshift_sandbox::{CommandOutput, Limits, Sandbox, SandboxMode};

/// A scratch area outside /tmp, so that "outside the workdir" is a real read-only host path
/// inside the sandbox, with `work/` (the workdir) and `outside/`. It lives in /var/tmp, not in
/// cargo's target dir: a checkout may itself be under /tmp (CI clones can be), and the sandbox
/// replaces /tmp with a private tmpfs.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

const SCRATCH_ROOT: &str = "/var/tmp";

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("sandbox-")
            .tempdir_in(SCRATCH_ROOT)
            .unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        Scratch { dir }
    }

    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work").canonicalize().unwrap()
    }

    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside").canonicalize().unwrap()
    }

    pub fn sandbox(&self, mode: SandboxMode) -> Sandbox {
        Sandbox::new(&self.work(), mode).unwrap()
    }
}

pub const MODES: [SandboxMode; 2] = [SandboxMode::Bwrap, SandboxMode::None];

/// Default limits with a timeout short enough that a hanging test fails instead of stalling.
pub fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(30),
        ..Limits::default()
    }
}

pub async fn sh(sandbox: &Sandbox, command: &str) -> CommandOutput {
    sandbox.run(command, &limits()).await.unwrap()
}

/// Pids of live processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits up to two seconds for every process with `marker` in its command line to be gone.
pub async fn assert_gone(marker: &str) {
    for _ in 0..200 {
        if processes_with(marker).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("processes still running: {:?}", processes_with(marker));
}

pub fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}
