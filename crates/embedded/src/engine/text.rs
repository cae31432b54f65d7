//! Turning token pieces into text that is safe to hand out: whole UTF-8 characters only,
//! and nothing that may turn out to be the start of a tool-call marker.

/// Accumulates token bytes and releases complete UTF-8 text.
#[derive(Debug, Default)]
pub(crate) struct Utf8Buffer {
    pending: Vec<u8>,
}

impl Utf8Buffer {
    /// Adds `bytes` and returns the text that is now complete. Invalid sequences (a model
    /// can emit any byte) come out as U+FFFD instead of stalling the stream.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match error.error_len() {
                        // An incomplete character at the end: wait for the next piece.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end, lossily.
    pub(crate) fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// How many bytes at the end of `text` could be the beginning of `marker` (so they must be
/// held back until the next piece shows whether the marker follows).
pub(crate) fn marker_prefix_len(text: &str, marker: &str) -> usize {
    let longest = marker.len().saturating_sub(1).min(text.len());
    (1..=longest)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && marker.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_are_joined() {
        let mut buffer = Utf8Buffer::default();
        let bytes = "é🙂".as_bytes();
        assert_eq!(buffer.push(&bytes[..1]), "");
        assert_eq!(buffer.push(&bytes[1..3]), "é");
        assert_eq!(buffer.push(&bytes[3..]), "🙂");
        assert_eq!(buffer.finish(), "");
    }

    #[test]
    fn invalid_bytes_do_not_stall_the_stream() {
        let mut buffer = Utf8Buffer::default();
        assert_eq!(buffer.push(b"a\xffb"), "a\u{FFFD}b");
        assert_eq!(buffer.push(b"\xe2\x82"), "");
        assert_eq!(buffer.finish(), "\u{FFFD}");
    }

    #[test]
    fn marker_prefixes_are_held_back() {
        assert_eq!(marker_prefix_len("text <tool", "<tool_call>"), 5);
        assert_eq!(marker_prefix_len("text <", "<tool_call>"), 1);
        assert_eq!(marker_prefix_len("text", "<tool_call>"), 0);
        assert_eq!(marker_prefix_len("a <tool_call", "<tool_call>"), 10);
        assert_eq!(marker_prefix_len("é", "<tool_call>"), 0);
    }
}
