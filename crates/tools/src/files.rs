//! `read_file`, `write_file` and `edit_file`.
//!
//! Reads are paged so that a page always fits in what the model sees: a page that
//! [`crate::trim_middle`] had to cut would silently lose lines while the note at its end
//! claimed they had been shown.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::MAX_TOOL_OUTPUT;
use crate::paths::{Access, Resolved, resolve};
use crate::spec::{EditArgs, ReadArgs, WriteArgs};

/// Lines in a page when no end_line is given.
const PAGE_LINES: u64 = 400;
/// Bytes of numbered lines in one page; leaves room for the notes within MAX_TOOL_OUTPUT.
const PAGE_BYTES: usize = MAX_TOOL_OUTPUT - 1024;
/// Longer lines are shown cut, so a minified file still pages.
const MAX_LINE_BYTES: usize = 4000;
/// A NUL byte in this much of the start of a file marks it as binary (as git does).
const BINARY_SNIFF: usize = 8000;
/// Lines of the edited region shown back after an edit.
const EDIT_SNIPPET_LINES: usize = 40;

pub(crate) fn read(root: &Path, args: ReadArgs) -> Result<String, String> {
    let target = resolve(root, &args.path, Access::Read)?;
    let file = open_file(&target)?;
    let first = args.start_line.unwrap_or(1);
    if first == 0 {
        return Err("start_line is 1-based: the first line is 1".to_owned());
    }
    if let Some(end) = args.end_line {
        if end == 0 {
            return Err("end_line is 1-based: the first line is 1".to_owned());
        }
        if end < first {
            return Err(format!(
                "end_line {end} is before start_line {first}; give a range with \
                 start_line <= end_line"
            ));
        }
    }

    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let head = reader
        .fill_buf()
        .map_err(|e| io_error("read", &target, &e))?;
    if head[..head.len().min(BINARY_SNIFF)].contains(&0) {
        return Err(binary_refusal(&target));
    }

    let mut shown: Vec<(u64, String)> = Vec::new();
    let mut shown_bytes = 0;
    let mut cut_short = false;
    let mut lossy = false;
    let mut total = 0u64;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = reader
            .read_until(b'\n', &mut raw)
            .map_err(|e| io_error("read", &target, &e))?;
        if n == 0 {
            break;
        }
        total += 1;
        let wanted = total >= first && args.end_line.is_none_or(|end| total <= end);
        if !wanted || cut_short {
            continue;
        }
        let full_page = args.end_line.is_none() && shown.len() as u64 >= PAGE_LINES;
        let line = display_line(&raw, &mut lossy);
        if full_page || (!shown.is_empty() && shown_bytes + line.len() + 8 > PAGE_BYTES) {
            cut_short = true;
            continue;
        }
        shown_bytes += line.len() + 8;
        shown.push((total, line));
    }

    if total == 0 {
        return Ok(format!("(`{}` is empty)", target.rel));
    }
    let (Some(&(start, _)), Some(&(last, _))) = (shown.first(), shown.last()) else {
        return Err(format!(
            "`{}` has {total} lines; start_line {first} is past the end",
            target.rel
        ));
    };
    let mut text = number_lines(shown.iter().map(|(n, l)| (*n, l.as_str())), last);
    if last < total && (cut_short || args.end_line.is_none()) {
        text.push_str(&format!(
            "\n[lines {start}-{last} of {total}; call read_file with start_line={} to read on]",
            last + 1
        ));
    } else if start > 1 || last < total {
        text.push_str(&format!("\n[lines {start}-{last} of {total}]"));
    }
    if lossy {
        text.push_str(
            "\n[the file is not valid UTF-8; invalid bytes are shown as \u{FFFD}, and \
             edit_file cannot change it]",
        );
    }
    Ok(text)
}

pub(crate) fn write(root: &Path, args: WriteArgs) -> Result<String, String> {
    let target = resolve(root, &args.path, Access::Write)?;
    if target.rel == "." {
        return Err("give the path of a file to write, not the repository root".to_owned());
    }
    let previous = match fs::metadata(&target.abs) {
        Ok(meta) if meta.is_dir() => {
            return Err(format!(
                "`{}` is a directory; give the path of a file inside it",
                target.rel
            ));
        }
        Ok(meta) if !meta.is_file() => return Err(not_regular(&target)),
        Ok(meta) => Some(meta.len()),
        Err(_) => None,
    };
    if let Some(parent) = target.abs.parent() {
        fs::create_dir_all(parent).map_err(|e| {
            format!(
                "could not create the directories for `{}`: {e}; check that no file stands \
                 where a directory is needed",
                target.rel
            )
        })?;
    }
    fs::write(&target.abs, &args.content).map_err(|e| io_error("write", &target, &e))?;
    let lines = args.content.lines().count();
    let what = match previous {
        Some(old) => format!("replaced its previous {old} bytes"),
        None => "new file".to_owned(),
    };
    Ok(format!(
        "wrote {} bytes ({lines} lines) to `{}` ({what})",
        args.content.len(),
        target.rel
    ))
}

pub(crate) fn edit(root: &Path, args: EditArgs) -> Result<String, String> {
    let target = resolve(root, &args.path, Access::Write)?;
    if args.old_string.is_empty() {
        return Err(
            "old_string is empty; give the exact text to replace (use write_file to create a \
             file or replace all of it)"
                .to_owned(),
        );
    }
    if args.old_string == args.new_string {
        return Err("old_string and new_string are identical; there is nothing to change".into());
    }
    let mut file = open_file(&target)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io_error("read", &target, &e))?;
    if bytes[..bytes.len().min(BINARY_SNIFF)].contains(&0) {
        return Err(binary_refusal(&target));
    }
    let Ok(content) = String::from_utf8(bytes) else {
        return Err(format!(
            "`{}` is not valid UTF-8, so edit_file cannot match text in it; use shell (e.g. \
             sed) to change it",
            target.rel
        ));
    };

    let (mut old, mut new) = (args.old_string.clone(), args.new_string.clone());
    let mut positions = occurrences(&content, &old);
    // Models write `\n`; a file with Windows line endings would otherwise never match.
    if positions.is_empty() && content.contains("\r\n") && !old.contains('\r') {
        let crlf_old = old.replace('\n', "\r\n");
        let crlf_positions = occurrences(&content, &crlf_old);
        if !crlf_positions.is_empty() {
            (old, new, positions) = (crlf_old, new.replace('\n', "\r\n"), crlf_positions);
        }
    }
    match positions.len() {
        0 => return Err(no_match(&target, &content, &old)),
        1 => {}
        count => {
            let lines: Vec<String> = positions
                .iter()
                .map(|&at| line_of(&content, at).to_string())
                .collect();
            return Err(format!(
                "old_string occurs {count} times in `{}` (at lines {}); include more \
                 surrounding lines in old_string so that it matches exactly once",
                target.rel,
                lines.join(", ")
            ));
        }
    }

    let at = positions[0];
    let mut updated = String::with_capacity(content.len() - old.len() + new.len());
    updated.push_str(&content[..at]);
    updated.push_str(&new);
    updated.push_str(&content[at + old.len()..]);
    fs::write(&target.abs, &updated).map_err(|e| io_error("write", &target, &e))?;

    let first = line_of(&content, at);
    let old_last = line_of(&content, at + old.len() - 1);
    let total = updated.lines().count() as u64;
    let summary = if new.is_empty() {
        format!("removed {}", span(first, old_last))
    } else {
        let new_last = line_of(&updated, at + new.len() - 1);
        format!(
            "replaced {} with {}",
            span(first, old_last),
            span(first, new_last)
        )
    };
    let mut text = format!(
        "edited `{}`: {summary}; the file now has {total} lines.",
        target.rel
    );
    let new_last = if new.is_empty() {
        first
    } else {
        line_of(&updated, at + new.len() - 1)
    };
    let from = first.saturating_sub(2).max(1);
    let to = (new_last + 2)
        .min(total)
        .min(from + EDIT_SNIPPET_LINES as u64 - 1);
    if from <= to {
        let lines = updated
            .lines()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l))
            .skip((from - 1) as usize)
            .take((to - from + 1) as usize);
        text.push_str(&format!("\nLines {from}-{to} now read:\n"));
        text.push_str(&number_lines(lines, to));
    }
    Ok(text)
}

/// Opens a file for reading, with errors that say what to do instead.
fn open_file(target: &Resolved) -> Result<fs::File, String> {
    match fs::metadata(&target.abs) {
        Ok(meta) if meta.is_dir() => Err(format!(
            "`{}` is a directory; use list_files to see what is in it",
            target.rel
        )),
        Ok(meta) if !meta.is_file() => Err(not_regular(target)),
        Ok(_) => fs::File::open(&target.abs).map_err(|e| io_error("open", target, &e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "`{}` does not exist; use list_files to see which files exist (paths are relative \
             to the repository root)",
            target.rel
        )),
        Err(e) => Err(io_error("open", target, &e)),
    }
}

/// FIFOs, sockets and devices: opening one can block forever, so tools never do.
/// A file's bytes before the agent changes it, for [`restore`]: `None` when it does not exist.
pub(crate) fn snapshot(root: &Path, path: &str) -> Result<Option<Vec<u8>>, String> {
    let target = resolve(root, path, Access::Write)?;
    match fs::read(&target.abs) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", &target, &e)),
    }
}

/// Puts a file back as a [`snapshot`] found it: its old bytes, or no file.
pub(crate) fn restore(root: &Path, path: &str, original: Option<&[u8]>) -> Result<(), String> {
    let target = resolve(root, path, Access::Write)?;
    match original {
        Some(bytes) => fs::write(&target.abs, bytes).map_err(|e| io_error("write", &target, &e)),
        None => match fs::remove_file(&target.abs) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", &target, &e)),
            _ => Ok(()),
        },
    }
}

fn not_regular(target: &Resolved) -> String {
    format!(
        "`{}` is not a regular file (a FIFO, socket or device), so the file tools do not open \
         it; use shell if you really need to",
        target.rel
    )
}

fn io_error(action: &str, target: &Resolved, e: &io::Error) -> String {
    format!("could not {action} `{}`: {e}", target.rel)
}

fn binary_refusal(target: &Resolved) -> String {
    format!(
        "`{}` is a binary file, so it is not shown; use shell (e.g. `file`, `xxd | head`) to \
         inspect it",
        target.rel
    )
}

/// A raw line without its line ending, decoded lossily and cut to MAX_LINE_BYTES.
fn display_line(raw: &[u8], lossy: &mut bool) -> String {
    let mut end = raw.len();
    if raw[..end].ends_with(b"\n") {
        end -= 1;
    }
    if raw[..end].ends_with(b"\r") {
        end -= 1;
    }
    let text = String::from_utf8_lossy(&raw[..end]);
    if matches!(text, std::borrow::Cow::Owned(_)) {
        *lossy = true;
    }
    if text.len() <= MAX_LINE_BYTES {
        return text.into_owned();
    }
    let mut cut = MAX_LINE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{} [... line cut: {} bytes in all; use shell (e.g. `cut -c`) to see the rest]",
        &text[..cut],
        text.len()
    )
}

/// `lines` with their numbers, right-aligned to the width of `widest`: ` 9| a` / `10| b`.
fn number_lines<'a>(lines: impl Iterator<Item = (u64, &'a str)>, widest: u64) -> String {
    let width = widest.to_string().len();
    let mut out = String::new();
    for (n, line) in lines {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{n:>width$}| {line}"));
    }
    out
}

/// Start offsets of every occurrence of `needle`, overlapping ones included: `aa` in `aaa` is
/// ambiguous and must be reported as two.
fn occurrences(haystack: &str, needle: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = haystack[from..].find(needle) {
        let at = from + i;
        found.push(at);
        from = at + haystack[at..].chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> u64 {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

fn span(first: u64, last: u64) -> String {
    if first == last {
        format!("line {first}")
    } else {
        format!("lines {first}-{last}")
    }
}

/// The error for an old_string that is not in the file, with a hint when the same text is
/// there apart from whitespace (indentation, trailing spaces, line endings).
fn no_match(target: &Resolved, content: &str, old: &str) -> String {
    let mut text = format!("old_string was not found in `{}`", target.rel);
    let (needle, _) = squeeze(old);
    if !needle.is_empty() {
        let (hay, offsets) = squeeze(content);
        let hits: Vec<u64> = occurrences(&hay, &needle)
            .into_iter()
            .map(|i| line_of(content, offsets[i]))
            .collect();
        if let Some(first) = hits.first() {
            let where_ = if hits.len() == 1 {
                format!("at line {first}")
            } else {
                let lines: Vec<String> = hits.iter().map(u64::to_string).collect();
                format!("at lines {}", lines.join(", "))
            };
            text.push_str(&format!(
                ", but text that differs only in whitespace or indentation starts {where_}; \
                 read_file those lines and copy them exactly, indentation included"
            ));
            return text;
        }
    }
    text.push_str(
        "; old_string must match the file exactly, including whitespace and indentation. \
         Use read_file (or search) to see the current text, then copy it",
    );
    text
}

/// `text` without whitespace, and for each byte of the result the offset it came from.
fn squeeze(text: &str) -> (String, Vec<usize>) {
    let mut squeezed = String::new();
    let mut offsets = Vec::new();
    for (at, c) in text.char_indices().filter(|(_, c)| !c.is_whitespace()) {
        squeezed.push(c);
        offsets.extend(std::iter::repeat_n(at, c.len_utf8()));
    }
    (squeezed, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_occurrences_are_all_counted() {
        assert_eq!(occurrences("aaa", "aa"), vec![0, 1]);
        assert_eq!(occurrences("éaéa", "a"), vec![2, 5]);
        assert!(occurrences("abc", "x").is_empty());
    }

    #[test]
    fn line_numbers_are_right_aligned_to_the_widest() {
        let out = number_lines([(9, "a"), (10, "b")].into_iter(), 10);
        assert_eq!(out, " 9| a\n10| b");
    }

    #[test]
    fn squeezed_offsets_point_back_into_the_original() {
        let (s, offsets) = squeeze("a b\n  é");
        assert_eq!(s, "abé");
        assert_eq!(offsets, vec![0, 2, 6, 6]);
    }
}
