//! The few raw libc calls the sandbox needs: a pipe for the command's output, killing a process
//! group or one process, waiting with resource usage, and resource limits and cgroup membership
//! applied between fork and exec. Every `unsafe` block of the crate
//! lives here, each with the reason it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A pipe whose two ends close on exec (the child gets the write end through `Stdio`, which
/// dup2s it onto fds 1 and 2 without the flag). Returns `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` is a valid, writable array of two c_ints, which is what pipe2 expects.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and nothing else owns them.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(ends)
}

/// Sends SIGKILL to every process of the group `pgid` (errors such as "no such group" are
/// ignored: the point is only that nothing of the group survives).
pub(crate) fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // 0 would mean our own group and 1 would be init's: never ours to kill.
    if pgid <= 1 {
        return;
    }
    // SAFETY: killpg takes plain integers and has no memory-safety preconditions.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Sends SIGKILL to one process (used on the members of a command's cgroup).
pub(crate) fn kill_process(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill takes plain integers and has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// How a process ended, with the resources its whole reaped tree used.
pub(crate) struct Exit {
    pub(crate) status: std::process::ExitStatus,
    /// User plus system time of the process and every descendant it (transitively) reaped.
    pub(crate) cpu: std::time::Duration,
    /// Largest resident set of any one of them, in bytes.
    pub(crate) max_rss: u64,
}

/// Blocks until the child `pid` exits and reaps it (wait4, retried on EINTR).
pub(crate) fn wait4(pid: u32) -> io::Result<Exit> {
    use std::os::unix::process::ExitStatusExt;
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, writable and live across the call.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let time = |t: libc::timeval| {
        std::time::Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + std::time::Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok(Exit {
        status: std::process::ExitStatus::from_raw(status),
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        // Linux reports ru_maxrss in kilobytes.
        max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    })
}

/// Process count cap for non-root users without a pids cgroup: the kernel counts every process
/// of the real user, so the cap is what they already run plus the command's allowance.
fn nproc_allowance(max_processes: u32) -> libc::rlim_t {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let running = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .filter(|e| {
                    use std::os::unix::fs::MetadataExt;
                    e.metadata().is_ok_and(|m| m.uid() == uid)
                })
                .count()
        })
        .unwrap_or(0);
    libc::rlim_t::try_from(running).unwrap_or(0) + libc::rlim_t::from(max_processes)
}

/// What the rlimits must also do because no cgroup does it for the whole command.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fallback {
    /// No memory cgroup: limit each process's address space instead.
    pub(crate) memory: bool,
    /// No pids cgroup: limit the user's process count instead (not effective for root).
    pub(crate) processes: bool,
}

/// Lowers resource limits in the child before exec and moves it into its cgroups: file size,
/// CPU time per process, no core dumps, and what `fallback` says. Limits are only ever lowered,
/// hard limit included, so the command cannot raise them back. `cgroup_procs` are open
/// `cgroup.procs` files the child writes "0" (itself) to.
pub(crate) fn limit_resources(
    cmd: &mut Command,
    limits: &crate::Limits,
    fallback: Fallback,
    cgroup_procs: Vec<OwnedFd>,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut rlimits = vec![(libc::RLIMIT_CORE, lowered(libc::RLIMIT_CORE, 0)?)];
    if let Some(bytes) = limits.file_size_bytes {
        rlimits.push((libc::RLIMIT_FSIZE, lowered(libc::RLIMIT_FSIZE, bytes)?));
    }
    if let Some(cpu) = limits.cpu_time {
        // Whole seconds, rounded up; SIGXCPU at the soft limit, SIGKILL a second later for a
        // process that ignores it. The cgroup watch (when there is one) is exact and counts the
        // whole tree; this also holds without it.
        let secs = cpu.as_secs() + u64::from(cpu.subsec_nanos() > 0);
        let soft = lowered(libc::RLIMIT_CPU, secs.max(1))?;
        let hard = lowered(libc::RLIMIT_CPU, secs.max(1) + 1)?;
        rlimits.push((
            libc::RLIMIT_CPU,
            libc::rlimit {
                rlim_cur: soft.rlim_cur.min(hard.rlim_max),
                rlim_max: hard.rlim_max,
            },
        ));
    }
    if let (true, Some(bytes)) = (fallback.memory, limits.memory_bytes) {
        rlimits.push((libc::RLIMIT_AS, lowered(libc::RLIMIT_AS, bytes)?));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if let (true, false, Some(max)) = (fallback.processes, root, limits.max_processes) {
        rlimits.push((
            libc::RLIMIT_NPROC,
            lowered(libc::RLIMIT_NPROC, nproc_allowance(max))?,
        ));
    }
    let hook = move || -> io::Result<()> {
        for fd in &cgroup_procs {
            // SAFETY: `fd` is an open descriptor owned by the closure; the buffer is one valid
            // byte. "0" means the writing process.
            if unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        for (resource, limit) in &rlimits {
            set(*resource, *limit)?;
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec, where only async-signal-safe calls are
    // allowed; it calls write and setrlimit only (and builds an io::Error from errno on
    // failure, which does not allocate for OS errors). The vectors were built before the fork
    // and are only read.
    unsafe {
        cmd.pre_exec(hook);
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// The current limit of `resource` with both soft and hard lowered to at most `max`.
fn lowered(resource: Resource, max: libc::rlim_t) -> io::Result<libc::rlimit> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid, writable rlimit struct.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(libc::rlimit {
        rlim_cur: current.rlim_cur.min(max),
        rlim_max: current.rlim_max.min(max),
    })
}

fn set(resource: Resource, limit: libc::rlimit) -> io::Result<()> {
    // SAFETY: `limit` is a valid rlimit struct that setrlimit only reads.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
