//! Compaction: the model summarises the older part of the conversation, and the summary
//! replaces it.
//!
//! Trimming ([`crate::fit`]) keeps the conversation inside the window by cutting text, which
//! loses what the model learned. Compaction keeps the substance: one extra model request (no
//! tools offered) with a versioned prompt (`prompts/compaction.md`) asks for a summary that
//! keeps the goal, the plan, the decisions, the files changed and what remains. The result
//! replaces the older messages as ONE user message placed right after the goal.
//!
//! What is never summarised: the system prompt and the goal (the first two messages), and the
//! most recent turns, which stay verbatim: at least the last assistant turn with its tool
//! results, plus earlier turns while they fit in a quarter of the room. The split falls only
//! on a turn boundary (an assistant or user message), so an assistant's tool calls are never
//! separated from their results.
//!
//! The older part is sent as a plain-text transcript inside one user message rather than as
//! the original messages: providers reject tool calls in the history of a request that offers
//! no tools, and the transcript can be shortened to fit the window when the conversation
//! itself no longer does (the context-length-error case).

use nightshift_model::ModelRequest;
use nightshift_protocol::{Message, Role};

use crate::context::estimate;

/// The summary prompt, sent as the system message of the compaction request. Changing it
/// changes [`compaction_template_hash`], recorded in every `context_compacted` event.
pub const COMPACTION_TEMPLATE: &str = include_str!("../prompts/compaction.md");

/// How the summary message starts, so it (and a later compaction of it) is recognisable.
pub const SUMMARY_PREFIX: &str = "Summary of the work so far";

/// The system prompt and the goal.
const HEAD: usize = 2;
/// Tokens kept free in the compaction request for the summary and the request's framing.
const REQUEST_MARGIN_TOKENS: u64 = 256;
/// Each transcript entry keeps at least this much of its text, however tight the room.
const MIN_ENTRY_BYTES: usize = 120;

/// What a compacted conversation aims to take of the room, in percent.
const TARGET_PERCENT: u64 = 60;
/// The most of the room the summary may take, in percent; a longer one is cut.
const SUMMARY_PERCENT: u64 = 15;

/// The longest summary kept, in tokens, for a conversation that must fit in `room`.
fn summary_max_tokens(room: u64) -> u64 {
    room * SUMMARY_PERCENT / 100
}

/// The longest summary kept, in bytes (about four a token), for a conversation that must fit
/// in `room` tokens.
pub(crate) fn summary_max_bytes(room: u64) -> usize {
    summary_max_tokens(room).saturating_mul(4) as usize
}

/// Hex SHA-256 of [`COMPACTION_TEMPLATE`].
pub fn compaction_template_hash() -> String {
    crate::prompt::sha256_hex(COMPACTION_TEMPLATE)
}

/// Where to split `messages` so the conversation fits in `room` tokens: `messages[2..split]`
/// is summarised, `messages[split..]` stays verbatim. `None` when there is nothing worth
/// summarising (no older turns, only an earlier summary, or too little to gain).
pub(crate) fn split_point(messages: &[Message], room: u64) -> Option<usize> {
    if messages.len() <= HEAD {
        return None;
    }
    // Verbatim recent turns get a quarter of the room, less if the head is large, so that head,
    // summary and recent turns together aim at TARGET_PERCENT of the room and the next turns
    // have space to grow before another compaction.
    let head_tokens = estimate(&messages[..HEAD]);
    let recent_budget = (room * TARGET_PERCENT / 100)
        .saturating_sub(head_tokens + summary_max_tokens(room))
        .min(room / 4);
    let mut split = messages.len();
    let mut kept_tokens = 0;
    let mut kept_assistant = false;
    // Turn starts, latest first. A tool result never starts a turn: it belongs to the
    // assistant message that called it.
    for start in (HEAD..messages.len()).rev() {
        if messages[start].role == Role::Tool {
            continue;
        }
        let turn_tokens = estimate(&messages[start..split]);
        if kept_assistant && kept_tokens + turn_tokens > recent_budget {
            break;
        }
        kept_tokens += turn_tokens;
        kept_assistant |= messages[start].role == Role::Assistant;
        split = start;
    }
    let older = &messages[HEAD..split];
    let only_a_summary = older.len() == 1 && is_summary(&older[0]);
    // Summarising a sliver costs a request and gains nothing: trimming handles that case.
    if older.is_empty() || only_a_summary || estimate(older) < room / 10 {
        return None;
    }
    Some(split)
}

/// Whether `message` is a summary written by an earlier compaction.
pub(crate) fn is_summary(message: &Message) -> bool {
    message.role == Role::User && message.content.starts_with(SUMMARY_PREFIX)
}

/// The compaction request for `messages[2..split]`: the template as system message, then the
/// goal and the transcript, shortened so the request fits in `room` tokens. No tools.
pub(crate) fn request(messages: &[Message], split: usize, room: u64) -> ModelRequest {
    let goal = messages.get(1).map_or("", |m| m.content.as_str());
    let framing = estimate(&[Message::system(COMPACTION_TEMPLATE), Message::user(goal)])
        + REQUEST_MARGIN_TOKENS;
    let budget_bytes = room.saturating_sub(framing).saturating_mul(4) as usize;
    let older = messages.get(HEAD..split).unwrap_or_default();
    let transcript = transcript(older, budget_bytes);
    ModelRequest {
        messages: vec![
            Message::system(COMPACTION_TEMPLATE),
            Message::user(format!(
                "{goal}\n\n<transcript>\n{transcript}</transcript>\n\nWrite the summary now."
            )),
        ],
        tools: Vec::new(),
    }
}

/// Replaces `messages[2..split]` with one user message holding `summary`, cut to at most
/// `max_bytes`. Returns how many messages were replaced.
pub(crate) fn apply(
    messages: &mut Vec<Message>,
    split: usize,
    summary: &str,
    max_bytes: usize,
) -> usize {
    let summary = nightshift_tools::trim_middle(summary.trim(), max_bytes);
    let message = Message::user(format!(
        "{SUMMARY_PREFIX} (you wrote it when older turns were compacted to fit the context \
         window; the turns after it are verbatim):\n\n{summary}"
    ));
    messages.splice(HEAD..split, [message]).count()
}

/// The older messages as plain text, each entry's text shortened so the whole fits in about
/// `budget_bytes`: the longest texts (tool outputs, mostly) are cut first and all to the same
/// length, so short messages, where decisions usually are, survive whole. When even that is
/// not enough, the oldest entries are left out (an earlier summary, which carries them, stays).
fn transcript(older: &[Message], budget_bytes: usize) -> String {
    let least = |m: &Message| entry(m, "").len() + 1 + m.content.len().min(MIN_ENTRY_BYTES);
    let keeps_summary = older.first().is_some_and(is_summary);
    let first_droppable = usize::from(keeps_summary);
    let mut dropped = 0;
    let mut least_total: usize = older.iter().map(least).sum();
    while least_total > budget_bytes && first_droppable + dropped + 1 < older.len() {
        least_total -= least(&older[first_droppable + dropped]);
        dropped += 1;
    }
    let kept: Vec<&Message> = older[..first_droppable]
        .iter()
        .chain(&older[first_droppable + dropped..])
        .collect();
    let texts: Vec<&str> = kept.iter().map(|m| m.content.as_str()).collect();
    let framing: usize = kept.iter().map(|m| entry(m, "").len() + 1).sum();
    let cap = fair_cap(&texts, budget_bytes.saturating_sub(framing));
    let mut out = String::new();
    for (i, message) in kept.iter().enumerate() {
        if dropped > 0 && i == first_droppable {
            out.push_str(&format!(
                "[... {dropped} older messages left out to fit]\n\n"
            ));
        }
        out.push_str(&entry(
            message,
            &nightshift_tools::trim_middle(&message.content, cap),
        ));
    }
    out
}

/// One transcript entry with `text` as the message's content.
fn entry(message: &Message, text: &str) -> String {
    let mut out = match message.role {
        Role::System => "[system]\n".to_owned(),
        Role::User => "[user]\n".to_owned(),
        Role::Assistant => "[assistant]\n".to_owned(),
        Role::Tool => format!(
            "[tool result {}]\n",
            message.tool_call_id.as_deref().unwrap_or("?")
        ),
    };
    if !text.is_empty() {
        out.push_str(text);
        out.push('\n');
    }
    for call in &message.tool_calls {
        out.push_str(&format!("→ called {}({})\n", call.name, call.arguments));
    }
    out.push('\n');
    out
}

/// The largest per-text cap (at least [`MIN_ENTRY_BYTES`]) with which the texts, each cut to
/// the cap, add up to at most `budget` bytes.
fn fair_cap(texts: &[&str], budget: usize) -> usize {
    let total = |cap: usize| texts.iter().map(|t| t.len().min(cap)).sum::<usize>();
    let longest = texts.iter().map(|t| t.len()).max().unwrap_or(0);
    if total(longest) <= budget {
        return longest.max(MIN_ENTRY_BYTES);
    }
    // `total` grows with the cap: binary search the largest cap that fits.
    let (mut low, mut high) = (MIN_ENTRY_BYTES, longest);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if total(mid) <= budget {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightshift_protocol::ToolCall;

    fn call(id: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "shell".into(),
            arguments: r#"{"command":"ls"}"#.into(),
        }
    }

    /// System, goal, then `turns` assistant turns of two tool calls each, with outputs of
    /// `output_bytes`.
    fn conversation(turns: usize, output_bytes: usize) -> Vec<Message> {
        let mut messages = vec![Message::system("system"), Message::user("the goal")];
        for i in 0..turns {
            let (a, b) = (format!("a{i}"), format!("b{i}"));
            messages.push(Message::assistant(
                format!("turn {i}"),
                vec![call(&a), call(&b)],
            ));
            messages.push(Message::tool(a, "x".repeat(output_bytes)));
            messages.push(Message::tool(b, "y".repeat(output_bytes)));
        }
        messages
    }

    fn assert_well_formed(messages: &[Message]) {
        for (i, message) in messages.iter().enumerate() {
            if message.role == Role::Tool {
                let id = message.tool_call_id.as_deref().unwrap();
                let caller = messages[..i]
                    .iter()
                    .rev()
                    .find(|m| m.role != Role::Tool)
                    .unwrap();
                assert!(
                    caller.tool_calls.iter().any(|c| c.id == id),
                    "tool result {id} follows its call"
                );
            }
        }
    }

    #[test]
    fn the_split_keeps_recent_turns_whole_within_a_quarter_of_the_room() {
        // Each turn is about 2 × 250 + 20 tokens; a quarter of 4000 holds one, not two.
        let messages = conversation(20, 1000);
        let split = split_point(&messages, 4000).unwrap();
        assert_eq!(messages[split].role, Role::Assistant);
        assert_eq!(messages[split].content, "turn 19");
        // With more room, more recent turns stay verbatim: seven turns fit in 4000 tokens.
        let split = split_point(&messages, 16_000).unwrap();
        assert_eq!(messages[split].content, "turn 13");
    }

    #[test]
    fn the_last_assistant_turn_is_kept_even_when_it_alone_is_over_budget() {
        let mut messages = conversation(4, 1000);
        messages.push(Message::assistant("big", vec![call("z")]));
        messages.push(Message::tool("z", "z".repeat(40_000)));
        messages.push(Message::user("checks failed"));
        let split = split_point(&messages, 4000).unwrap();
        assert_eq!(messages[split].content, "big");
        assert_eq!(messages.len() - split, 3, "the turn and the note after it");
    }

    #[test]
    fn nothing_to_compact_gives_none() {
        assert_eq!(split_point(&conversation(0, 0), 4000), None);
        // Only one turn: it is the recent one, there is nothing older.
        assert_eq!(split_point(&conversation(1, 5000), 4000), None);
        // Only an earlier summary before the recent turn.
        let mut messages = conversation(1, 5000);
        messages.insert(2, Message::user(format!("{SUMMARY_PREFIX}: did things")));
        assert_eq!(split_point(&messages, 4000), None);
        // Older turns too small to be worth a request.
        let mut messages = conversation(2, 10);
        messages.push(Message::assistant("big", vec![call("z")]));
        messages.push(Message::tool("z", "z".repeat(40_000)));
        assert_eq!(split_point(&messages, 4000), None);
    }

    #[test]
    fn applying_a_summary_replaces_the_older_part_after_the_goal() {
        let mut messages = conversation(6, 2000);
        let before = estimate(&messages);
        let split = split_point(&messages, 4000).unwrap();
        let recent: Vec<Message> = messages[split..].to_vec();
        let replaced = apply(&mut messages, split, "  goal, plan, files  ", 4000);
        assert_eq!(replaced, split - 2);
        assert_eq!(messages[0].content, "system");
        assert_eq!(messages[1].content, "the goal");
        assert!(is_summary(&messages[2]), "{}", messages[2].content);
        assert!(messages[2].content.ends_with("goal, plan, files"));
        assert_eq!(&messages[3..], &recent[..]);
        assert_well_formed(&messages);
        let after = estimate(&messages);
        assert!(after < before / 2, "{before} → {after}");
        // A second compaction summarises the first summary along with what followed it.
        messages.extend(conversation(6, 2000).into_iter().skip(2));
        let split = split_point(&messages, 4000).unwrap();
        let request = request(&messages, split, 4000);
        assert!(request.messages[1].content.contains(SUMMARY_PREFIX));
    }

    #[test]
    fn an_oversized_summary_is_cut() {
        let mut messages = conversation(6, 2000);
        let split = split_point(&messages, 4000).unwrap();
        apply(&mut messages, split, &"s".repeat(100_000), 2000);
        assert!(messages[2].content.len() < 2300);
    }

    #[test]
    fn the_request_offers_no_tools_and_fits_the_room() {
        let messages = conversation(40, 8000);
        let split = split_point(&messages, 8000).unwrap();
        let request = request(&messages, split, 8000);
        assert!(request.tools.is_empty());
        assert_eq!(request.messages[0].role, Role::System);
        assert_eq!(request.messages[0].content, COMPACTION_TEMPLATE);
        let user = &request.messages[1].content;
        assert!(user.starts_with("the goal"));
        assert!(
            user.contains("[assistant]\nturn 0\n→ called shell"),
            "{user:.300}"
        );
        assert!(user.contains("[tool result a0]"));
        assert!(user.contains(&format!("turn {}", 38)));
        assert!(
            estimate(&request.messages) <= 8000,
            "{}",
            estimate(&request.messages)
        );
        // Short messages survive whole; long outputs are cut.
        assert!(!user.contains(&"x".repeat(8000)));
    }

    #[test]
    fn a_transcript_too_long_even_cut_leaves_out_the_oldest_but_keeps_the_summary() {
        let mut messages = conversation(400, 100);
        messages.insert(
            2,
            Message::user(format!("{SUMMARY_PREFIX}: the early work")),
        );
        let text = transcript(&messages[2..messages.len() - 3], 8_000);
        assert!(text.len() <= 8_000 + 100, "{}", text.len());
        assert!(text.starts_with("[user]\nSummary of the work so far: the early work"));
        assert!(text.contains("older messages left out to fit"));
        assert!(text.contains("turn 398"), "the latest older turns are kept");
    }

    #[test]
    fn fair_cap_cuts_the_longest_texts_first() {
        assert_eq!(fair_cap(&["aaaa", "bb"], 100), MIN_ENTRY_BYTES);
        let long = "l".repeat(1000);
        let short = "s".repeat(150);
        let cap = fair_cap(&[&long, &short, &long], 1000);
        assert!(cap >= 150 && cap * 2 + 150 <= 1000, "{cap}");
        assert_eq!(fair_cap(&[&long], 10), MIN_ENTRY_BYTES);
    }

    #[test]
    fn the_template_hash_is_stable_and_distinct() {
        assert_eq!(compaction_template_hash().len(), 64);
        assert_eq!(compaction_template_hash(), compaction_template_hash());
        assert_ne!(compaction_template_hash(), crate::template_hash());
        assert!(COMPACTION_TEMPLATE.contains("What remains"));
    }
}
