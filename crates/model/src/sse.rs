//! An incremental Server-Sent Events parser (the WHATWG `text/event-stream` format).
//!
//! Bytes arrive in arbitrary pieces: a line, a `\r\n` pair or a multi-byte UTF-8 character may
//! be split between two network reads. The parser keeps the unfinished line as bytes and only
//! decodes complete lines, so the events it yields do not depend on where the splits fall.

/// One dispatched event: its `event:` type, if any, and its `data:` lines joined by `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The current line, not yet terminated.
    line: Vec<u8>,
    /// The previous byte was `\r`: a `\n` right after it ends the same line.
    after_cr: bool,
    /// No line has been completed yet (a leading byte-order mark is dropped from it).
    first_line: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        SseParser {
            first_line: true,
            ..SseParser::default()
        }
    }

    /// Consumes `bytes`, appending every event they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        for &byte in bytes {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out);
                }
                _ => self.line.push(byte),
            }
        }
    }

    /// The stream ended: dispatches a last event that lacked its closing blank line. Strictly
    /// the format drops such an event, but servers that forget the final blank line are
    /// common and their last event (often `[DONE]`) matters.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let bytes = std::mem::take(&mut self.line);
        let decoded = String::from_utf8_lossy(&bytes);
        let mut line: &str = &decoded;
        if self.first_line {
            self.first_line = false;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return; // a comment, e.g. a keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` matter for reconnecting EventSource clients, not for one
            // request's answer.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.has_data = false;
        self.event = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream exercising every rule: a BOM, comments, `\n`, `\r\n` and `\r` line endings,
    /// a multi-line event, a field without a space after the colon, an `event:` type, an
    /// ignored `id:`, multi-byte UTF-8, an empty `data:` and `[DONE]`.
    const DOCUMENTED: &str = "\u{feff}: keep-alive comment\n\
        data: {\"a\":\"h\u{e9}llo \u{2713}\"}\n\n\
        event: delta\r\nid: 7\r\ndata: line one\r\ndata:line two\r\n\r\n\
        data: cr only\r\r\
        : another comment\n\
        data:\n\n\
        data: [DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        let plain = |data: &str| SseEvent {
            event: None,
            data: data.to_owned(),
        };
        vec![
            plain("{\"a\":\"h\u{e9}llo \u{2713}\"}"),
            SseEvent {
                event: Some("delta".into()),
                data: "line one\nline two".into(),
            },
            plain("cr only"),
            plain(""),
            plain("[DONE]"),
        ]
    }

    fn parse(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            parser.feed(piece, &mut out);
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn whole_stream_parses_as_documented() {
        assert_eq!(parse(&[DOCUMENTED.as_bytes()]), expected());
    }

    #[test]
    fn split_at_every_byte_boundary_gives_the_same_events() {
        let bytes = DOCUMENTED.as_bytes();
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            assert_eq!(parse(&[head, tail]), expected(), "split at byte {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_events() {
        let pieces: Vec<&[u8]> = DOCUMENTED.as_bytes().chunks(1).collect();
        assert_eq!(parse(&pieces), expected());
    }

    #[test]
    fn a_last_event_without_its_blank_line_is_still_dispatched() {
        assert_eq!(
            parse(&[b"data: [DONE]"]),
            vec![SseEvent {
                event: None,
                data: "[DONE]".into()
            }]
        );
    }
}
