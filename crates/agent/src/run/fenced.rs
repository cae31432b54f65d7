//! The fenced edit format's turn: write the files an answer gives, run the checks, and undo
//! a failed attempt so that the opening is asked again (see [`FencedAttempt`]).

use std::sync::Arc;
use std::time::Instant;

use nightshift_protocol::EventKind;
use nightshift_tools::Toolbox;

use super::{Loop, STUCK_LIMIT, Stop};
use crate::compact;

/// One attempt of the fenced edit format: the files it changed, as they were before, so that
/// an attempt that fails can be undone and the model asked again from the opening.
///
/// An attempt is one answer. Shown its failed answer and the checks' output, the 1.5B model
/// gave the same answer again in 7 of 9 retries in our eval runs, and none of the 9 passed,
/// so a retry in the conversation wastes a step; an independent sample from the opening
/// does not. The opening then ends with the last failed attempt's check output (not its
/// answer), so that the next sample knows which cases to mind.
#[derive(Default)]
pub(super) struct FencedAttempt {
    /// Each changed file's bytes before the attempt first wrote it (`None`: it did not
    /// exist), in the order first written.
    originals: Vec<(String, Option<Vec<u8>>)>,
}

/// What writing one file of a fenced answer did: the tool's result and whether the file
/// changed.
struct FencedWrite {
    text: String,
    is_error: bool,
    changed: bool,
}

impl Loop {
    /// The fenced edit format: writes the files the answer gives (recorded as `write_file`
    /// calls) and runs the checks. Returns the summary when they pass (verification then runs
    /// them once more, as for any claim of being done); otherwise undoes the attempt so that
    /// the next turn asks the opening again.
    pub(super) async fn apply_fenced(
        &mut self,
        step: u32,
        toolbox: &Arc<Toolbox>,
        text: &str,
    ) -> Result<Option<String>, Stop> {
        let files = compact::fenced_files(text, &self.setup.files, &self.setup.goal);
        let summary = compact::fenced_summary(text, &files);
        if files.is_empty() {
            // No file: a claim of being done. While the checks fail, it is a failed attempt
            // like any other, not a conversation about why (which a small model loses).
            if self.setup.checks.is_empty() || self.run_checks().await?.iter().all(|c| c.passed) {
                return Ok(Some(summary));
            }
            return self
                .start_afresh(toolbox, "the answer gave no file", None)
                .await
                .map(|()| None);
        }
        let mut report = Vec::new();
        let mut changed = false;
        let mut refused = false;
        let tests_protected = compact::goal_protects_tests(&self.setup.goal);
        for (index, (path, content)) in files.iter().enumerate() {
            let call_id = format!("fenced-{step}-{index}");
            let written = serde_json::json!({"path": path, "content": content}).to_string();
            self.emit(EventKind::ToolCall {
                step,
                call_id: call_id.clone(),
                name: "write_file".to_owned(),
                arguments: written.clone(),
            })
            .await;
            let started = Instant::now();
            let (text, is_error) = if tests_protected && compact::is_test_file(path) {
                // Rewriting the test is how a small model "passes" a check it cannot pass.
                refused = true;
                let why = format!("{path} not written: the task says not to change the tests");
                (why, true)
            } else {
                let output = self.write_fenced_file(toolbox, path, &written).await?;
                changed |= output.changed;
                (output.text, output.is_error)
            };
            self.emit(EventKind::ToolResult {
                step,
                call_id,
                name: "write_file".to_owned(),
                output: text.clone(),
                is_error,
                duration_ms: started.elapsed().as_millis() as u64,
            })
            .await;
            report.push(text);
        }
        if changed && self.setup.checks.is_empty() {
            return Ok(Some(summary));
        }
        let mut checks_said = None;
        if changed {
            let checks = self.run_checks().await?;
            if checks.iter().all(|c| c.passed) {
                return Ok(Some(summary));
            }
            checks_said = Some(compact::render_checks(&checks));
        }
        // Identical answers with identical results: the loop breaker, as for tool calls.
        let result = format!(
            "{}\n{}",
            report.join("\n"),
            checks_said.as_deref().unwrap_or("")
        );
        let this_turn = ("fenced".to_owned(), text.to_owned(), result);
        self.repeats = if self.last_call.as_ref() == Some(&this_turn) {
            self.repeats + 1
        } else {
            1
        };
        self.last_call = Some(this_turn);
        if self.repeats >= STUCK_LIMIT {
            return Err(Stop::Stuck(format!(
                "the model gave the same answer {} times in a row with the same result; \
                 stopped, as more steps would not help",
                self.repeats
            )));
        }
        let why = if checks_said.is_some() {
            "the checks failed"
        } else if refused {
            "the answer changed only tests, which the task forbids"
        } else {
            "the answer changed nothing"
        };
        self.start_afresh(toolbox, why, checks_said)
            .await
            .map(|()| None)
    }

    /// Writes one file of an answer (merged into the file when the answer gave only some of
    /// its functions), keeping the file's bytes from before the attempt so that it can be
    /// undone; says whether the file changed.
    async fn write_fenced_file(
        &mut self,
        toolbox: &Arc<Toolbox>,
        path: &str,
        written: &str,
    ) -> Result<FencedWrite, Stop> {
        let merged = compact::merge_partial_write(toolbox, written);
        let arguments = merged.as_ref().map_or(written, |(args, _)| args.as_str());
        let before = compact::changed_file(toolbox, arguments);
        let original = toolbox.snapshot(path);
        let mut output = self.guarded(toolbox.call("write_file", arguments)).await?;
        let mut changed = false;
        if !output.is_error {
            if let Ok(original) = original
                && !self.attempt.originals.iter().any(|(p, _)| p == path)
            {
                self.attempt.originals.push((path.to_owned(), original));
            }
            if let Some((_, note)) = &merged {
                output.text.push_str(&format!("\n{note}"));
            }
            let after = compact::changed_file(toolbox, arguments);
            match (before, after) {
                (Some((_, old)), Some((_, new))) if old == new => {
                    output.text.push_str(&compact::unchanged_note(path));
                }
                _ => changed = true,
            }
        }
        Ok(FencedWrite {
            text: output.text,
            is_error: output.is_error,
            changed,
        })
    }

    /// Gives up on the current fenced attempt: puts back the files it changed and drops the
    /// conversation after the opening, so the next request is the first one again (which the
    /// embedded model then samples afresh, not greedily).
    /// `why` the attempt failed, and the checks' verdict on it when it changed something.
    async fn start_afresh(
        &mut self,
        toolbox: &Arc<Toolbox>,
        why: &str,
        checks_said: Option<String>,
    ) -> Result<(), Stop> {
        let attempt = std::mem::take(&mut self.attempt);
        let mut restored = Vec::new();
        // Newest first, so a file written under two spellings ends as it first was.
        for (path, original) in attempt.originals.iter().rev() {
            toolbox.restore(path, original.as_deref()).map_err(|e| {
                Stop::Error(format!("could not undo a failed attempt's change: {e}"))
            })?;
            restored.push(path.as_str());
        }
        restored.reverse();
        self.messages.truncate(self.opening_len.max(1));
        // The opening stays a prefix of itself (only the note is prefilled anew), and an
        // attempt that ran no checks leaves the last note as it was.
        if let Some(said) = &checks_said
            && let Some(last) = self.opening_len.checked_sub(1)
            && let Some(opening) = self.messages.get_mut(last)
        {
            opening.content = format!(
                "{}{}",
                self.opening_text,
                compact::earlier_attempt_note(said)
            );
        }
        self.attempts_undone += 1;
        self.emit(EventKind::Notice {
            message: format!(
                "fenced format: attempt {} undone ({why}); restored {}; asking again from the \
                 opening",
                self.attempts_undone,
                if restored.is_empty() {
                    "no files".to_owned()
                } else {
                    restored.join(", ")
                }
            ) + &checks_said
                .map(|said| format!("\nThe checks said: {said}"))
                .unwrap_or_default(),
        })
        .await;
        Ok(())
    }
}
