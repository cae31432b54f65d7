//! Server-Sent Events, read line by line: enough of the format for the daemon's event stream
//! (`id:` and `data:` fields, comments, blank-line dispatch), nothing more.

/// One dispatched SSE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The `id:` field, when the message had one.
    pub id: Option<String>,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// A line longer than this is not an event the daemon would send; refusing it keeps a
/// misbehaving server from growing the buffer without bound.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// Turns chunks of an SSE body into messages. Chunks may split lines anywhere.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
    id: Option<String>,
    data: Option<String>,
}

impl Parser {
    /// Feeds a chunk and returns the messages it completed. Errors when a line exceeds
    /// [`MAX_LINE`].
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Message>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut messages = Vec::new();
        let mut start = 0;
        while let Some(end) = self.buffer[start..].iter().position(|b| *b == b'\n') {
            let mut line = &self.buffer[start..start + end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start += end + 1;
            if let Some(message) = self.line(&line) {
                messages.push(message);
            }
        }
        self.buffer.drain(..start);
        if self.buffer.len() > MAX_LINE {
            return Err(format!(
                "the event stream sent a line over {MAX_LINE} bytes without an end"
            ));
        }
        Ok(messages)
    }

    fn line(&mut self, line: &str) -> Option<Message> {
        if line.is_empty() {
            // A blank line dispatches; one without data (e.g. after a lone `id:`) dispatches
            // nothing, as the SSE spec says.
            let data = self.data.take()?;
            return Some(Message {
                id: self.id.take(),
                data,
            });
        }
        if line.starts_with(':') {
            return None; // a comment: the keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" => self.id = Some(value.to_owned()),
            // `event:` and `retry:` do not matter to us: every message is an event, and the
            // reconnect schedule is ours.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{Message, Parser};

    fn message(id: Option<&str>, data: &str) -> Message {
        Message {
            id: id.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn messages_split_across_chunks_anywhere_come_out_whole() {
        let body = b": keep-alive\n\nid: 1\ndata: {\"seq\":1}\n\nid: 2\r\ndata:{\"a\":\ndata: 2}\r\n\r\nevent: x\ndata: last\n\n";
        let expected = vec![
            message(Some("1"), "{\"seq\":1}"),
            message(Some("2"), "{\"a\":\n2}"),
            message(None, "last"),
        ];
        for size in 1..body.len() {
            let mut parser = Parser::default();
            let mut got = Vec::new();
            for chunk in body.chunks(size) {
                got.extend(parser.feed(chunk).unwrap());
            }
            assert_eq!(got, expected, "chunk size {size}");
        }
    }

    #[test]
    fn an_unfinished_message_is_not_dispatched() {
        let mut parser = Parser::default();
        assert_eq!(parser.feed(b"id: 3\ndata: half").unwrap(), vec![]);
        assert_eq!(parser.feed(b"\n").unwrap(), vec![]);
        assert_eq!(
            parser.feed(b"\n").unwrap(),
            vec![message(Some("3"), "half")]
        );
        assert_eq!(parser.feed(b"id: 4\n\n").unwrap(), vec![]);
    }
}
