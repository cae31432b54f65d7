//! `list_files` and `search`: walks of the worktree that honour `.gitignore`.
//!
//! The walk always starts at the worktree root and prunes everything off the way to the
//! requested directory, so `.gitignore` rules apply exactly as git applies them, whichever
//! subdirectory is asked for, and no ignore file above the repository is consulted.
//! `require_git(false)` applies `.gitignore` even when `.git` is missing or is a linked
//! worktree's `.git` file. Hidden files are listed; `.git` never is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::WalkBuilder;

use crate::MAX_TOOL_OUTPUT;
use crate::paths::{Access, Resolved, display_rel, resolve};
use crate::spec::{ListArgs, SearchArgs};

/// Entries shown by one `list_files` call.
const MAX_ENTRIES: usize = 2000;
/// Entries a walk collects before it stops counting.
const WALK_LIMIT: usize = 200_000;
/// Matches shown by one `search` call.
const MAX_MATCHES: usize = 200;
/// Bytes of listing or matches in one result; leaves room for the notes.
const BUDGET: usize = MAX_TOOL_OUTPUT - 2048;
/// Bytes of a matching line shown around the match.
const MAX_MATCH_LINE: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    /// A FIFO, socket or device: listed, never opened (reading a FIFO would block forever).
    Special,
    /// A symlink (never followed by the walk) and what it points to.
    Symlink(String),
}

struct Entry {
    rel: String,
    abs: PathBuf,
    kind: Kind,
    depth: usize,
}

struct Walked {
    /// The target (when it is a file) and everything under it, in sorted depth-first order.
    entries: Vec<Entry>,
    /// The target itself is ignored by `.gitignore`; it was walked because it was named.
    target_ignored: bool,
    /// The walk stopped at WALK_LIMIT entries.
    incomplete: bool,
    /// The real path walked, when the requested one goes through a symlink.
    real: Option<String>,
}

fn walker(start: &Path) -> WalkBuilder {
    let mut builder = WalkBuilder::new(start);
    builder
        .hidden(false)
        .parents(false)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b));
    builder
}

fn walk(root: &Path, target: &Path) -> Walked {
    // Walk where the files really are, so a symlink inside the worktree (`docs -> src`) lists
    // its target's content instead of an unexplored link. `resolve` checked it stays inside.
    let real_abs = target
        .canonicalize()
        .unwrap_or_else(|_| target.to_path_buf());
    let real_rel = real_abs
        .strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let real = (real_abs != target)
        .then(|| display_rel(root, &real_abs))
        .filter(|r| !r.is_empty());

    let mut walked = Walked {
        entries: Vec::new(),
        target_ignored: false,
        incomplete: false,
        real,
    };
    let mut builder = walker(root);
    let (filter_root, filter_target) = (root.to_path_buf(), real_rel.clone());
    builder.filter_entry(move |e| {
        if e.file_name() == ".git" {
            return false;
        }
        let Ok(rel) = e.path().strip_prefix(&filter_root) else {
            return false;
        };
        filter_target.starts_with(rel) || rel.starts_with(&filter_target)
    });
    let mut seen_target = real_rel.as_os_str().is_empty();
    collect(root, builder, &real_rel, &mut walked, &mut seen_target);
    if !seen_target {
        // Named explicitly but ignored (e.g. `target/` or `node_modules/x`): list it anyway;
        // ignore files inside it still apply.
        walked.target_ignored = true;
        let mut builder = walker(&real_abs);
        builder.filter_entry(|e| e.file_name() != ".git");
        let mut seen = true;
        collect(root, builder, &real_rel, &mut walked, &mut seen);
    }
    walked
}

fn collect(root: &Path, builder: WalkBuilder, target: &Path, walked: &mut Walked, seen: &mut bool) {
    for item in builder.build() {
        // Unreadable entries are skipped, as git and ripgrep skip them.
        let Ok(entry) = item else { continue };
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        if rel == target {
            *seen = true;
        }
        if !rel.starts_with(target) || rel.as_os_str().is_empty() {
            continue;
        }
        if walked.entries.len() >= WALK_LIMIT {
            walked.incomplete = true;
            break;
        }
        let kind = match entry.file_type() {
            Some(t) if t.is_symlink() => Kind::Symlink(
                std::fs::read_link(entry.path())
                    .map_or_else(|_| "?".to_owned(), |to| to.display().to_string()),
            ),
            Some(t) if t.is_dir() => Kind::Dir,
            Some(t) if t.is_file() => Kind::File,
            _ => Kind::Special,
        };
        if rel == target && kind == Kind::Dir {
            continue;
        }
        walked.entries.push(Entry {
            rel: display_rel(root, entry.path()),
            abs: entry.path().to_path_buf(),
            kind,
            depth: rel.components().count(),
        });
    }
}

pub(crate) fn list(root: &Path, args: ListArgs) -> Result<String, String> {
    let target = resolve(root, args.path.as_deref().unwrap_or("."), Access::Read)?;
    refuse_git_dir(&target)?;
    match std::fs::metadata(&target.abs) {
        Ok(meta) if !meta.is_dir() => {
            return Err(format!(
                "`{}` is a file, not a directory; use read_file to read it",
                target.rel
            ));
        }
        Ok(_) => {}
        Err(_) => {
            return Err(format!(
                "`{}` does not exist; call list_files without a path to see the repository \
                 root",
                target.rel
            ));
        }
    }
    let walked = walk(root, &target.abs);
    let mut notes = Vec::new();
    if let Some(real) = &walked.real {
        notes.push(format!("`{}` is a symlink to `{real}`", target.rel));
    }
    if walked.target_ignored {
        notes.push(format!(
            "`{}` is ignored by .gitignore; listed because it was asked for",
            target.rel
        ));
    }
    let entries: Vec<&Entry> = walked.entries.iter().collect();
    if entries.is_empty() {
        notes.push(format!(
            "`{}` is empty (or everything in it is ignored by .gitignore)",
            target.rel
        ));
        return Ok(notes.join("\n"));
    }

    // Over the cap, show the shallowest entries first: an overview of the whole tree beats
    // every file of the first subdirectory.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].depth);
    let mut chosen = vec![false; entries.len()];
    let (mut count, mut bytes) = (0, 0);
    for &i in &order {
        // The line itself, plus room for a `/` or ` -> target` and an "(N entries not shown)".
        let cost = entries[i].rel.len()
            + match &entries[i].kind {
                Kind::File | Kind::Special => 1,
                Kind::Dir => 32,
                Kind::Symlink(to) => to.len() + 5,
            };
        if count >= MAX_ENTRIES || bytes + cost > BUDGET {
            break;
        }
        chosen[i] = true;
        count += 1;
        bytes += cost;
    }
    // Directories whose content was left out say how much, so the model knows where to look.
    let mut hidden: HashMap<&str, usize> = HashMap::new();
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.rel.as_str(), i))
        .collect();
    for entry in entries
        .iter()
        .zip(&chosen)
        .filter(|(_, c)| !**c)
        .map(|(e, _)| e)
    {
        let mut dir = Path::new(&entry.rel).parent();
        while let Some(d) = dir.and_then(Path::to_str).filter(|d| !d.is_empty()) {
            if index.get(d).is_some_and(|&j| chosen[j]) {
                *hidden.entry(&entries[index[d]].rel).or_default() += 1;
                break;
            }
            dir = Path::new(d).parent();
        }
    }

    let mut lines = Vec::with_capacity(count);
    for entry in entries
        .iter()
        .zip(&chosen)
        .filter(|(_, c)| **c)
        .map(|(e, _)| e)
    {
        let mut line = entry.rel.clone();
        match &entry.kind {
            Kind::Dir => line.push('/'),
            Kind::Symlink(to) => line.push_str(&format!(" -> {to}")),
            Kind::File | Kind::Special => {}
        }
        if let Some(n) = hidden.get(entry.rel.as_str()) {
            line.push_str(&format!("  ({n} entries not shown)"));
        }
        lines.push(line);
    }
    let mut text = lines.join("\n");
    if count < entries.len() || walked.incomplete {
        let total = if walked.incomplete {
            format!("more than {}", entries.len())
        } else {
            entries.len().to_string()
        };
        notes.push(format!(
            "showing {count} of {total} entries, shallowest first; call list_files with a \
             directory's path to see everything under it"
        ));
    }
    for note in notes {
        text.push_str(&format!("\n[{note}]"));
    }
    Ok(text)
}

pub(crate) fn search(root: &Path, args: SearchArgs) -> Result<String, String> {
    if args.pattern.is_empty() {
        return Err("the pattern is empty; give a regular expression to search for".to_owned());
    }
    let target = resolve(root, args.path.as_deref().unwrap_or("."), Access::Read)?;
    refuse_git_dir(&target)?;
    if !target.abs.exists() {
        return Err(format!(
            "`{}` does not exist; use list_files to see which files exist",
            target.rel
        ));
    }
    let matcher = RegexMatcherBuilder::new()
        .line_terminator(Some(b'\n'))
        .build(&args.pattern)
        .map_err(|e| {
            format!(
                "invalid regular expression `{}`: {e}\n(Rust regex syntax; escape special \
                 characters such as `(` `[` `.` `*` with a backslash)",
                args.pattern
            )
        })?;
    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .binary_detection(BinaryDetection::quit(0))
        .build();

    let walked = walk(root, &target.abs);
    let mut lines: Vec<String> = Vec::new();
    let mut bytes = 0;
    let mut more = false;
    let mut unreadable = 0;
    for entry in walked
        .entries
        .iter()
        .filter(|e| matches!(e.kind, Kind::File))
    {
        let sink = Lossy(|number, line: &str| {
            if lines.len() >= MAX_MATCHES || bytes >= BUDGET {
                more = true;
                return Ok(false);
            }
            let shown = format!("{}:{number}: {}", entry.rel, excerpt(&matcher, line));
            bytes += shown.len() + 1;
            lines.push(shown);
            Ok(true)
        });
        if searcher.search_path(&matcher, &entry.abs, sink).is_err() {
            unreadable += 1;
        }
        if more {
            break;
        }
    }

    let mut text = if lines.is_empty() {
        format!("no matches for `{}` in `{}`", args.pattern, target.rel)
    } else {
        lines.join("\n")
    };
    if more {
        text.push_str(&format!(
            "\n[stopped after {} matches; narrow the pattern or give a path to see the rest]",
            lines.len()
        ));
    }
    if walked.target_ignored {
        text.push_str(&format!(
            "\n[`{}` is ignored by .gitignore; searched because it was asked for]",
            target.rel
        ));
    }
    if walked.incomplete {
        text.push_str(&format!(
            "\n[only the first {WALK_LIMIT} entries were searched; give a path to search the rest]"
        ));
    }
    if unreadable > 0 {
        text.push_str(&format!("\n[{unreadable} files could not be read]"));
    }
    Ok(text)
}

/// Walks never enter `.git`; say so instead of listing nothing, or everything.
fn refuse_git_dir(target: &Resolved) -> Result<(), String> {
    if target.rel.split('/').any(|part| part == ".git") {
        return Err(format!(
            "`{}` is inside `.git`, git's own metadata, which list_files and search skip; use \
             shell (e.g. `git log`, `git status`) to ask git about the repository",
            target.rel
        ));
    }
    Ok(())
}

/// The matching line without its line ending; a long one is cut to a window around the match.
fn excerpt(matcher: &RegexMatcher, line: &str) -> String {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.len() <= MAX_MATCH_LINE {
        return line.to_owned();
    }
    let at = matcher
        .find(line.as_bytes())
        .ok()
        .flatten()
        .map_or(0, |m| m.start());
    let mut start = at.saturating_sub(MAX_MATCH_LINE / 3);
    while !line.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + MAX_MATCH_LINE).min(line.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let before = if start > 0 { "…" } else { "" };
    let after = if end < line.len() { "…" } else { "" };
    format!(
        "{before}{}{after} [line of {} bytes cut]",
        &line[start..end],
        line.len()
    )
}
