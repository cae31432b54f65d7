//! Partial whole-file writes, merged (compact scaffold only).
//!
//! Asked to write a whole file, small models often write only the functions they changed: the
//! demo's model replaced a three-function `calc.py` with its fixed `clamp` alone, then did the
//! same thing five times. When a Python or Rust file's new content defines only some of the
//! file's top-level functions, classes or items, those definitions are replaced in the old
//! file and the others kept, and the model is told so.

/// A top-level definition: its name and its lines `start..end` (attributes, decorators and
/// doc comments above it included).
#[derive(Debug, PartialEq)]
struct Block {
    name: String,
    start: usize,
    end: usize,
}

#[derive(Clone, Copy)]
enum Language {
    Python,
    Rust,
}

/// The merged file and a note for the model, when `new` is a partial rewrite of `old`.
pub(crate) fn merge(path: &str, old: &str, new: &str) -> Option<(String, String)> {
    let language = match path.rsplit_once('.')?.1 {
        "py" => Language::Python,
        "rs" => Language::Rust,
        _ => return None,
    };
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let old_blocks = blocks(&old_lines, language);
    let new_blocks = blocks(&new_lines, language);
    let known = |name: &str| old_blocks.iter().any(|b| b.name == name);
    let replaced: Vec<&Block> = new_blocks.iter().filter(|b| known(&b.name)).collect();
    let kept: Vec<&str> = old_blocks
        .iter()
        .filter(|o| !new_blocks.iter().any(|n| n.name == o.name))
        .map(|b| b.name.as_str())
        .collect();
    // A whole file (nothing dropped) or an unrelated one (nothing in common) is written as is.
    if replaced.is_empty() || kept.is_empty() {
        return None;
    }
    let block_text = |b: &Block| new_lines[b.start..b.end].join("\n");

    let mut out: Vec<String> = Vec::new();
    // Lines of the new content outside any definition (imports, say) that the old file lacks
    // go before its first definition.
    let in_new_block = |i: usize| new_blocks.iter().any(|b| (b.start..b.end).contains(&i));
    let extra: Vec<&str> = new_lines
        .iter()
        .enumerate()
        .filter(|(i, line)| !in_new_block(*i) && !line.trim().is_empty())
        .map(|(_, line)| *line)
        .filter(|line| !old_lines.contains(line))
        .collect();
    let first = old_blocks.first().map_or(old_lines.len(), |b| b.start);
    out.extend(old_lines[..first].iter().map(|l| (*l).to_owned()));
    if !extra.is_empty() {
        out.extend(extra.iter().map(|l| (*l).to_owned()));
        out.push(String::new());
    }
    let mut at = first;
    for old_block in &old_blocks {
        out.extend(
            old_lines[at..old_block.start]
                .iter()
                .map(|l| (*l).to_owned()),
        );
        match new_blocks.iter().find(|n| n.name == old_block.name) {
            Some(new_block) => out.push(block_text(new_block)),
            None => out.extend(
                old_lines[old_block.start..old_block.end]
                    .iter()
                    .map(|l| (*l).to_owned()),
            ),
        }
        at = old_block.end;
    }
    out.extend(old_lines[at..].iter().map(|l| (*l).to_owned()));
    // Definitions the old file did not have go at the end.
    for added in new_blocks.iter().filter(|b| !known(&b.name)) {
        out.push(String::new());
        out.push(block_text(added));
    }
    let mut merged = out.join("\n");
    merged.push('\n');
    let names: Vec<&str> = replaced.iter().map(|b| b.name.as_str()).collect();
    let note = format!(
        "note: your content defined only {} of the file's definitions, so Nightshift replaced \
         those and kept the others ({}) as they were. To delete a definition, use shell.",
        names.join(", "),
        kept.join(", ")
    );
    Some((merged, note))
}

/// The top-level definitions of a file, in order.
fn blocks(lines: &[&str], language: Language) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = definition_name(lines[i], language) else {
            i += 1;
            continue;
        };
        // Decorators, attributes and doc comments directly above belong to the definition.
        let mut start = i;
        while start > 0 && is_preamble(lines[start - 1], language) {
            start -= 1;
        }
        let end = block_end(lines, i, language);
        if let Some(last) = out.last()
            && start < last.end
        {
            start = last.end;
        }
        out.push(Block { name, start, end });
        i = end.max(i + 1);
    }
    out
}

fn is_preamble(line: &str, language: Language) -> bool {
    match language {
        Language::Python => line.starts_with('@'),
        Language::Rust => line.starts_with("#[") || line.starts_with("///"),
    }
}

/// The line after a definition's last one.
fn block_end(lines: &[&str], start: usize, language: Language) -> usize {
    match language {
        // Up to the next line of code at column 0, trailing blank lines left out.
        Language::Python => {
            let mut end = start + 1;
            while end < lines.len() {
                let line = lines[end];
                if !line.is_empty() && !line.starts_with([' ', '\t']) && !line.starts_with(')') {
                    break;
                }
                end += 1;
            }
            while end > start + 1 && lines[end - 1].trim().is_empty() {
                end -= 1;
            }
            end
        }
        // One line (`fn f() {}`, `struct S;`), or up to the `}` at column 0.
        Language::Rust => {
            let first = lines[start].trim_end();
            if first.ends_with(';') || (first.ends_with('}') && !first.ends_with("{}")) {
                return start + 1;
            }
            if first.ends_with("{}") {
                return start + 1;
            }
            match lines[start + 1..].iter().position(|l| l.starts_with('}')) {
                Some(offset) => start + 1 + offset + 1,
                None => lines.len(),
            }
        }
    }
}

/// The name of the definition that starts on this line, if one does.
fn definition_name(line: &str, language: Language) -> Option<String> {
    if line.starts_with([' ', '\t']) {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let ident = |word: &str| -> Option<String> {
        let name: String = word
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then_some(name)
    };
    match language {
        Language::Python => match words.as_slice() {
            ["def" | "class", name, ..] | ["async", "def", name, ..] => ident(name),
            _ => None,
        },
        Language::Rust => {
            let mut rest: &[&str] = &words;
            while let [first, tail @ ..] = rest {
                if first.starts_with("pub") || matches!(*first, "async" | "unsafe" | "extern") {
                    rest = tail;
                } else {
                    break;
                }
            }
            match rest {
                [
                    "fn" | "struct" | "enum" | "trait" | "type" | "mod" | "static",
                    name,
                    ..,
                ] => ident(name).map(|n| format!("{} {n}", rest[0])),
                ["const", "fn", name, ..] => ident(name).map(|n| format!("fn {n}")),
                ["const", name, ..] => ident(name).map(|n| format!("const {n}")),
                // `impl Display for Point {` is named by its whole header.
                ["impl", ..] => Some(line.trim_end_matches(['{', ' ']).to_owned()),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALC: &str = "\"\"\"A calculator.\"\"\"\n\n\ndef add(a, b):\n    return a + b\n\n\n\
        def mean(values):\n    \"\"\"The mean.\"\"\"\n    return sum(values) / len(values) - 1\n\n\n\
        def clamp(value, low, high):\n    if value > high:\n        return low\n    return value\n";

    #[test]
    fn a_python_file_with_only_the_changed_function_keeps_the_others() {
        let new = "def clamp(value, low, high):\n    if value > high:\n        return high\n    return value\n";
        let (merged, note) = merge("calc.py", CALC, new).unwrap();
        assert_eq!(
            merged,
            CALC.replace(
                "        return low\n    return value",
                "        return high\n    return value"
            )
        );
        assert!(
            note.contains("only clamp") && note.contains("(add, mean)"),
            "{note}"
        );
    }

    #[test]
    fn new_imports_and_new_functions_are_added() {
        let new = "import math\n\ndef mean(values):\n    return math.fsum(values) / len(values)\n\n\ndef median(v):\n    return sorted(v)[len(v) // 2]\n";
        let (merged, _) = merge("calc.py", CALC, new).unwrap();
        assert!(
            merged.starts_with("\"\"\"A calculator.\"\"\"\n\n\nimport math\n\ndef add"),
            "{merged}"
        );
        assert!(
            merged.contains(
                "def mean(values):\n    return math.fsum(values) / len(values)\n\n\ndef clamp"
            ),
            "{merged}"
        );
        assert!(
            merged.ends_with(
                "    return value\n\ndef median(v):\n    return sorted(v)[len(v) // 2]\n"
            ),
            "{merged}"
        );
    }

    #[test]
    fn whole_files_unrelated_files_and_other_languages_are_written_as_given() {
        assert_eq!(merge("calc.py", CALC, CALC), None);
        assert_eq!(merge("calc.py", CALC, "def other():\n    pass\n"), None);
        assert_eq!(merge("notes.txt", CALC, "def clamp(v):\n    pass\n"), None);
    }

    #[test]
    fn rust_items_are_matched_by_kind_and_name() {
        let old = "use std::fmt;\n\n/// Adds.\npub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[derive(Debug)]\npub struct P;\n\nimpl fmt::Display for P {\n    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {\n        write!(f, \"p\")\n    }\n}\n\npub fn sub(a: i32, b: i32) -> i32 {\n    a - b\n}\n";
        let new = "/// Adds.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
        let (merged, note) = merge("src/lib.rs", old, new).unwrap();
        assert_eq!(merged, old.replacen("    a - b", "    a + b", 1));
        assert!(note.contains("only fn add"), "{note}");
    }
}
