//! What the sandbox looks like from inside: bubblewrap's mount list and the scrubbed
//! environment. Computed once per `Sandbox` from the host, so each run only spawns.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// HOME inside the bwrap sandbox: on its private /tmp, so it starts empty every run.
pub(crate) const SANDBOX_HOME: &str = "/tmp/home";
/// PATH when the host has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host directories replaced by an empty tmpfs: other people's and root's homes (keys, cloud
/// credentials, shell history) and /run (docker.sock, ssh-agent and D-Bus sockets, which a
/// network namespace does not cut off).
const HIDDEN_DIRS: &[&str] = &["/run", "/home", "/root"];
/// Host files replaced by an empty, unreadable file.
const MASKED_FILES: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
];

/// The Rust toolchain of the host, made visible (read-only) even though HOME is hidden.
#[derive(Clone, Debug, Default)]
pub(crate) struct Toolchain {
    pub(crate) cargo_home: Option<PathBuf>,
    pub(crate) rustup_home: Option<PathBuf>,
}

impl Toolchain {
    /// `CARGO_HOME` / `RUSTUP_HOME` when set, else `~/.cargo` / `~/.rustup` when they exist.
    pub(crate) fn detect(host_home: Option<&Path>) -> Toolchain {
        let find = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| host_home.map(|h| h.join(default)))
        };
        Toolchain {
            cargo_home: find("CARGO_HOME", ".cargo"),
            rustup_home: find("RUSTUP_HOME", ".rustup"),
        }
        .resolved()
    }

    /// Only absolute directories that exist, canonical (bwrap mounts them at that path).
    pub(crate) fn resolved(self) -> Toolchain {
        Toolchain {
            cargo_home: existing_dir(self.cargo_home),
            rustup_home: existing_dir(self.rustup_home),
        }
    }

    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.cargo_home.iter().chain(self.rustup_home.iter())
    }
}

/// The host's HOME from the environment, if it is a real directory other than `/`.
pub(crate) fn host_home() -> Option<PathBuf> {
    existing_dir(std::env::var_os("HOME").map(PathBuf::from))
}

/// `path` canonical, if it is an absolute path to a directory other than `/`.
pub(crate) fn existing_dir(path: Option<PathBuf>) -> Option<PathBuf> {
    path.filter(|p| p.is_absolute() && p.is_dir())
        .and_then(|p| p.canonicalize().ok())
        .filter(|p| p != Path::new("/"))
}

/// One mount of the sandbox, applied in the order of the list.
enum Mount {
    Tmpfs(PathBuf),
    Bind(PathBuf),
    RoBind(PathBuf),
    Dir(PathBuf),
}

impl Mount {
    fn path(&self) -> &Path {
        match self {
            Mount::Tmpfs(p) | Mount::Bind(p) | Mount::RoBind(p) | Mount::Dir(p) => p,
        }
    }
}

/// bubblewrap's arguments up to and including `--`: the command follows.
pub(crate) fn bwrap_args(
    workdir: &Path,
    host_home: Option<&Path>,
    tc: &Toolchain,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        // Every namespace (net, pid, ipc, uts, user, cgroup), no capabilities even when we run
        // as root (otherwise CAP_SYS_ADMIN could remount / writable), killed with us, and its
        // own session so it cannot push keystrokes into our terminal (TIOCSTI).
        "--unshare-all",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        // Its own, writable: /dev itself is made read-only below.
        "--tmpfs",
        "/dev/shm",
        "--proc",
        "/proc",
        // bwrap leaves /proc/sys writable where the kernel lets the sandbox's user write it,
        // and a sysctl asks uid 0 (Nightshift run by root) for no capability:
        // kernel.core_pattern would then run a program as the host's root.
        "--ro-bind",
        "/proc/sys",
        "/proc/sys",
        "--tmpfs",
        "/tmp",
    ]
    .iter()
    .map(OsString::from)
    .collect();

    for mount in mounts(workdir, host_home, tc) {
        let (flag, path, twice) = match mount {
            Mount::Tmpfs(p) => ("--tmpfs", p, false),
            Mount::Dir(p) => ("--dir", p, false),
            Mount::Bind(p) => ("--bind", p, true),
            Mount::RoBind(p) => ("--ro-bind", p, true),
        };
        args.push(flag.into());
        if twice {
            args.push(path.clone().into_os_string());
        }
        args.push(path.into_os_string());
    }

    // Files last, so no directory mount uncovers them again.
    for file in masked_files(tc) {
        args.extend([
            "--ro-bind".into(),
            "/dev/null".into(),
            file.into_os_string(),
        ]);
    }
    args.push("--chdir".into());
    args.push(workdir.as_os_str().to_owned());
    args.push("--".into());
    args
}

/// [`bwrap_args`] for the task's shared sandbox: also read-only where a command could
/// otherwise leave a file for the next one (and for the checks) to find, /dev and the hidden
/// homes and /run. Those go last, once everything inside them is mounted; /tmp and /dev/shm are
/// renewed per command instead. A bubblewrap per command needs none of this.
pub(crate) fn shared_bwrap_args(
    workdir: &Path,
    host_home: Option<&Path>,
    tc: &Toolchain,
) -> Vec<OsString> {
    let mut args = bwrap_args(workdir, host_home, tc);
    let end = args.pop(); // "--"
    args.extend(["--remount-ro".into(), "/dev".into()]);
    for hidden in hidden_dirs(host_home) {
        args.extend(["--remount-ro".into(), hidden.into_os_string()]);
    }
    args.extend(end);
    args
}

/// The host directories bound inside the private /tmp (a workdir, a repository or a toolchain
/// under the host's /tmp), outermost only: what must be bound again over a fresh /tmp. `None`
/// when /tmp itself is bound, so that there is no private /tmp to renew.
pub(crate) fn binds_in_tmp(
    workdir: &Path,
    host_home: Option<&Path>,
    tc: &Toolchain,
) -> Option<Vec<PathBuf>> {
    let tmp = Path::new("/tmp");
    let mut binds: Vec<PathBuf> = Vec::new();
    for mount in mounts(workdir, host_home, tc) {
        let (Mount::Bind(path) | Mount::RoBind(path)) = mount else {
            continue;
        };
        if path == tmp {
            return None;
        }
        // Sorted parents first, so a nested bind finds its parent already listed.
        if path.starts_with(tmp) && !binds.iter().any(|b| path.starts_with(b)) {
            binds.push(path);
        }
    }
    Some(binds)
}

/// The host directories covered by an empty tmpfs (not /tmp): those of [`HIDDEN_DIRS`] and the
/// host HOME that exist, canonical, without one inside another.
fn hidden_dirs(host_home: Option<&Path>) -> Vec<PathBuf> {
    let mut hidden: Vec<PathBuf> = vec![PathBuf::from("/tmp")];
    let candidates = HIDDEN_DIRS
        .iter()
        .map(PathBuf::from)
        .chain(host_home.map(Path::to_path_buf));
    for dir in candidates {
        let Ok(dir) = dir.canonicalize() else {
            continue;
        };
        if !dir.is_dir() || hidden.iter().any(|h| dir.starts_with(h)) {
            continue;
        }
        hidden.push(dir);
    }
    hidden.remove(0);
    hidden
}

/// The sandbox's mounts after `/`, /dev, /proc and /tmp, in the order bwrap applies them.
fn mounts(workdir: &Path, host_home: Option<&Path>, tc: &Toolchain) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = hidden_dirs(host_home)
        .into_iter()
        .map(Mount::Tmpfs)
        .collect();
    mounts.push(Mount::Dir(PathBuf::from(SANDBOX_HOME)));
    mounts.push(Mount::Bind(workdir.to_path_buf()));
    for dir in tc.dirs() {
        mounts.push(Mount::RoBind(dir.clone()));
    }
    if let Some(git_dir) = worktree_git_dir(workdir) {
        mounts.push(Mount::RoBind(git_dir));
    }
    // bwrap applies mounts in order and a later mount covers what is below it, so a parent must
    // come before its children: the workdir under a hidden HOME, a toolchain under the workdir.
    // The sort is stable, so at equal depth the order above (hide, then expose) holds.
    mounts.sort_by_key(|m| m.path().components().count());
    mounts
}

/// The repository a git worktree belongs to, when it lies outside the workdir: its `.git` is a
/// file pointing there, and without it git inside sees no repository at all (the main checkout
/// is usually under a hidden HOME or /tmp). Bound read-only: git can read history, diff and
/// status, but commits are Nightshift's job, not the command's.
fn worktree_git_dir(workdir: &Path) -> Option<PathBuf> {
    let pointer = std::fs::read_to_string(workdir.join(".git")).ok()?;
    let git_dir = workdir.join(pointer.strip_prefix("gitdir:")?.trim());
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => git_dir.join(rel.trim()),
        Err(_) => git_dir,
    };
    let common = existing_dir(Some(common))?;
    (!common.starts_with(workdir)).then_some(common)
}

/// Secret files that exist on this host: shadow files, SSH host keys, cargo's registry tokens.
fn masked_files(tc: &Toolchain) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = MASKED_FILES.iter().map(PathBuf::from).collect();
    if let Ok(entries) = std::fs::read_dir("/etc/ssh") {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with("_key") {
                files.push(entry.path());
            }
        }
    }
    if let Some(cargo_home) = &tc.cargo_home {
        files.push(cargo_home.join("credentials.toml"));
        files.push(cargo_home.join("credentials"));
    }
    files.retain(|f| f.symlink_metadata().is_ok_and(|m| m.is_file()));
    files.sort();
    files
}

/// The whole environment of the command: an allowlist from the host plus fixed values. Nothing
/// else of the host's environment (API keys, cloud credentials) gets through.
pub(crate) fn base_env(home: &Path, tmpdir: &Path, tc: &Toolchain) -> Vec<(OsString, OsString)> {
    let host = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut put = |name: &str, value: &OsStr| env.push((name.into(), value.to_owned()));

    put("PATH", &host("PATH").unwrap_or_else(|| DEFAULT_PATH.into()));
    let (lang, lc_all) = (host("LANG"), host("LC_ALL"));
    if lang.is_none() && lc_all.is_none() {
        // Without a locale, tools fall back to ASCII and mangle non-ASCII file names.
        put("LANG", OsStr::new("C.UTF-8"));
    }
    for (name, value) in [("LANG", lang), ("LC_ALL", lc_all), ("TZ", host("TZ"))] {
        if let Some(value) = value {
            put(name, &value);
        }
    }
    // Nobody watches the terminal: "dumb" keeps colours and pagers away unless the host says
    // otherwise.
    put("TERM", &host("TERM").unwrap_or_else(|| "dumb".into()));
    put("HOME", home.as_os_str());
    put("TMPDIR", tmpdir.as_os_str());
    put("USER", OsStr::new("nightshift"));
    // Bytecode caches only litter the worktree (and the task's commit), and Python trusts a
    // cached .pyc whose source changed within the same second at the same size — exactly what
    // a quick one-character fix does. A task can still turn this off with its own env.
    put("PYTHONDONTWRITEBYTECODE", OsStr::new("1"));
    if let Some(dir) = &tc.cargo_home {
        put("CARGO_HOME", dir.as_os_str());
    }
    if let Some(dir) = &tc.rustup_home {
        put("RUSTUP_HOME", dir.as_os_str());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_text(workdir: &str, home: Option<&str>, tc: &Toolchain) -> String {
        let args = bwrap_args(Path::new(workdir), home.map(Path::new), tc);
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn workdir_under_hidden_root_is_bound_after_the_tmpfs() {
        let text = args_text("/root/repo", None, &Toolchain::default());
        let tmpfs = text.find("--tmpfs /root").expect("root hidden");
        let bind = text
            .find("--bind /root/repo /root/repo")
            .expect("workdir bound");
        assert!(tmpfs < bind, "{text}");
        assert!(text.ends_with("--chdir /root/repo --"), "{text}");
    }

    #[test]
    fn toolchain_is_bound_read_only_after_hiding_home() {
        let tc = Toolchain {
            cargo_home: Some("/root/.cargo".into()),
            rustup_home: Some("/root/.rustup".into()),
        };
        let text = args_text("/srv/w", None, &tc);
        let tmpfs = text.find("--tmpfs /root").expect("root hidden");
        let cargo = text
            .find("--ro-bind /root/.cargo /root/.cargo")
            .expect("cargo");
        assert!(tmpfs < cargo, "{text}");
        assert!(
            text.contains("--ro-bind /root/.rustup /root/.rustup"),
            "{text}"
        );
    }

    #[test]
    fn only_the_outermost_binds_under_tmp_are_bound_again() {
        let tc = Toolchain {
            cargo_home: Some("/tmp/w/.cargo".into()),
            rustup_home: Some("/opt/rustup".into()),
        };
        let binds = binds_in_tmp(Path::new("/tmp/w"), None, &tc).expect("a private /tmp");
        assert_eq!(binds, vec![PathBuf::from("/tmp/w")]);
        assert_eq!(binds_in_tmp(Path::new("/tmp"), None, &tc), None);
        let none = binds_in_tmp(Path::new("/srv/w"), None, &Toolchain::default());
        assert_eq!(none, Some(Vec::new()));
    }

    #[test]
    fn the_shared_sandbox_remounts_dev_and_hidden_homes_read_only_last() {
        let args = shared_bwrap_args(Path::new("/srv/w"), None, &Toolchain::default());
        let text = args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains(" --remount-ro /dev "), "{text}");
        assert!(text.ends_with(" --"), "{text}");
        let last_bind = text.rfind("--bind").expect("bind");
        assert!(
            last_bind < text.find("--remount-ro").expect("remount"),
            "{text}"
        );
    }

    #[test]
    fn proc_sys_is_read_only() {
        let text = args_text("/srv/w", None, &Toolchain::default());
        let proc = text.find("--proc /proc").expect("proc");
        let sys = text.find("--ro-bind /proc/sys /proc/sys").expect("sys");
        assert!(proc < sys, "{text}");
    }

    #[test]
    fn home_is_created_inside_the_private_tmp() {
        let text = args_text("/srv/w", None, &Toolchain::default());
        let tmp = text.find("--tmpfs /tmp").expect("tmp");
        let home = text.find("--dir /tmp/home").expect("home");
        assert!(tmp < home, "{text}");
    }
}
