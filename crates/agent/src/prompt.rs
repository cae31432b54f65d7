//! The system prompt: a template kept in the repository (`prompts/system.md`), filled with the
//! task's checks, the target repository's AGENTS.md and a map of its files.

use sha2::{Digest, Sha256};

/// The system prompt template. Changing it changes [`template_hash`], which is recorded with
/// every model request so a trajectory can be traced to the exact prompt that produced it.
pub const SYSTEM_TEMPLATE: &str = include_str!("../prompts/system.md");

/// Hex SHA-256 of [`SYSTEM_TEMPLATE`].
pub fn template_hash() -> String {
    sha256_hex(SYSTEM_TEMPLATE)
}

/// Hex SHA-256 of a prompt template, as recorded with the requests built from it.
pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What the system prompt is built from.
#[derive(Clone, Debug, Default)]
pub struct PromptContext {
    pub checks: Vec<String>,
    /// The target repository's AGENTS.md, if it has one.
    pub instructions: Option<String>,
    /// Tracked files, as `git ls-files` lists them.
    pub files: Vec<String>,
    /// Rough token budget for the file map.
    pub map_token_budget: usize,
}

/// AGENTS.md beyond this many bytes is cut: it is guidance, not a place for whole manuals.
const MAX_INSTRUCTIONS_BYTES: usize = 16 * 1024;

/// Fills the template. Only the known placeholders are replaced, each exactly once, so text in
/// AGENTS.md that happens to contain `{{...}}` is left alone.
pub fn render_system_prompt(context: &PromptContext) -> String {
    let checks = if context.checks.is_empty() {
        "No checks were given for this task: verify your work as well as you can with the shell \
         tool before calling finish."
            .to_owned()
    } else {
        let list: Vec<String> = context.checks.iter().map(|c| format!("- `{c}`")).collect();
        format!(
            "The task is done only when every one of these checks exits 0:\n{}",
            list.join("\n")
        )
    };
    let instructions = match &context.instructions {
        Some(text) if !text.trim().is_empty() => {
            let text = truncate_on_char_boundary(text.trim(), MAX_INSTRUCTIONS_BYTES);
            format!("The repository's AGENTS.md says:\n<agents_md>\n{text}\n</agents_md>")
        }
        _ => String::new(),
    };
    let map = repo_map(&context.files, context.map_token_budget);
    let mut out = String::with_capacity(SYSTEM_TEMPLATE.len() + map.len() + instructions.len());
    let mut rest = SYSTEM_TEMPLATE;
    for (placeholder, value) in [
        ("{{checks}}", checks.as_str()),
        ("{{instructions}}", instructions.as_str()),
        ("{{repo_map}}", map.as_str()),
    ] {
        if let Some(at) = rest.find(placeholder) {
            out.push_str(&rest[..at]);
            out.push_str(value);
            rest = &rest[at + placeholder.len()..];
        }
    }
    out.push_str(rest);
    out
}

/// The first user message: the goal, verbatim.
pub fn render_goal(goal: &str) -> String {
    format!("Your task:\n\n{}", goal.trim())
}

fn truncate_on_char_boundary(text: &str, max_bytes: usize) -> &str {
    &text[..text.floor_char_boundary(max_bytes)]
}

/// A compact map of the repository within roughly `token_budget` tokens (4 bytes a token).
///
/// Every file is listed when that fits. Otherwise directories are summarised with their file
/// counts, as deep as the budget allows, so a 100,000-file monorepo still gets a useful outline.
pub fn repo_map(files: &[String], token_budget: usize) -> String {
    let byte_budget = token_budget.saturating_mul(4).max(256);
    let full: usize = files.iter().map(|f| f.len() + 1).sum();
    if full <= byte_budget {
        return files.join("\n");
    }
    let max_depth = files
        .iter()
        .map(|f| f.matches('/').count())
        .max()
        .unwrap_or(0);
    let mut best = None;
    for depth in 1..=max_depth.max(1) {
        let outline = outline_at_depth(files, depth);
        if outline.len() > byte_budget {
            break;
        }
        best = Some(outline);
    }
    match best {
        Some(outline) => format!("{outline}\n({} files in all)", files.len()),
        None => {
            let outline = outline_at_depth(files, 1);
            let cut = truncate_on_char_boundary(&outline, byte_budget);
            let cut = &cut[..cut.rfind('\n').unwrap_or(cut.len())];
            format!(
                "{cut}\n[... map cut to fit; {} files in all: use list_files and search]",
                files.len()
            )
        }
    }
}

/// Files up to `depth` directories deep are listed; deeper ones are folded into their directory
/// at that depth with a count, e.g. `src/parser/ (42 files)`.
fn outline_at_depth(files: &[String], depth: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut folded: Option<(String, usize)> = None;
    // `files` is sorted (git ls-files order), so every folded directory's files are adjacent.
    for file in files {
        let slashes: Vec<usize> = file.match_indices('/').map(|(i, _)| i).collect();
        if slashes.len() < depth {
            if let Some((dir, count)) = folded.take() {
                lines.push(format!("{dir} ({count} files)"));
            }
            lines.push(file.clone());
            continue;
        }
        let dir = &file[..=slashes[depth - 1]];
        match &mut folded {
            Some((current, count)) if current == dir => *count += 1,
            _ => {
                if let Some((done, count)) = folded.take() {
                    lines.push(format!("{done} ({count} files)"));
                }
                folded = Some((dir.to_owned(), 1));
            }
        }
    }
    if let Some((dir, count)) = folded {
        lines.push(format!("{dir} ({count} files)"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn small_repositories_are_listed_whole() {
        let list = files(&["Cargo.toml", "src/lib.rs", "src/main.rs"]);
        assert_eq!(repo_map(&list, 1000), "Cargo.toml\nsrc/lib.rs\nsrc/main.rs");
    }

    #[test]
    fn a_hundred_thousand_files_fold_into_directories_within_budget() {
        let mut list = Vec::new();
        for pkg in 0..100 {
            for file in 0..1000 {
                list.push(format!("packages/pkg{pkg:03}/src/file{file:04}.rs"));
            }
        }
        list.push("README.md".into());
        list.sort();
        let map = repo_map(&list, 2000);
        assert!(map.len() <= 2000 * 4 + 64, "map is {} bytes", map.len());
        assert!(map.contains("packages/pkg042/src/ (1000 files)"), "{map}");
        assert!(map.contains("README.md"));
        assert!(map.contains("100001 files in all"));
    }

    #[test]
    fn a_map_too_big_even_folded_is_cut_with_a_note() {
        let list: Vec<String> = (0..50_000).map(|i| format!("d{i:05}/f.rs")).collect();
        let map = repo_map(&list, 500);
        assert!(map.len() <= 500 * 4 + 100);
        assert!(map.contains("map cut to fit; 50000 files in all"));
    }

    #[test]
    fn template_placeholders_are_all_filled() {
        let prompt = render_system_prompt(&PromptContext {
            checks: vec!["cargo test".into()],
            instructions: Some("Run `make lint` before finishing. {{checks}}".into()),
            files: files(&["a.rs"]),
            map_token_budget: 100,
        });
        assert!(prompt.contains("- `cargo test`"));
        assert!(prompt.contains("Run `make lint` before finishing. {{checks}}"));
        assert!(prompt.ends_with("a.rs\n") || prompt.ends_with("a.rs"));
        assert!(!prompt.contains("{{repo_map}}"));
        assert_eq!(template_hash().len(), 64);
    }
}
