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

/// Reaps the child `pid` if it has exited, without waiting.
pub(crate) fn try_wait(pid: u32) -> io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is valid and writable across the call.
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        0 => Ok(None),
        rc if rc == pid => Ok(Some(std::process::ExitStatus::from_raw(status))),
        _ => Err(io::Error::last_os_error()),
    }
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
        // A session keyring of its own, so that no key of ours (nor of another command) can
        // be read or left there. Best effort: where keyctl is forbidden (Docker's seccomp
        // profile), the command cannot use it either.
        // SAFETY: keyctl with integer arguments only.
        unsafe {
            libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0usize);
        }
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

/// keyctl(2)'s operation that gives the caller a new, anonymous session keyring (with a null
/// name).
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;

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

/// Clears close-on-exec on `fd` in the child only, so the program it runs inherits it (bwrap's
/// `--info-fd`). The parent's copy keeps the flag, so no other child gets it.
pub(crate) fn keep_open_on_exec(cmd: &mut Command, fd: std::os::fd::RawFd) {
    let hook = move || -> io::Result<()> {
        // SAFETY: fcntl on a descriptor number, async-signal-safe; a closed fd is an error.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook only calls fcntl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Reads from `fd` until `done` says the bytes so far are enough, the writer closes it, or
/// `deadline` passes (an error of kind `TimedOut`).
pub(crate) fn read_until(
    fd: std::os::fd::BorrowedFd<'_>,
    deadline: std::time::Instant,
    done: impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while !done(&bytes) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, live across the call.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if ready == 0 {
            continue;
        }
        // SAFETY: `chunk` is a valid, writable buffer of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        match n {
            0 => break,
            n if n > 0 => bytes.extend_from_slice(&chunk[..n.unsigned_abs()]),
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(bytes)
}

/// How a command enters its task's sandbox (see session.rs): everything is computed before the
/// fork, because between fork and exec nothing may allocate.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The sandbox's namespaces (`/proc/PID/ns/*` of its holder, kept open), with their
    /// `CLONE_NEW*` type; first the user namespace that owns the rest, since it grants the
    /// rights to join them and to mount.
    pub(crate) namespaces: Vec<(OwnedFd, libc::c_int)>,
    /// The holder's own user namespace when it is a child of the owning one (bwrap nests one
    /// for users other than root, to map them back to their own uid): joined last, so the
    /// command sees the ids that bwrap's own sandbox shows.
    pub(crate) final_user: Option<OwnedFd>,
    /// The worktree, where the command starts.
    pub(crate) workdir: std::ffi::CString,
    /// A fresh /tmp for each command, unless the host's /tmp itself is bound.
    pub(crate) fresh_tmp: Option<FreshTmp>,
}

/// The command's own empty /tmp, with HOME inside and the host directories that live under
/// the host's /tmp (a worktree, say) bound again on top.
#[derive(Debug)]
pub(crate) struct FreshTmp {
    pub(crate) home: std::ffi::CString,
    pub(crate) binds: Vec<TmpBind>,
}

/// A directory bound inside /tmp, and the directories to create for it (outermost first).
#[derive(Debug)]
pub(crate) struct TmpBind {
    pub(crate) path: std::ffi::CString,
    pub(crate) make: Vec<std::ffi::CString>,
}

/// At most this many binds are carried over a fresh /tmp (they are held in a fixed array
/// between fork and exec). A worktree, its repository and a toolchain make three.
pub(crate) const MAX_TMP_BINDS: usize = 8;

/// /proc entries bubblewrap makes read-only; the command's own /proc gets the same.
const PROC_READ_ONLY: [&std::ffi::CStr; 4] = [
    c"/proc/sys",
    c"/proc/sysrq-trigger",
    c"/proc/irq",
    c"/proc/bus",
];

/// The user namespace that owns the namespace `ns` (an open `/proc/PID/ns/*` file).
pub(crate) fn owning_user_namespace(ns: std::os::fd::BorrowedFd<'_>) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: NS_GET_USERNS takes no argument and returns a new descriptor, which we own.
    let fd = check(unsafe { libc::ioctl(ns.as_raw_fd(), libc::NS_GET_USERNS) })?;
    // SAFETY: the ioctl succeeded, so `fd` is open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes the spawned process enter `entry`'s sandbox instead of starting a new one.
///
/// The process `Command` forks (which has joined the cgroup and taken the rlimits) is only a
/// step: it makes itself undumpable, joins the sandbox's namespaces, unshares a mount, pid and
/// IPC namespace of its own, and clones the command's process as a child of *ours*
/// (`CLONE_PARENT`); it writes that pid to `pid_pipe` and exits at once, so no copy of this
/// process's memory stays alive, or visible, while the command runs. The new process is the
/// pid namespace's init: it starts a new session, mounts its own /proc, /tmp and /dev/shm,
/// drops every capability, sets `no_new_privs` and returns to `Command`, which execs the shell.
/// When it exits, the kernel kills whatever the command left in its pid namespace.
pub(crate) fn enter(cmd: &mut Command, entry: std::sync::Arc<Entry>, pid_pipe: std::os::fd::RawFd) {
    let hook = move || -> io::Result<()> { enter_now(&entry, pid_pipe) };
    // SAFETY: the hook runs between fork and exec. It only makes raw system calls (prctl,
    // setns, unshare, clone, write, _exit, setsid, mount, mkdir, open, chdir, capset) on data
    // prepared before the fork, and formats one path into a stack buffer; it never allocates,
    // takes a lock or runs fork handlers (clone is the raw system call).
    unsafe {
        cmd.pre_exec(hook);
    }
}

fn enter_now(entry: &Entry, pid_pipe: libc::c_int) -> io::Result<()> {
    // SAFETY (for the calls below): plain system calls with integer arguments or pointers to
    // NUL-terminated strings and structs that outlive the call.
    unsafe {
        // A copy of our memory: nobody may read it, not even through /proc.
        check(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0))?;
        for (fd, kind) in &entry.namespaces {
            check(libc::setns(std::os::fd::AsRawFd::as_raw_fd(fd), *kind))?;
        }
        check(libc::unshare(
            libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC,
        ))?;
        let flags = libc::c_ulong::try_from(libc::CLONE_PARENT | libc::SIGCHLD).unwrap_or(0);
        let init = check(libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            0usize,
            0usize,
            0usize,
        ))?;
        if init > 0 {
            let pid = libc::pid_t::try_from(init).unwrap_or(0).to_ne_bytes();
            let written = libc::write(pid_pipe, pid.as_ptr().cast(), pid.len());
            libc::_exit(if written == 4 { 0 } else { 1 });
        }
        // The command's process, pid 1 of its namespace.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        // Its own session: no terminal to push keystrokes into, and a group of its own that
        // the timeout kills.
        check(libc::setsid())?;
        make_root_private()?;
        let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        mount_new(c"proc", c"/proc", proc_flags, None)?;
        for path in PROC_READ_ONLY {
            // Each bound read-only onto itself, /proc/sys included: as uid 0 (Nightshift run
            // by root), writing a sysctl needs no capability, and kernel.core_pattern would
            // run a program as the host's root. Only what this kernel lacks is skipped.
            if libc::mount(
                path.as_ptr(),
                path.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                let error = io::Error::last_os_error();
                if error.raw_os_error() == Some(libc::ENOENT) {
                    continue;
                }
                return Err(error);
            }
            check(libc::mount(
                std::ptr::null(),
                path.as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | proc_flags,
                std::ptr::null(),
            ))?;
        }
        if let Some(tmp) = &entry.fresh_tmp {
            renew_tmp(tmp)?;
        }
        mount_new(
            c"tmpfs",
            c"/dev/shm",
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(c"mode=1777"),
        )?;
        // Its own terminals too, as bwrap's --dev gives each sandbox: no reading or typing
        // into another command's pty.
        mount_new(
            c"devpts",
            c"/dev/pts",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=620"),
        )?;
        if let Some(user) = &entry.final_user {
            check(libc::setns(
                std::os::fd::AsRawFd::as_raw_fd(user),
                libc::CLONE_NEWUSER,
            ))?;
        }
        drop_capabilities()?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        check(libc::chdir(entry.workdir.as_ptr()))?;
        // A descriptor of ours opened without close-on-exec (a C library's fopen, one
        // inherited from our own parent) must not reach the command: it could lead back out
        // of the sandbox. Kernels before 5.11 lack the flag; there is nothing better to do.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    Ok(())
}

/// Mounts a new file system of type `fstype` (also its source name) on `target`.
unsafe fn mount_new(
    fstype: &std::ffi::CStr,
    target: &std::ffi::CStr,
    flags: libc::c_ulong,
    options: Option<&std::ffi::CStr>,
) -> io::Result<()> {
    let options = options.map_or(std::ptr::null(), |o| o.as_ptr().cast());
    // SAFETY: NUL-terminated strings, or null options, all outliving the call.
    check(unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            options,
        )
    })?;
    Ok(())
}

/// Stops mount events from propagating into or out of the caller's mount namespace.
unsafe fn make_root_private() -> io::Result<()> {
    // SAFETY: mount with a NUL-terminated path and null pointers where it allows them.
    check(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })?;
    Ok(())
}

/// Makes every mount of `entry`'s sandbox private, in a short-lived process that joins its
/// mount namespace and then execs `cmd` (`true`). bwrap leaves them slaves of the host's, so
/// that something mounted on the host later (removable media, an automount) would appear, as
/// writable as on the host, in every command of the task.
pub(crate) fn make_private(cmd: &mut Command, entry: std::sync::Arc<Entry>) {
    let hook = move || -> io::Result<()> {
        // SAFETY: setns and mount with descriptors and NUL-terminated strings that outlive
        // the calls; nothing allocates.
        unsafe {
            for (fd, kind) in &entry.namespaces {
                if *kind == libc::CLONE_NEWUSER || *kind == libc::CLONE_NEWNS {
                    check(libc::setns(std::os::fd::AsRawFd::as_raw_fd(fd), *kind))?;
                }
            }
            make_root_private()?;
        }
        Ok(())
    };
    // SAFETY: the hook only makes raw system calls on data prepared before the fork.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// The pid that [`enter`]'s first process wrote, once that process is gone; `None` when it
/// failed before making the command's process.
pub(crate) fn read_pid(pipe: OwnedFd) -> Option<u32> {
    let mut file = std::fs::File::from(pipe);
    let mut bytes = [0u8; 4];
    std::io::Read::read_exact(&mut file, &mut bytes).ok()?;
    u32::try_from(libc::pid_t::from_ne_bytes(bytes))
        .ok()
        .filter(|&pid| pid > 1)
}

/// Empty tmpfs on /tmp (as bwrap's `--tmpfs`), HOME in it, and the binds under /tmp again:
/// each is held open (O_PATH) before the tmpfs covers it and bound back from that descriptor.
unsafe fn renew_tmp(tmp: &FreshTmp) -> io::Result<()> {
    let mut held = [-1 as libc::c_int; MAX_TMP_BINDS];
    for (slot, bind) in held.iter_mut().zip(&tmp.binds) {
        // SAFETY: a NUL-terminated path.
        *slot = check(unsafe { libc::open(bind.path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })?;
    }
    // SAFETY: called between fork and exec, like this function.
    unsafe {
        mount_new(
            c"tmpfs",
            c"/tmp",
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(c"mode=0755"),
        )?;
    }
    make_dir(&tmp.home)?;
    for (fd, bind) in held.iter().zip(&tmp.binds) {
        for dir in &bind.make {
            make_dir(dir)?;
        }
        let mut source = [0u8; 32];
        fd_path(*fd, &mut source);
        // SAFETY: `source` is NUL-terminated by fd_path; the target is a NUL-terminated path.
        check(unsafe {
            libc::mount(
                source.as_ptr().cast(),
                bind.path.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            )
        })?;
    }
    Ok(())
}

/// mkdir that accepts an existing directory.
fn make_dir(path: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mkdir(path.as_ptr(), 0o755) } != 0 {
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::AlreadyExists {
            return Err(error);
        }
    }
    Ok(())
}

/// Writes "/proc/self/fd/N" and a NUL into `out` without allocating.
fn fd_path(fd: libc::c_int, out: &mut [u8; 32]) {
    let prefix = b"/proc/self/fd/";
    out[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut n = fd.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..len].iter().rev().enumerate() {
        out[prefix.len() + i] = *d;
    }
    out[prefix.len() + len] = 0;
}

/// Empties every capability set and the bounding set, as bwrap's `--cap-drop ALL` does: the
/// command runs with none, even as uid 0 of the user namespace, and cannot gain any by exec.
unsafe fn drop_capabilities() -> io::Result<()> {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments. EINVAL: past the last capability.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINVAL) {
                return Err(error);
            }
        }
    }
    // SAFETY: as above; fails only on kernels without ambient capabilities, which have none.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads one header and two data structs (version 3), all live locals.
    check(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } as libc::c_int)?;
    Ok(())
}

/// A system call's result, or the error in errno when it is negative.
fn check<T: Copy + PartialOrd + Default>(rc: T) -> io::Result<T> {
    if rc < T::default() {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}
