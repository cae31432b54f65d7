//! Spawning, bounding and collecting one command.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nightshift_protocol::CommandReport;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use crate::capture::Capture;
use crate::{Limits, Sandbox, SandboxError, SandboxMode, sys};

/// How long output is still read after the command has exited and its process group is gone.
/// Only something that escaped the group (mode None, `setsid`) can hold the pipe that long.
const DRAIN_GRACE: Duration = Duration::from_millis(250);
/// How long the bwrap probe may take before we call bwrap broken.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 64 * 1024;

/// What a finished command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code, when it exited. Under bwrap a command killed by signal N shows as 128+N here
    /// (bubblewrap reports it that way, as shells do).
    pub exit_code: Option<i32>,
    /// The signal that killed it: in mode None, or when the sandbox itself was killed (timeout).
    pub signal: Option<i32>,
    /// stdout and stderr interleaved as written (ONE pipe for both), lossy UTF-8; when more than
    /// output_cap bytes were written, the first and last halves are kept with a marker line in
    /// between like "\n[... 12345 bytes omitted ...]\n".
    pub output: String,
    /// Bytes the command wrote, kept or not.
    pub total_bytes: u64,
    /// Whether bytes were dropped from the middle of `output`.
    pub truncated: bool,
    /// Whether the timeout ended the command.
    pub timed_out: bool,
    /// Wall-clock time from spawn to the end of output.
    pub duration: Duration,
}

impl CommandOutput {
    /// Exit 0 and not timed out.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// Accounting record for the event stream: `purpose` is `shell` or `check`.
    pub fn report(&self, purpose: &str, command: &str, mode: SandboxMode) -> CommandReport {
        CommandReport {
            purpose: purpose.to_owned(),
            command: command.to_owned(),
            exit_code: self.exit_code,
            signal: self.signal,
            duration_ms: u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX),
            output_bytes: self.total_bytes,
            output_truncated: self.truncated,
            limit: self.timed_out.then(|| "timeout".to_owned()),
            sandbox: mode.as_str().to_owned(),
        }
    }
}

/// Kills the command's process group unless disarmed: on timeout, after the main process
/// exited (so background jobs do not outlive it, as they would not under bwrap's pid namespace),
/// and when the run future is dropped.
struct GroupGuard {
    pgid: Option<u32>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            sys::kill_group(pgid);
        }
    }

    /// Kills once more and forgets the group: after the leader is reaped its id may be reused.
    fn kill_and_disarm(&mut self) {
        self.kill();
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) async fn run(
    sandbox: &Sandbox,
    command: &str,
    limits: &Limits,
) -> Result<CommandOutput, SandboxError> {
    let started = Instant::now();
    let (read_end, write_end) = sys::pipe().map_err(SandboxError::Io)?;
    let stderr_end = write_end.try_clone().map_err(SandboxError::Io)?;
    let mut std_cmd = sandbox.command(command)?;
    std_cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr_end))
        .process_group(0);
    sys::limit_resources(&mut std_cmd).map_err(SandboxError::Spawn)?;
    let mut cmd = tokio::process::Command::from(std_cmd);
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
    // The command holds our copies of the write end; they must close or EOF never comes.
    drop(cmd);
    // With process_group(0) the group id is the child's pid.
    let mut guard = GroupGuard { pgid: child.id() };
    tracing::debug!(mode = sandbox.mode.as_str(), pid = ?guard.pgid, command, "command started");
    let mut reader = pipe::Receiver::from_owned_fd(read_end).map_err(SandboxError::Io)?;

    let deadline = tokio::time::Instant::now()
        .checked_add(limits.timeout)
        .unwrap_or_else(far_future);
    let mut capture = Capture::new(limits.output_cap);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut status: Option<ExitStatus> = None;
    let mut eof = false;
    let mut timed_out = false;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let wait = child.wait();
    tokio::pin!(wait);
    while !(eof && status.is_some()) {
        tokio::select! {
            read = reader.read(&mut buf), if !eof => match read {
                Ok(0) => eof = true,
                Ok(n) => capture.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SandboxError::Io(e)),
            },
            exited = &mut wait, if status.is_none() => {
                status = Some(exited.map_err(SandboxError::Io)?);
                guard.kill_and_disarm();
                drain_until = Some(tokio::time::Instant::now() + DRAIN_GRACE);
            },
            () = tokio::time::sleep_until(deadline), if status.is_none() && !timed_out => {
                timed_out = true;
                guard.kill();
            },
            () = tokio::time::sleep_until(drain_until.unwrap_or(deadline)), if drain_until.is_some() => {
                tracing::debug!("output still open after the command exited; no longer reading");
                break;
            },
        }
    }

    // The loop ends only once the exit status is in (draining starts after it), so the
    // fallback is never used.
    let status = status.unwrap_or_else(|| ExitStatus::from_raw(0));
    let captured = capture.finish();
    let output = CommandOutput {
        exit_code: status.code(),
        signal: status.signal(),
        output: captured.text,
        total_bytes: captured.total_bytes,
        truncated: captured.truncated,
        timed_out,
        duration: started.elapsed(),
    };
    tracing::debug!(
        exit_code = ?output.exit_code,
        signal = ?output.signal,
        timed_out,
        bytes = output.total_bytes,
        ms = output.duration.as_millis() as u64,
        "command finished"
    );
    Ok(output)
}

fn far_future() -> tokio::time::Instant {
    // About thirty years: "never" for a command, and far from Instant's overflow.
    tokio::time::Instant::now() + Duration::from_secs(30 * 365 * 24 * 3600)
}

/// Runs `true` in the sandbox, synchronously, to learn whether bwrap works on this machine.
pub(crate) fn probe(sandbox: &Sandbox) -> Result<(), SandboxError> {
    let bwrap = &sandbox.program;
    let mut cmd = sandbox.command("true")?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        crate::unavailable_after_probe(bwrap, &format!("it could not be started: {e}"))
    })?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < PROBE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(crate::unavailable_after_probe(
                    bwrap,
                    &format!("running `true` in it took more than {PROBE_TIMEOUT:?}"),
                ));
            }
            Err(e) => return Err(SandboxError::Io(e)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        // The probe has exited, so this read ends; what it printed says why it failed.
        let _ = pipe.by_ref().take(64 * 1024).read_to_string(&mut stderr);
    }
    let detail = if stderr.trim().is_empty() {
        format!("running `true` in it failed ({status})")
    } else {
        stderr
    };
    Err(crate::unavailable_after_probe(bwrap, &detail))
}
