//! Bounded capture of a command's output: the first half of the cap is kept as written, the
//! last half in a ring buffer, so memory stays at the cap however much the command writes.

use std::collections::VecDeque;

/// Output collected so far; see the module doc.
#[derive(Debug)]
pub(crate) struct Capture {
    head: Vec<u8>,
    head_cap: usize,
    tail: VecDeque<u8>,
    tail_cap: usize,
    total: u64,
}

/// What a finished capture hands back.
#[derive(Debug, PartialEq)]
pub(crate) struct Captured {
    pub(crate) text: String,
    pub(crate) total_bytes: u64,
    pub(crate) truncated: bool,
}

impl Capture {
    pub(crate) fn new(cap: usize) -> Capture {
        let head_cap = cap / 2;
        let tail_cap = cap - head_cap;
        Capture {
            // Allocate lazily: most commands print far less than the cap.
            head: Vec::new(),
            head_cap,
            tail: VecDeque::new(),
            tail_cap,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.head_cap - self.head.len();
        let n = room.min(data.len());
        self.head.extend_from_slice(&data[..n]);
        data = &data[n..];
        if data.is_empty() || self.tail_cap == 0 {
            return;
        }
        if data.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
        } else {
            let overflow = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
            self.tail.drain(..overflow);
            self.tail.extend(data);
        }
    }

    pub(crate) fn finish(self) -> Captured {
        let Capture {
            mut head,
            mut tail,
            total,
            ..
        } = self;
        let tail = tail.make_contiguous();
        let kept = (head.len() + tail.len()) as u64;
        if kept == total {
            head.extend_from_slice(tail);
            return Captured {
                text: String::from_utf8_lossy(&head).into_owned(),
                total_bytes: total,
                truncated: false,
            };
        }
        // Cut at character boundaries so the cut itself adds no replacement characters.
        head.truncate(complete_prefix_len(&head));
        let tail = &tail[leading_continuation_len(tail)..];
        let omitted = total - head.len() as u64 - tail.len() as u64;
        let mut text = String::from_utf8_lossy(&head).into_owned();
        text.push_str(&format!("\n[... {omitted} bytes omitted ...]\n"));
        text.push_str(&String::from_utf8_lossy(tail));
        Captured {
            text,
            total_bytes: total,
            truncated: true,
        }
    }
}

/// Length of `bytes` without a UTF-8 sequence cut short at its end.
fn complete_prefix_len(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let i = len - back;
        let b = bytes[i];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: the lead is further back
        }
        let needed = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1, // not UTF-8 at all: leave it to the lossy conversion
        };
        return if back < needed { i } else { len };
    }
    len
}

/// Number of continuation bytes (at most 3) that open `bytes`: the rest of a character whose
/// start was cut away.
fn leading_continuation_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .take_while(|b| **b & 0xC0 == 0x80)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(cap: usize, chunks: &[&[u8]]) -> Captured {
        let mut c = Capture::new(cap);
        for chunk in chunks {
            c.push(chunk);
        }
        c.finish()
    }

    #[test]
    fn under_the_cap_everything_is_kept_in_order() {
        let got = capture(10, &[b"abc", b"defg", b"hij"]);
        assert_eq!(
            got,
            Captured {
                text: "abcdefghij".into(),
                total_bytes: 10,
                truncated: false
            }
        );
    }

    #[test]
    fn over_the_cap_head_and_tail_are_kept_with_a_marker() {
        let got = capture(6, &[b"abcd", b"efghij", b"klmn"]);
        assert_eq!(got.text, "abc\n[... 8 bytes omitted ...]\nlmn");
        assert_eq!(got.total_bytes, 14);
        assert!(got.truncated);
    }

    #[test]
    fn one_huge_chunk_keeps_its_last_bytes() {
        let data: Vec<u8> = (0..100u8).collect();
        let got = capture(4, &[&data]);
        assert_eq!(got.total_bytes, 100);
        assert!(got.text.ends_with("\n[... 96 bytes omitted ...]\nbc"));
    }

    #[test]
    fn cuts_do_not_split_characters() {
        // "é" is two bytes; a cap of 4 would cut both halves inside one.
        let got = capture(4, &["aéééb".as_bytes()]);
        assert_eq!(got.text, "a\n[... 6 bytes omitted ...]\nb");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let got = capture(100, &[b"ok \xff\xfe end"]);
        assert_eq!(got.text, "ok \u{fffd}\u{fffd} end");
    }

    #[test]
    fn zero_cap_keeps_only_the_marker() {
        let got = capture(0, &[b"hello"]);
        assert_eq!(got.text, "\n[... 5 bytes omitted ...]\n");
        assert!(got.truncated);
        assert_eq!(capture(0, &[]).text, "");
    }

    #[test]
    fn complete_prefix_handles_each_sequence_length() {
        assert_eq!(complete_prefix_len(b"ab"), 2);
        assert_eq!(complete_prefix_len("a€".as_bytes()), 4);
        assert_eq!(complete_prefix_len(&"a€".as_bytes()[..3]), 1);
        assert_eq!(complete_prefix_len(&"a😀".as_bytes()[..4]), 1);
        assert_eq!(complete_prefix_len(b"a\xff"), 2);
    }
}
