//! Path confinement: every path a tool touches is resolved here, relative to the worktree root.
//!
//! The argument is normalized lexically (`.` dropped, `..` popped) and the tools act on the
//! normalized path, so a `..` that would climb out of the root is refused before any I/O. Then
//! every existing prefix of the path is canonicalized: a symlink anywhere along the way whose
//! target lies outside the root (or cannot be resolved at all) is refused, so a write through
//! `link/new.txt` cannot land outside even when `new.txt` does not exist yet.
//!
//! The checks and the later I/O are not atomic. That is acceptable here because a task's tool
//! calls run one at a time and nothing else writes to the worktree meanwhile; the sandbox, not
//! this module, is what contains the commands the model runs.

use std::io;
use std::path::{Component, Path, PathBuf};

/// What a resolved path argument will be used for; writes are held to stricter rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A path argument that passed confinement.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The normalized path relative to the root, `/`-separated; `.` for the root itself.
    pub(crate) rel: String,
    /// `root.join(rel)`; what the tools open.
    pub(crate) abs: PathBuf,
}

/// Resolves `arg` against the canonical `root`, or says (as text for the model) why it may not
/// be used.
pub(crate) fn resolve(root: &Path, arg: &str, access: Access) -> Result<Resolved, String> {
    const RULE: &str = "paths must be relative to the repository root (e.g. `src/main.rs`)";
    if arg.contains('\0') {
        return Err(format!("the path {arg:?} contains a NUL byte; {RULE}"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(arg).components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Err(format!("`{arg}` is an absolute path; {RULE}"));
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "`{arg}` leaves the repository through `..`; {RULE} and stay inside it"
                    ));
                }
            }
            Component::Normal(part) => match part.to_str() {
                Some(part) => parts.push(part),
                // Unreachable from a `&str` argument, but refusing beats guessing.
                None => return Err(format!("`{arg}` is not valid UTF-8; {RULE}")),
            },
        }
    }
    if access == Access::Write && parts.contains(&".git") {
        return Err(format!(
            "`{arg}` is inside `.git`; the git metadata is managed by Nightshift and may not be \
             written by tools"
        ));
    }

    let mut probe = root.to_path_buf();
    for (depth, part) in parts.iter().enumerate() {
        probe.push(part);
        match probe.symlink_metadata() {
            Ok(_) => {}
            // The rest of the path does not exist yet: nothing left that could be a symlink.
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            // E.g. a prefix is a regular file: the tool's own I/O reports that plainly.
            Err(_) => break,
        }
        let shown = parts[..=depth].join("/");
        let real = probe.canonicalize().map_err(|e| {
            format!(
                "`{shown}` is a symlink that cannot be resolved ({e}); {RULE}, and symlinks \
                 must point inside it"
            )
        })?;
        let Ok(inside) = real.strip_prefix(root) else {
            return Err(format!(
                "`{shown}` resolves to `{}`, outside the repository; {RULE}, and symlinks must \
                 point inside it",
                real.display()
            ));
        };
        // A symlink such as `hooks -> .git/hooks` would otherwise let a write reach git's
        // metadata (and plant a hook that runs on the host at commit time).
        if access == Access::Write && inside.components().any(|c| c.as_os_str() == ".git") {
            return Err(format!(
                "`{shown}` resolves into `.git`; the git metadata is managed by Nightshift and \
                 may not be written by tools"
            ));
        }
    }

    let abs = parts
        .iter()
        .fold(root.to_path_buf(), |path, part| path.join(part));
    let rel = if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    };
    Ok(Resolved { rel, abs })
}

/// `abs` relative to `root`, `/`-separated, for display.
pub(crate) fn display_rel(root: &Path, abs: &Path) -> String {
    let rel = abs.strip_prefix(root).unwrap_or(abs);
    let text = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    if text.is_empty() {
        ".".to_owned()
    } else {
        text
    }
}
