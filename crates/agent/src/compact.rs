//! The compact scaffold for small local models ([`Scaffold::Compact`]).
//!
//! What the evals showed a 1.5B model needs (docs/BENCHMARKS.md): it rarely explores a
//! repository well, so the files it needs are shown to it in the first message, with the
//! checks' current output; it gets four tools instead of seven; and after every change the
//! checks run at once and their output comes back with the tool's result, so each step is
//! "read the error, write the fix" rather than a plan of its own.

use std::path::Path;

use nightshift_protocol::CheckOutcome;
use nightshift_tools::Toolbox;

use crate::prompt::sha256_hex;
use crate::{EditFormat, Scaffold};

/// The compact system prompt template.
pub const COMPACT_TEMPLATE: &str = include_str!("../prompts/compact.md");
/// The compact template for the fenced edit format (no tools).
pub const COMPACT_FENCED_TEMPLATE: &str = include_str!("../prompts/compact_fenced.md");

/// File text shown in the first message, in total (about 3,000 tokens).
const SHOWN_BYTES: usize = 12 * 1024;
/// A file bigger than this is listed, not shown: the model reads it with read_file if needed.
const SHOWN_FILE_MAX_BYTES: usize = 8 * 1024;
/// Check output shown to the model, per check. Small: the head names the failures and the
/// tail the totals, and a small model's window fills fast.
const CHECK_OUTPUT_BYTES: usize = 3 * 1024;
/// Bytes of the last failed attempt's check output in the opening (about 400 tokens).
const EARLIER_ATTEMPT_BYTES: usize = 1536;
/// Generated files that say nothing about the task and cost many tokens.
const NEVER_SHOWN: [&str; 6] = [
    "Cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "poetry.lock",
    "uv.lock",
    "pnpm-lock.yaml",
];

impl Scaffold {
    /// The hash recorded with every request, tracing it to the exact prompt template.
    pub fn template_hash(&self) -> String {
        match self {
            Scaffold::Full => crate::prompt::template_hash(),
            Scaffold::Compact {
                edit: EditFormat::Fenced,
            } => sha256_hex(COMPACT_FENCED_TEMPLATE),
            Scaffold::Compact { .. } => sha256_hex(COMPACT_TEMPLATE),
        }
    }

    /// The tools offered to the model.
    pub fn tool_specs(
        &self,
        shell_timeout: std::time::Duration,
    ) -> Vec<nightshift_protocol::ToolSpec> {
        match self {
            Scaffold::Full => nightshift_tools::tool_specs(shell_timeout),
            // Text only: tools would push the model into JSON, the very thing this avoids.
            Scaffold::Compact {
                edit: EditFormat::Fenced,
            } => Vec::new(),
            Scaffold::Compact { edit } => {
                nightshift_tools::compact_tool_specs(shell_timeout, edit.tool_name())
            }
        }
    }
}

impl EditFormat {
    /// The tool that makes changes in this format.
    pub fn tool_name(&self) -> &'static str {
        match self {
            EditFormat::Whole | EditFormat::Fenced => "write_file",
            EditFormat::Replace => "edit_file",
        }
    }
}

/// The compact system prompt.
pub(crate) fn render_system(
    checks: &[String],
    instructions: Option<&str>,
    edit: EditFormat,
) -> String {
    if edit == EditFormat::Fenced {
        return COMPACT_FENCED_TEMPLATE
            .replacen("{{checks}}", &checks_text(checks), 1)
            .replacen("{{instructions}}", &instructions_text(instructions), 1)
            .trim_end()
            .to_owned();
    }
    let edit_rule = match edit {
        EditFormat::Whole => {
            "Change code with write_file, giving the complete new content of the file: every \
             line, also the lines you do not change."
        }
        EditFormat::Replace => {
            "Change code with edit_file: old_string is copied exactly from the file shown (whole \
             lines, same indentation), new_string is what replaces it."
        }
        EditFormat::Fenced => unreachable!("handled above"),
    };
    COMPACT_TEMPLATE
        .replacen("{{edit_rule}}", edit_rule, 1)
        .replacen("{{checks}}", &checks_text(checks), 1)
        .replacen("{{instructions}}", &instructions_text(instructions), 1)
        .trim_end()
        .to_owned()
}

fn checks_text(checks: &[String]) -> String {
    if checks.is_empty() {
        "There are no checks: test your change with the shell tool before you call finish."
            .to_owned()
    } else {
        let list: Vec<String> = checks.iter().map(|c| format!("- `{c}`")).collect();
        format!(
            "The task is done when these checks pass:\n{}",
            list.join("\n")
        )
    }
}

fn instructions_text(instructions: Option<&str>) -> String {
    match instructions.map(str::trim) {
        Some(text) if !text.is_empty() => format!(
            "The repository's AGENTS.md says:\n<agents_md>\n{}\n</agents_md>",
            &text[..text.floor_char_boundary(4 * 1024)]
        ),
        _ => String::new(),
    }
}

/// Files the model wrote in its answer, in the fenced format: a line naming the file, then
/// its whole content in a fenced code block (the last block for a path wins: the model
/// corrected itself). A block without a name goes to the file the goal names (the one that
/// is not a test when it names a test too, as "fix calc.py so test_calc.py passes" does),
/// when the block is tagged with that file's language and defines something: small models
/// follow their fix with blocks of usage, shell commands or the test output they expect,
/// and the first such block is the fix.
pub(crate) fn fenced_files(answer: &str, files: &[String], goal: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = answer.lines().collect();
    let mut named: Vec<(String, String)> = Vec::new();
    let mut unnamed: Option<(String, String)> = None;
    let mut i = 0;
    while i < lines.len() {
        let Some(fence) = fence_of(lines[i]) else {
            i += 1;
            continue;
        };
        let language = canonical_language(lines[i].trim_start()[fence.len()..].trim());
        let Some(close) = lines[i + 1..]
            .iter()
            .position(|l| l.trim_end() == fence)
            .map(|offset| i + 1 + offset)
        else {
            break;
        };
        let mut content = lines[i + 1..close].join("\n");
        content.push('\n');
        if let Some(path) = (i > 0).then(|| path_in(lines[i - 1])).flatten() {
            named.retain(|(p, _)| *p != path);
            named.push((path, content));
        } else if unnamed.is_none()
            && defines_code(&content, language)
            && let Some(path) = goal_file(files, goal, language)
        {
            unnamed = Some((path, content));
        }
        i = close + 1;
    }
    if let Some((path, content)) = unnamed
        && !named.iter().any(|(p, _)| *p == path)
    {
        named.insert(0, (path, content));
    }
    named
}

/// A fence's language tag, with the short spellings models also use.
fn canonical_language(tag: &str) -> &str {
    match tag {
        "py" | "python3" => "python",
        "rs" => "rust",
        other => other,
    }
}

/// Whether a block of `language` holds a definition (a function, class, type), not only
/// statements such as a usage example or a shell command.
fn defines_code(content: &str, language: &str) -> bool {
    let starts: &[&str] = match language {
        "python" => &["def ", "async def ", "class "],
        "rust" => &[
            "fn ", "struct ", "enum ", "impl ", "impl<", "trait ", "mod ", "const ",
        ],
        _ => return false,
    };
    content.lines().any(|line| {
        let line = line.trim_start();
        let line = ["pub(crate) ", "pub "]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .unwrap_or(line);
        starts.iter().any(|s| line.starts_with(s))
    })
}

/// The summary of a fenced answer: its words outside the files, or which files it changed.
pub(crate) fn fenced_summary(answer: &str, files: &[(String, String)]) -> String {
    let mut words = Vec::new();
    let mut fence: Option<&str> = None;
    for line in answer.lines() {
        match (fence, fence_of(line)) {
            (None, Some(opening)) => fence = Some(opening),
            (Some(open), Some(_)) if line.trim_end() == open => fence = None,
            (None, None) if !line.trim().is_empty() && path_in(line).is_none() => {
                words.push(line.trim())
            }
            _ => {}
        }
    }
    let words = words.join(" ");
    if !words.is_empty() {
        return words;
    }
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    if paths.is_empty() {
        "(the model gave no summary)".to_owned()
    } else {
        format!("Rewrote {}.", paths.join(", "))
    }
}

/// "```" or "````" when the line opens or closes a fence.
fn fence_of(line: &str) -> Option<&'static str> {
    let line = line.trim_start();
    ["````", "```"].into_iter().find(|f| line.starts_with(f))
}

/// A file path on a line like `calc.py`, `**calc.py**`, `### calc.py` or `File: calc.py:`.
fn path_in(line: &str) -> Option<String> {
    let mut text = line
        .trim()
        .trim_matches(|c| matches!(c, '#' | '*' | '`' | ' ' | ':'));
    for prefix in ["File:", "file:", "Path:", "path:"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest
                .trim()
                .trim_matches(|c| matches!(c, '*' | '`' | ' ' | ':'));
        }
    }
    let plain = !text.is_empty()
        && !text.contains(char::is_whitespace)
        && text.contains('.')
        && plain_relative(text).is_some();
    plain.then(|| text.to_owned())
}

/// The file an unnamed block of `language` is for: the one file of that language the goal
/// names, or else the one such file that is not a test.
fn goal_file(files: &[String], goal: &str, language: &str) -> Option<String> {
    let named: Vec<&String> = files
        .iter()
        .filter(|f| {
            let name = f.rsplit('/').next().unwrap_or(f);
            (goal.contains(f.as_str()) || goal.contains(name)) && fence_language(f) == language
        })
        .collect();
    let sole = |candidates: Vec<&String>| match candidates[..] {
        [only] => Some(only.clone()),
        _ => None,
    };
    sole(named.clone()).or_else(|| sole(named.into_iter().filter(|f| !is_test_file(f)).collect()))
}

/// A test by the conventions of Python and Rust projects: `test_x.py`, `x_test.py`,
/// `x_tests.rs`, or anything under a `tests` or `test` directory.
pub(crate) fn is_test_file(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || parts.iter().any(|dir| matches!(*dir, "tests" | "test"))
}

/// Whether the goal forbids changing the tests ("do not change the tests", "without
/// modifying the tests", ...). A small model that cannot make a test pass often rewrites
/// the test instead; the fenced format then refuses that file.
pub(crate) fn goal_protects_tests(goal: &str) -> bool {
    let goal = goal.to_lowercase().replace('\u{2019}', "'");
    let verbs = ["chang", "modif", "edit", "touch", "alter", "rewrit"];
    ["do not ", "don't ", "without ", "never ", "must not "]
        .iter()
        .flat_map(|no| verbs.iter().map(move |verb| format!("{no}{verb}")))
        .any(|phrase| {
            goal.match_indices(&phrase).any(|(at, _)| {
                let rest = &goal[at + phrase.len()..];
                let clause = rest.split(['.', ';', '\n']).next().unwrap_or(rest);
                clause.contains("test")
            })
        })
}

/// The first user message: the goal, the files, and how the checks fare before any change.
pub(crate) fn render_opening(goal: &str, files: &ShownFiles, checks: Option<&str>) -> String {
    let mut out = format!("Your task:\n{}\n", goal.trim());
    if !files.shown.is_empty() {
        out.push_str("\nThe repository's files:\n");
        for (path, text) in &files.shown {
            let fence = if text.contains("```") { "````" } else { "```" };
            out.push_str(&format!(
                "\n{path}\n{fence}{}\n{}{}{fence}\n",
                fence_language(path),
                text,
                if text.ends_with('\n') { "" } else { "\n" }
            ));
        }
    }
    if !files.listed.is_empty() {
        out.push_str(&format!(
            "\nOther files (not shown; use read_file): {}\n",
            files.listed.join(", ")
        ));
    }
    if let Some(checks) = checks {
        out.push_str(&format!("\nBefore any change, {checks}"));
    }
    out
}

/// What the opening says, after a failed attempt, of that attempt: the checks' failures, not
/// the answer itself. Shown its own failed answer, the 1.5B model gave it again in 7 of 9
/// retries; the failures alone tell it which cases its answer missed (a stub's docstring
/// often misleads it about spaces, case or punctuation). Short, because each attempt prefills
/// it anew.
pub(crate) fn earlier_attempt_note(checks_said: &str) -> String {
    let failures = checks_said
        .strip_prefix("the checks fail:\n")
        .unwrap_or(checks_said)
        .trim();
    format!(
        "\nAn earlier answer to this task failed the checks:\n{}\nWrite an answer that passes \
         them: mind the cases they report.\n",
        nightshift_tools::trim_middle(failures, EARLIER_ATTEMPT_BYTES)
    )
}

/// The checks' results as the model sees them, e.g. after a change.
pub(crate) fn render_checks(checks: &[CheckOutcome]) -> String {
    if checks.iter().all(|c| c.passed) {
        return "the checks pass.".to_owned();
    }
    let mut out = String::from("the checks fail:\n");
    for check in checks {
        let status = match (check.passed, check.exit_code) {
            (true, _) => "passed".to_owned(),
            (false, Some(code)) => format!("failed, exit code {code}"),
            (false, None) => "failed (killed or timed out)".to_owned(),
        };
        out.push_str(&format!("\n$ {}\n{status}\n", check.command));
        if !check.passed {
            let output = nightshift_tools::trim_middle(check.output.trim(), CHECK_OUTPUT_BYTES);
            out.push_str(&format!("```\n{output}\n```\n"));
        }
    }
    out
}

/// What the model is told after a change, with the checks' results.
pub(crate) fn after_change(checks: &[CheckOutcome]) -> String {
    if checks.iter().all(|c| c.passed) {
        "\n\nNightshift ran the checks after this change: they all pass. Call finish now with \
         one sentence saying what you changed."
            .to_owned()
    } else {
        format!(
            "\n\nNightshift ran the checks after this change: {}\nFix the code and try again.",
            render_checks(checks)
        )
    }
}

/// A `write_file` call's arguments with its content merged into the existing file, and the
/// note for the model, when the content is a partial rewrite (see `partial_write.rs`).
pub(crate) fn merge_partial_write(toolbox: &Toolbox, arguments: &str) -> Option<(String, String)> {
    let args: serde_json::Value = serde_json::from_str(arguments).ok()?;
    let path = args["path"].as_str()?;
    let content = args["content"].as_str()?;
    let (_, old) = changed_file(toolbox, arguments)?;
    let (merged, note) = crate::partial_write::merge(path, &old, content)?;
    let arguments = serde_json::json!({"path": path, "content": merged}).to_string();
    Some((arguments, note))
}

/// The path a write or edit names and that file's current text, if it exists (read through
/// the toolbox, so confined as the tools are).
pub(crate) fn changed_file(toolbox: &Toolbox, arguments: &str) -> Option<(String, String)> {
    let args: serde_json::Value = serde_json::from_str(arguments).ok()?;
    let path = args["path"].as_str()?;
    let bytes = toolbox.snapshot(path).ok()??;
    Some((path.to_owned(), String::from_utf8(bytes).ok()?))
}

/// What the model is told when its change left the file as it was. Small models repeat a
/// failed fix word for word; saying so plainly (and not running the checks again for the
/// same verdict) is what gets them to try something else.
pub(crate) fn unchanged_note(path: &str) -> String {
    format!(
        "\n\nnote: {path} already had exactly this content, so nothing changed and the checks \
         still fail as before. Do not write it again: read the checks' errors and write a \
         different solution."
    )
}

/// `path` if it is a plain relative path; anything else is left to the tools, which confine
/// paths and explain what is wrong.
fn plain_relative(path: &str) -> Option<&Path> {
    let relative = Path::new(path);
    let plain = !relative.is_absolute()
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then_some(relative)
}

/// Files shown whole in the first message, and the rest by name.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ShownFiles {
    pub(crate) shown: Vec<(String, String)>,
    pub(crate) listed: Vec<String>,
}

/// Chooses and reads the files to show: those the goal names first, then the rest in
/// repository order, while they fit; binary, generated and large files are only listed.
pub(crate) fn read_shown_files(root: &Path, files: &[String], goal: &str) -> ShownFiles {
    let mentioned = |path: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        goal.contains(path) || goal.contains(name)
    };
    let mut ordered: Vec<&String> = files.iter().filter(|f| mentioned(f)).collect();
    ordered.extend(files.iter().filter(|f| !mentioned(f)));
    let mut out = ShownFiles::default();
    let mut left = SHOWN_BYTES;
    for path in ordered {
        let name = path.rsplit('/').next().unwrap_or(path);
        let text = if NEVER_SHOWN.contains(&name) {
            None
        } else {
            readable_text(&root.join(path))
        };
        match text {
            Some(text) if text.len() <= left && text.len() <= SHOWN_FILE_MAX_BYTES => {
                left -= text.len();
                out.shown.push((path.clone(), text));
            }
            _ => out.listed.push(path.clone()),
        }
    }
    out
}

/// The file's text, if it is UTF-8 without NUL bytes (not binary).
fn readable_text(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > SHOWN_FILE_MAX_BYTES as u64 {
        return None;
    }
    let text = String::from_utf8(std::fs::read(path).ok()?).ok()?;
    (!text.contains('\0')).then_some(text)
}

fn fence_language(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("py") => "python",
        Some("rs") => "rust",
        Some("toml") => "toml",
        Some("md") => "markdown",
        Some("js") => "javascript",
        Some("ts") => "typescript",
        Some("go") => "go",
        Some("sh") => "sh",
        Some("json") => "json",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(command: &str, passed: bool, output: &str) -> CheckOutcome {
        CheckOutcome {
            command: command.into(),
            passed,
            exit_code: Some(if passed { 0 } else { 1 }),
            output: output.into(),
            duration_ms: 1,
        }
    }

    #[test]
    fn the_files_the_goal_names_come_first_and_big_or_binary_ones_are_only_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "print('a')\n").unwrap();
        std::fs::write(dir.path().join("b.py"), "print('b')\n").unwrap();
        std::fs::write(
            dir.path().join("big.txt"),
            "x".repeat(SHOWN_FILE_MAX_BYTES + 1),
        )
        .unwrap();
        std::fs::write(dir.path().join("logo.png"), b"\x89PNG\0\0").unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "# lock\n").unwrap();
        let files: Vec<String> = ["Cargo.lock", "a.py", "b.py", "big.txt", "logo.png"]
            .map(String::from)
            .to_vec();
        let shown = read_shown_files(dir.path(), &files, "Fix the bug in b.py.");
        let names: Vec<&str> = shown.shown.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["b.py", "a.py"]);
        assert_eq!(shown.listed, ["Cargo.lock", "big.txt", "logo.png"]);
    }

    #[test]
    fn the_opening_holds_goal_files_and_check_output() {
        let files = ShownFiles {
            shown: vec![(
                "calc.py".into(),
                "def add(a, b):\n    return a - b\n".into(),
            )],
            listed: vec!["data.bin".into()],
        };
        let checks = render_checks(&[outcome("python3 -m unittest", false, "FAIL: test_add")]);
        let text = render_opening("Fix add.", &files, Some(&checks));
        assert!(text.starts_with("Your task:\nFix add.\n"), "{text}");
        assert!(text.contains("calc.py\n```python\ndef add(a, b):\n    return a - b\n```\n"));
        assert!(text.contains("Other files (not shown; use read_file): data.bin"));
        assert!(text.contains("the checks fail:\n\n$ python3 -m unittest\nfailed, exit code 1\n```\nFAIL: test_add\n```"), "{text}");
    }

    #[test]
    fn fenced_files_are_found_by_the_line_naming_them_or_by_the_goal() {
        let files: Vec<String> = ["calc.py", "src/lib.rs", "test_calc.py"]
            .map(String::from)
            .to_vec();
        let answer = "The bug is in add.\n\n**calc.py**\n```python\ndef add(a, b):\n    return a + b\n```\n\
                      File: `src/lib.rs`\n````rust\nfn f() {}\n````\n";
        let found = fenced_files(answer, &files, "Fix calc.py");
        assert_eq!(
            found,
            [
                (
                    "calc.py".to_owned(),
                    "def add(a, b):\n    return a + b\n".to_owned()
                ),
                ("src/lib.rs".to_owned(), "fn f() {}\n".to_owned()),
            ]
        );
        assert_eq!(fenced_summary(answer, &found), "The bug is in add.");
        // No name: the first block that defines something in the language of the one file
        // the goal names; usage, commands and expected output after it are not the file.
        let bare = "Here:\n```py\ndef add(a, b):\n    return a + b\n```\nRun it:\n```python\n$ python3 -m unittest\n```\n```python\nclass T:\n    pass\n```\n```\nOK\n```";
        assert_eq!(
            fenced_files(bare, &files, "Fix calc.py"),
            [(
                "calc.py".to_owned(),
                "def add(a, b):\n    return a + b\n".to_owned()
            )]
        );
        assert!(fenced_files(bare, &files, "Fix it").is_empty());
        assert!(fenced_files("```\ndef add(): pass\n```", &files, "Fix calc.py").is_empty());
        assert!(fenced_files("```python\nprint(1)\n```", &files, "Fix calc.py").is_empty());
        // A named block for the same file wins over an unnamed one.
        let both = "```python\ndef a(): pass\n```\ncalc.py\n```python\ndef b(): pass\n```";
        assert_eq!(
            fenced_files(both, &files, "Fix calc.py"),
            [("calc.py".to_owned(), "def b(): pass\n".to_owned())]
        );
        // An unclosed block is not a file; words alone are a claim of being done.
        assert!(fenced_files("calc.py\n```python\nprint(1)\n", &files, "").is_empty());
        assert_eq!(
            fenced_summary("calc.py\n```\nx\n```", &[("calc.py".into(), "x".into())]),
            "Rewrote calc.py."
        );
    }

    #[test]
    fn an_unnamed_block_goes_to_the_goal_file_that_is_not_a_test() {
        let files: Vec<String> = ["calc.py", "test_calc.py", "util.py"]
            .map(String::from)
            .to_vec();
        let bare = "```python\ndef add(a, b):\n    return a + b\n```";
        let goal = "The tests in test_calc.py fail. Fix calc.py.";
        assert_eq!(
            fenced_files(bare, &files, goal),
            [(
                "calc.py".to_owned(),
                "def add(a, b):\n    return a + b\n".to_owned()
            )]
        );
        // Two files that are not tests: no way to tell, so no file.
        assert!(fenced_files(bare, &files, "Fix calc.py and util.py").is_empty());
    }

    #[test]
    fn tests_are_recognised_by_name_and_directory() {
        for test in [
            "test_calc.py",
            "pkg/test_calc.py",
            "calc_test.py",
            "tests/cli.rs",
            "crate/tests/suite/mod.rs",
            "src/parse_tests.rs",
        ] {
            assert!(is_test_file(test), "{test}");
        }
        for code in [
            "calc.py",
            "src/lib.rs",
            "contest.py",
            "latest/x.py",
            "testing.py",
        ] {
            assert!(!is_test_file(code), "{code}");
        }
    }

    #[test]
    fn a_goal_that_forbids_changing_the_tests_is_recognised() {
        for goal in [
            "Fix calc.py so that all tests pass. Do not change the tests.",
            "Fix shop.py so that the tests pass; do not change the tests.",
            "Make it work without modifying the test suite.",
            "Don\u{2019}t touch tests/cli.rs.",
            "You must not edit test_x.py",
        ] {
            assert!(goal_protects_tests(goal), "{goal}");
        }
        for goal in [
            "Add tests for parse and fix it.",
            "Do not change the public API; the tests must pass.",
            "Rename total to sum across files, tests included.",
        ] {
            assert!(!goal_protects_tests(goal), "{goal}");
        }
    }

    #[test]
    fn after_a_change_passing_checks_ask_for_finish() {
        assert!(after_change(&[outcome("t", true, "")]).contains("Call finish now"));
        let failing = after_change(&[outcome("t", false, "boom")]);
        assert!(failing.contains("boom") && failing.contains("Fix the code"));
    }

    #[test]
    fn the_system_prompt_has_every_placeholder_filled() {
        for edit in [EditFormat::Whole, EditFormat::Replace, EditFormat::Fenced] {
            let text = render_system(&["make test".into()], Some("Use tabs."), edit);
            assert!(!text.contains("{{"), "{text}");
            assert!(text.contains("- `make test`") && text.contains("Use tabs."));
            if edit != EditFormat::Fenced {
                assert!(text.contains(edit.tool_name()));
            }
        }
        let fenced = Scaffold::Compact {
            edit: EditFormat::Fenced,
        };
        assert!(
            fenced
                .tool_specs(std::time::Duration::from_secs(1))
                .is_empty()
        );
        assert_ne!(
            Scaffold::Full.template_hash(),
            Scaffold::Compact {
                edit: EditFormat::Whole
            }
            .template_hash()
        );
    }
}
