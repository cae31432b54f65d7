//! Making room in the context window: the limit, compaction, trimming, and recovering from a
//! context-length error (see the parent module's documentation for the policy).

use std::time::Instant;

use nightshift_model::{ModelError, ModelRequest, ModelResponse};
use nightshift_protocol::EventKind;

use super::{
    COMPACTION_PAUSE_STEPS, CONTEXT_LENGTH_ERROR, LEARNED_LIMIT_PERCENT, Loop,
    OUTPUT_RESERVE_DIVISOR, Stop,
};
use crate::{compaction, context};

impl Loop {
    /// The most tokens the conversation may take: the window less the answer's reserve and the
    /// tool definitions, or less after the model showed its real window is smaller.
    pub(super) fn context_limit(&self) -> u64 {
        let window = self.setup.context_window;
        let tools_tokens =
            serde_json::to_string(&self.setup.tool_specs).map_or(0, |json| json.len() as u64 / 4);
        let limit = (window - window / OUTPUT_RESERVE_DIVISOR).saturating_sub(tools_tokens);
        self.learned_limit
            .map_or(limit, |learned| learned.min(limit))
    }

    /// Sends the conversation to the model. A context-length error is recovered from twice at
    /// most: first by compacting (and trimming what compaction left over the limit), then by
    /// trimming hard; after each, the same step's request is sent again.
    pub(super) async fn ask(&mut self, step: u32, limit: u64) -> Result<ModelResponse, Stop> {
        let mut recoveries = 0u32;
        loop {
            let request = ModelRequest {
                messages: self.messages.clone(),
                tools: self.setup.tool_specs.clone(),
            };
            let on_retry = self.retry_reporter(step);
            let model = self.setup.model.clone();
            let error = match self.guarded(model.complete(&request, &on_retry)).await? {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            if !error.is_context_length() {
                return Err(Stop::Error(format!("model request failed: {error}")));
            }
            let refused = context::estimate(&self.messages);
            let learned = (refused * LEARNED_LIMIT_PERCENT / 100).min(limit);
            self.learned_limit = Some(self.learned_limit.map_or(learned, |l| l.min(learned)));
            tracing::warn!(
                step,
                refused,
                learned,
                "the model refused the conversation as too long for its context window"
            );
            let mut recovered = false;
            while !recovered && recoveries < 2 {
                recoveries += 1;
                recovered = if recoveries == 1 {
                    let compacted = self.compact(step, learned, CONTEXT_LENGTH_ERROR).await?;
                    self.trim(learned).await || compacted
                } else {
                    // Compaction was tried and the request still did not fit: the estimate
                    // is far off for this model, so halve the conversation.
                    self.trim(context::estimate(&self.messages) / 2).await
                };
            }
            if !recovered {
                return Err(Stop::Error(context_length_failure(refused, &error)));
            }
            self.emit(EventKind::ModelRetry {
                step,
                attempt: recoveries + 1,
                error: headline(&error),
                wait_ms: 0,
            })
            .await;
        }
    }

    /// Trims the conversation to `limit` tokens; true when something was cut.
    pub(super) async fn trim(&mut self, limit: u64) -> bool {
        let Some(trimmed) = context::fit(&mut self.messages, limit) else {
            return false;
        };
        self.emit(EventKind::ContextTrimmed {
            messages_trimmed: trimmed.messages_trimmed,
            tokens_before: trimmed.tokens_before,
            tokens_after: trimmed.tokens_after,
        })
        .await;
        true
    }

    /// Replaces the older turns with a summary the model writes, so the conversation fits in
    /// `room` tokens; true when it did. A failed compaction request is not fatal: it is noted
    /// and the caller falls back to trimming. Cancellation and the wall-clock budget still
    /// stop the task.
    pub(super) async fn compact(
        &mut self,
        step: u32,
        room: u64,
        trigger: &str,
    ) -> Result<bool, Stop> {
        let Some(split) = compaction::split_point(&self.messages, room) else {
            return Ok(false);
        };
        let request = compaction::request(&self.messages, split, room);
        let on_retry = self.retry_reporter(step);
        let model = self.setup.model.clone();
        let started = Instant::now();
        let response = match self.guarded(model.complete(&request, &on_retry)).await? {
            Ok(response) => response,
            Err(error) => {
                let message = format!(
                    "compacting the conversation failed, trimming it instead: {}",
                    headline(&error)
                );
                tracing::warn!(step, "{message}");
                self.emit(EventKind::Notice { message }).await;
                self.compaction_resumes_at = step + COMPACTION_PAUSE_STEPS;
                return Ok(false);
            }
        };
        let cost_usd = self.account(response.usage);
        let cost = cost_usd.map_or_else(String::new, |cost| format!(", ${cost:.4}"));
        let usage = response.usage;
        self.emit(EventKind::Notice {
            message: format!(
                "context compaction request ({trigger}): {} in / {} out tokens{cost}, {} ms",
                usage.input_tokens,
                usage.output_tokens,
                started.elapsed().as_millis()
            ),
        })
        .await;
        let summary = response.message.content.trim();
        if summary.is_empty() {
            self.emit(EventKind::Notice {
                message: "the model wrote an empty summary; trimming the conversation instead"
                    .to_owned(),
            })
            .await;
            self.compaction_resumes_at = step + COMPACTION_PAUSE_STEPS;
            return Ok(false);
        }
        let tokens_before = context::estimate(&self.messages);
        let messages_compacted = compaction::apply(
            &mut self.messages,
            split,
            summary,
            compaction::summary_max_bytes(room),
        );
        self.emit(EventKind::ContextCompacted {
            messages_compacted,
            tokens_before,
            tokens_after: context::estimate(&self.messages),
            template_hash: compaction::compaction_template_hash(),
            trigger: trigger.to_owned(),
        })
        .await;
        Ok(true)
    }
}

/// An error's first line, without its `hint:` (for notes about something being handled).
fn headline(error: &ModelError) -> String {
    let message = error.to_string();
    message
        .split_once("\nhint:")
        .map_or(message.as_str(), |(head, _)| head)
        .to_owned()
}

/// Why the task failed when the conversation could not be made to fit.
fn context_length_failure(refused: u64, error: &ModelError) -> String {
    format!(
        "the model kept refusing the conversation as too long for its context window, even after \
         compacting and trimming it (about {refused} tokens by Nightshift's estimate when last \
         refused): {}\n\
         hint: set --context-window (or context_window in the provider profile) to the model's \
         real context window",
        headline(error)
    )
}
