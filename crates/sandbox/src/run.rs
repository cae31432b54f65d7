//! Spawning, bounding and collecting one command.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nightshift_protocol::CommandReport;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use crate::capture::Capture;
use crate::cgroup::CommandCgroup;
use crate::{Limits, Sandbox, SandboxError, SandboxMode, sys};

/// How long output is still read after the command has exited and its process group is gone.
/// Only something that escaped the group (mode None, `setsid`) can hold the pipe that long.
const DRAIN_GRACE: Duration = Duration::from_millis(250);
const READ_CHUNK: usize = 64 * 1024;
/// How often the whole command's CPU time is compared with its limit.
const CPU_WATCH_PERIOD: Duration = Duration::from_millis(50);

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
    /// CPU time (user + system) of all the command's processes: from its cgroup, else from
    /// wait4 (which misses processes that were killed before their parent reaped them).
    pub cpu_time: Option<Duration>,
    /// Peak memory: of the whole command from its cgroup (page cache it caused included), else
    /// the largest resident set of any one of its processes.
    pub peak_memory_bytes: Option<u64>,
    /// The limit that ended the command (or that it ran into and failed on), where it can be
    /// told; `Some(LimitKind::Timeout)` exactly when `timed_out`, unless another limit was hit.
    pub limit: Option<LimitKind>,
}

/// Which limit ended a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The wall-clock timeout.
    Timeout,
    /// The memory limit (the cgroup's OOM killer ended a process).
    Memory,
    /// The CPU time limit (SIGXCPU, or killed past it).
    Cpu,
    /// The process limit (a fork failed because the cgroup was full).
    Processes,
    /// The file size limit (SIGXFSZ).
    FileSize,
}

impl LimitKind {
    /// The name used in events: `timeout`, `memory`, `cpu`, `processes` or `file_size`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Timeout => "timeout",
            LimitKind::Memory => "memory",
            LimitKind::Cpu => "cpu",
            LimitKind::Processes => "processes",
            LimitKind::FileSize => "file_size",
        }
    }
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
            limit: self.limit.map(|l| l.as_str().to_owned()),
            sandbox: mode.as_str().to_owned(),
            cpu_ms: self
                .cpu_time
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            peak_memory_bytes: self.peak_memory_bytes,
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
    let entry = sandbox.session_entry()?;
    let mut std_cmd = sandbox.command(command, entry.is_some())?;
    // The network policy's proxy for this run, stopped when the run ends.
    let _proxy = crate::network::start_for_run(sandbox, &mut std_cmd)?;
    std_cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr_end));
    // Declared before the guard so that on drop the group is killed first, then the cgroup.
    let cgroup = CommandCgroup::create(limits);
    let fallback = sys::Fallback {
        memory: !cgroup.as_ref().is_some_and(CommandCgroup::limits_memory),
        processes: !cgroup.as_ref().is_some_and(CommandCgroup::limits_processes),
    };
    let procs = match &cgroup {
        Some(cg) => cg.procs_files().map_err(SandboxError::Spawn)?,
        None => Vec::new(),
    };
    sys::limit_resources(&mut std_cmd, limits, fallback, procs).map_err(SandboxError::Spawn)?;
    // The command holds our copies of the write end (and the cgroup files); they must close or
    // EOF never comes: `spawn` consumes it.
    let entered = entry.is_some();
    let pid = spawn(std_cmd, entry)?;
    // The group id is the command's pid (see `spawn`). The group (and the cgroup) is
    // killed when this future is dropped; the waiting thread then reaps the child.
    let mut guard = GroupGuard { pgid: Some(pid) };
    tracing::debug!(
        mode = sandbox.mode.as_str(),
        pid,
        command,
        "command started"
    );
    let mut reader = pipe::Receiver::from_owned_fd(read_end).map_err(SandboxError::Io)?;

    let deadline = tokio::time::Instant::now()
        .checked_add(limits.timeout)
        .unwrap_or_else(far_future);
    let cpu_limit = limits
        .cpu_time
        .filter(|_| cgroup.as_ref().is_some_and(CommandCgroup::measures_cpu));
    let mut cpu_watch = tokio::time::interval(CPU_WATCH_PERIOD);
    cpu_watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut capture = Capture::new(limits.output_cap);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut exit: Option<sys::Exit> = None;
    let mut eof = false;
    let mut timed_out = false;
    let mut cpu_exceeded = false;
    let mut drain_until: Option<tokio::time::Instant> = None;
    // wait4 rather than tokio's wait: it also gives the CPU time and peak memory of the tree.
    let wait = tokio::task::spawn_blocking(move || sys::wait4(pid));
    tokio::pin!(wait);
    while !(eof && exit.is_some()) {
        tokio::select! {
            read = reader.read(&mut buf), if !eof => match read {
                Ok(0) => eof = true,
                Ok(n) => capture.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SandboxError::Io(e)),
            },
            exited = &mut wait, if exit.is_none() => {
                let exited = exited.map_err(|e| SandboxError::Io(std::io::Error::other(e)))?;
                exit = Some(exited.map_err(SandboxError::Io)?);
                if entered {
                    // The command's process was its pid namespace's init: everything in that
                    // namespace died with it, and its pid, now reaped, may already be another's.
                    guard.pgid = None;
                } else {
                    guard.kill_and_disarm();
                }
                // What the command left behind, even outside its process group.
                if let Some(cg) = &cgroup {
                    cg.kill_all();
                }
                drain_until = Some(tokio::time::Instant::now() + DRAIN_GRACE);
            },
            () = tokio::time::sleep_until(deadline), if exit.is_none() && !timed_out => {
                timed_out = true;
                kill_everything(&mut guard, cgroup.as_ref());
            },
            _ = cpu_watch.tick(), if cpu_limit.is_some() && exit.is_none() && !cpu_exceeded => {
                let used = cgroup.as_ref().and_then(CommandCgroup::cpu_time);
                if used.is_some() && used >= cpu_limit {
                    cpu_exceeded = true;
                    kill_everything(&mut guard, cgroup.as_ref());
                }
            },
            () = tokio::time::sleep_until(drain_until.unwrap_or(deadline)), if drain_until.is_some() => {
                tracing::debug!("output still open after the command exited; no longer reading");
                break;
            },
        }
    }

    // The loop ends only once the exit status is in (draining starts after it), so the
    // fallback is never used.
    let exit = exit.unwrap_or(sys::Exit {
        status: ExitStatus::from_raw(0),
        cpu: Duration::ZERO,
        max_rss: 0,
    });
    let usage = cgroup
        .as_ref()
        .map(CommandCgroup::usage)
        .unwrap_or_default();
    // Removes the cgroup (what is still in it is killed first).
    drop(cgroup);
    let captured = capture.finish();
    let status = exit.status;
    let ended = Ended {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        cpu_exceeded,
        oom_killed: usage.oom_killed,
        pids_limited: usage.pids_limited,
    };
    let cpu_time = usage.cpu.or(Some(exit.cpu));
    let output = CommandOutput {
        exit_code: status.code(),
        signal: status.signal(),
        output: captured.text,
        total_bytes: captured.total_bytes,
        truncated: captured.truncated,
        timed_out,
        duration: started.elapsed(),
        cpu_time,
        peak_memory_bytes: usage
            .peak_memory
            .or((exit.max_rss > 0).then_some(exit.max_rss)),
        limit: ended.limit(limits.cpu_time, cpu_time),
    };
    tracing::debug!(
        exit_code = ?output.exit_code,
        signal = ?output.signal,
        limit = ?output.limit,
        bytes = output.total_bytes,
        ms = output.duration.as_millis() as u64,
        cpu_ms = ?output.cpu_time.map(|t| t.as_millis() as u64),
        peak_memory = ?output.peak_memory_bytes,
        "command finished"
    );
    Ok(output)
}

fn kill_everything(guard: &mut GroupGuard, cgroup: Option<&CommandCgroup>) {
    guard.kill();
    if let Some(cg) = cgroup {
        cg.kill_all();
    }
}

/// How a command ended, as far as telling which limit ended it goes.
#[derive(Debug, Default)]
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    cpu_exceeded: bool,
    oom_killed: bool,
    pids_limited: bool,
}

impl Ended {
    /// The limit to blame, most specific first. A command that succeeded hit none that matter.
    fn limit(&self, cpu_limit: Option<Duration>, cpu_used: Option<Duration>) -> Option<LimitKind> {
        if self.code == Some(0) && !self.timed_out && !self.cpu_exceeded {
            return None;
        }
        // A signal, or 128+N: how bwrap and shells pass on "my child was killed by N".
        let signal = self.signal.or(self
            .code
            .filter(|c| (129..160).contains(c))
            .map(|c| c - 128));
        let past_cpu = cpu_limit.is_some_and(|limit| cpu_used.is_some_and(|used| used >= limit));
        if self.oom_killed {
            Some(LimitKind::Memory)
        } else if self.cpu_exceeded
            || signal == Some(libc::SIGXCPU)
            || (signal == Some(libc::SIGKILL) && !self.timed_out && past_cpu)
        {
            Some(LimitKind::Cpu)
        } else if signal == Some(libc::SIGXFSZ) {
            Some(LimitKind::FileSize)
        } else if self.pids_limited {
            Some(LimitKind::Processes)
        } else if self.timed_out {
            Some(LimitKind::Timeout)
        } else {
            None
        }
    }
}

fn far_future() -> tokio::time::Instant {
    // About thirty years: "never" for a command, and far from Instant's overflow.
    tokio::time::Instant::now() + Duration::from_secs(30 * 365 * 24 * 3600)
}

/// Starts `cmd` on the spawner thread ([`crate::on_spawner`]), in its own process group, and
/// returns its pid: bwrap's (or the shell's, in mode None), or with `entry` the command's own
/// process in the task's sandbox, which starts a new session instead (same group id). Takes
/// the command because it holds our copies of the output pipe, which must close for EOF.
fn spawn(mut cmd: Command, entry: Option<Arc<sys::Entry>>) -> Result<u32, SandboxError> {
    crate::on_spawner(move || match entry {
        Some(entry) => spawn_entering(cmd, entry),
        None => {
            cmd.process_group(0);
            let child = cmd.spawn().map_err(SandboxError::Spawn)?;
            drop(cmd);
            Ok(child.id())
        }
    })
    .map_err(SandboxError::Spawn)?
}

/// Spawns `cmd` into the task's sandbox ([`sys::enter`]) and returns the pid of the command's
/// process, a child of ours, after reaping the short-lived process that made it.
fn spawn_entering(mut cmd: Command, entry: Arc<sys::Entry>) -> Result<u32, SandboxError> {
    let (pid_read, pid_write) = sys::pipe().map_err(SandboxError::Io)?;
    sys::enter(&mut cmd, entry, pid_write.as_raw_fd());
    let spawned = cmd.spawn();
    drop(cmd);
    drop(pid_write);
    // Written before the first process exits, and spawn returns only after that.
    let pid = sys::read_pid(pid_read);
    match spawned {
        Ok(mut first) => {
            first.wait().map_err(SandboxError::Io)?;
            pid.ok_or_else(|| {
                SandboxError::Spawn(std::io::Error::other(
                    "the sandbox did not say which process runs the command",
                ))
            })
        }
        Err(error) => {
            // The command's process failed before exec and is our child: reap it.
            if let Some(pid) = pid {
                let _ = sys::wait4(pid);
            }
            Err(SandboxError::Spawn(error))
        }
    }
}

/// How long the probe may take before we call the sandbox broken.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `true` in the sandbox, synchronously, the way [`run`] would: to learn whether commands
/// can run in it on this machine. The error says why not.
pub(crate) fn probe(sandbox: &Sandbox) -> Result<(), SandboxError> {
    let bwrap = &sandbox.program;
    let started_fail = |e: &dyn std::fmt::Display| {
        crate::unavailable_after_probe(bwrap, &format!("`true` could not be started in it: {e}"))
    };
    let entry = sandbox.session_entry()?;
    let mut cmd = sandbox.command("true", entry.is_some())?;
    let (stderr_read, stderr_write) = sys::pipe().map_err(SandboxError::Io)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr_write));
    let pid = spawn(cmd, entry).map_err(|e| started_fail(&e))?;
    let started = Instant::now();
    let status = loop {
        match sys::try_wait(pid) {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < PROBE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(None) => {
                sys::kill_group(pid);
                let _ = sys::wait4(pid);
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
    // The probe has exited, and with it everything that held the pipe: this read ends; what
    // it printed says why it failed.
    let _ = std::fs::File::from(stderr_read)
        .take(64 * 1024)
        .read_to_string(&mut stderr);
    let detail = if stderr.trim().is_empty() {
        format!("running `true` in it failed ({status})")
    } else {
        stderr
    };
    Err(crate::unavailable_after_probe(bwrap, &detail))
}
