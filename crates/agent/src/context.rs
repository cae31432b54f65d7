//! Keeping the conversation inside the model's context window.
//!
//! Tokens are estimated (4 bytes a token plus a small per-message overhead): exact counts need
//! the provider's tokenizer, and the estimate only has to keep us safely under the window.
//! Trimming order: tool outputs first, then assistant text, each oldest first, then whole old
//! turns. The system prompt and the goal (the first two messages) are never touched, and the
//! very last message is kept whole so the model can see what it just got; recent turns are
//! shortened only when older ones were not enough.

use nightshift_protocol::{Message, Role};

const MESSAGE_OVERHEAD_TOKENS: u64 = 4;
/// Messages at the end of the conversation that are never dropped whole.
const KEEP_RECENT: usize = 6;
/// What a trimmed message keeps, so the model knows something was there.
const TRIMMED_KEEP_BYTES: usize = 200;

/// Rough token count of one message.
pub fn estimate_message(message: &Message) -> u64 {
    let calls: usize = message
        .tool_calls
        .iter()
        .map(|c| c.name.len() + c.arguments.len() + c.id.len())
        .sum();
    (message.content.len() + calls) as u64 / 4 + MESSAGE_OVERHEAD_TOKENS
}

/// Rough token count of a conversation.
pub fn estimate(messages: &[Message]) -> u64 {
    messages.iter().map(estimate_message).sum()
}

/// What one call to [`fit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    pub messages_trimmed: usize,
    pub tokens_before: u64,
    pub tokens_after: u64,
}

/// Trims `messages` until their estimate is at most `limit` tokens. Returns `None` when nothing
/// had to change. May still end above `limit` when the protected messages alone exceed it.
pub fn fit(messages: &mut Vec<Message>, limit: u64) -> Option<Trimmed> {
    let tokens_before = estimate(messages);
    if tokens_before <= limit {
        return None;
    }
    let mut total = tokens_before;
    let mut trimmed = 0;
    let protected_head = 2.min(messages.len());
    // Everything but the head and the very last message may be shortened, oldest first.
    let trimmable_end = messages.len().saturating_sub(1).max(protected_head);

    // Pass 1 and 2: shrink tool outputs, then assistant text, oldest first.
    for role in [Role::Tool, Role::Assistant] {
        for message in &mut messages[protected_head..trimmable_end] {
            if total <= limit {
                break;
            }
            if message.role != role || message.content.len() <= TRIMMED_KEEP_BYTES * 2 {
                continue;
            }
            let before = estimate_message(message);
            message.content = shorten(&message.content);
            total = total - before + estimate_message(message);
            trimmed += 1;
        }
    }

    // Pass 3: drop whole old turns. A turn starts at an assistant or user message and runs up to
    // the next one, so an assistant's tool calls and their results go together (providers
    // reject a tool result whose call is missing).
    while total > limit {
        let end = messages.len().saturating_sub(KEEP_RECENT);
        if end <= protected_head {
            break;
        }
        let start = protected_head;
        let mut stop = start + 1;
        while stop < end && messages[stop].role == Role::Tool {
            stop += 1;
        }
        let removed: Vec<Message> = messages.drain(start..stop).collect();
        total -= estimate(&removed);
        trimmed += removed.len();
        if messages.len() > protected_head && messages[protected_head].role == Role::Tool {
            // Never leave orphaned tool results at the front.
            continue;
        }
    }
    // Keep the conversation well-formed: tool results must follow their assistant message.
    while messages.len() > protected_head && messages[protected_head].role == Role::Tool {
        let removed = messages.remove(protected_head);
        total -= estimate_message(&removed);
        trimmed += 1;
    }

    Some(Trimmed {
        messages_trimmed: trimmed,
        tokens_before,
        tokens_after: total,
    })
}

fn shorten(content: &str) -> String {
    let end = content.floor_char_boundary(TRIMMED_KEEP_BYTES);
    format!(
        "{}\n[... {} bytes trimmed from this old output to save context]",
        &content[..end],
        content.len() - end
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightshift_protocol::ToolCall;

    fn conversation(turns: usize, output_bytes: usize) -> Vec<Message> {
        let mut messages = vec![Message::system("system"), Message::user("the goal")];
        for i in 0..turns {
            let call = ToolCall {
                id: format!("c{i}"),
                name: "shell".into(),
                arguments: "{}".into(),
            };
            messages.push(Message::assistant("", vec![call]));
            messages.push(Message::tool(format!("c{i}"), "x".repeat(output_bytes)));
        }
        messages
    }

    #[test]
    fn nothing_changes_under_the_limit() {
        let mut messages = conversation(3, 100);
        assert_eq!(fit(&mut messages, 10_000), None);
        assert_eq!(messages.len(), 8);
    }

    #[test]
    fn old_tool_outputs_go_first_and_head_is_kept() {
        let mut messages = conversation(10, 4000);
        let trimmed = fit(&mut messages, 8_000).unwrap();
        assert!(trimmed.tokens_after <= 8_000);
        assert_eq!(messages.len(), 22, "only shortened, nothing dropped");
        assert_eq!(messages[0].content, "system");
        assert_eq!(messages[1].content, "the goal");
        assert!(messages[3].content.contains("trimmed from this old output"));
        assert_eq!(
            messages.last().unwrap().content.len(),
            4000,
            "recent output intact"
        );
    }

    #[test]
    fn recent_outputs_are_shortened_too_when_old_ones_are_not_enough() {
        // Three huge outputs in the most recent turns alone exceed the window.
        let mut messages = conversation(3, 40_000);
        let trimmed = fit(&mut messages, 12_000).unwrap();
        assert!(trimmed.tokens_after <= 12_000, "{trimmed:?}");
        assert_eq!(messages.len(), 8, "shortened, not dropped");
        assert_eq!(
            messages.last().unwrap().content.len(),
            40_000,
            "the last one stays whole"
        );
    }

    #[test]
    fn whole_turns_are_dropped_when_shortening_is_not_enough() {
        let mut messages = conversation(200, 1000);
        let trimmed = fit(&mut messages, 3_000).unwrap();
        assert!(trimmed.tokens_after <= 3_000, "{trimmed:?}");
        assert_eq!(messages[1].content, "the goal");
        assert_eq!(messages[2].role, Role::Assistant, "no orphaned tool result");
        for pair in messages.windows(2) {
            if pair[1].role == Role::Tool {
                assert!(matches!(pair[0].role, Role::Assistant | Role::Tool));
            }
        }
    }
}
