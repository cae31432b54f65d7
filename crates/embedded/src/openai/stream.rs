//! Streaming answers: the SSE body that follows a generation, and the text deltas it sends.
//!
//! The response starts only once the generation has produced its first event, so a request
//! the engine refuses (a prompt longer than the context, a tool schema without a grammar)
//! still gets a 400 with an error body, as OpenAI's API answers it, rather than a 200 and an
//! error inside the stream. The body owns the [`GenerationStream`]: a client that goes away
//! drops the body and so cancels the generation.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use crate::{Completion, EngineError, GenerationStream, StreamEvent};

/// Turns a generation's events into a protocol's SSE events.
pub(crate) trait Encoder: Send + 'static {
    /// Events for answer text (never empty, already trimmed as the final text will be).
    fn text(&mut self, delta: &str, out: &mut Vec<Event>);
    /// The closing events. `text` is everything sent by [`text`](Self::text), which is
    /// what the closing events must report as the answer's text.
    fn done(&mut self, result: Result<Completion, EngineError>, text: &str, out: &mut Vec<Event>);
}

/// The generation's first event; an error when the generation failed before producing
/// anything (then no response has started and the error gets its own status).
pub(crate) async fn first_event(
    generation: &mut GenerationStream,
) -> Result<StreamEvent, EngineError> {
    match generation.next().await {
        Some(StreamEvent::Done(result)) => match *result {
            Ok(completion) => Ok(StreamEvent::Done(Box::new(Ok(completion)))),
            Err(error) => Err(error),
        },
        Some(event) => Ok(event),
        None => Err(EngineError::WorkerGone),
    }
}

/// The `text/event-stream` response: `opening`, then what `encoder` makes of `first` and of
/// every later event of `generation`.
pub(crate) fn sse(
    generation: GenerationStream,
    first: StreamEvent,
    encoder: impl Encoder,
    opening: Vec<Event>,
) -> Response {
    let state = State {
        generation: Some(generation),
        next: Some(first),
        pending: opening.into(),
        encoder,
        text: StreamedText::default(),
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok::<_, Infallible>(event), state));
            }
            let event = match state.next.take() {
                Some(event) => Some(event),
                None => state.generation.as_mut()?.next().await,
            };
            let mut out = Vec::new();
            match event {
                Some(StreamEvent::Text(delta)) => {
                    if let Some(delta) = state.text.push(&delta) {
                        state.encoder.text(&delta, &mut out);
                    }
                }
                Some(StreamEvent::Done(result)) => {
                    state.generation = None;
                    state.encoder.done(*result, state.text.sent(), &mut out);
                }
                None => {
                    state.generation = None;
                    let gone = Err(EngineError::WorkerGone);
                    state.encoder.done(gone, state.text.sent(), &mut out);
                }
            }
            state.pending.extend(out);
        }
    });
    // Comments every 15 s keep proxies from closing a stream that is quiet while a tool
    // call is generated (calls are sent whole, at the end).
    Sse::new(events)
        .keep_alive(KeepAlive::new())
        .into_response()
}

struct State<E> {
    /// `None` once the generation has ended.
    generation: Option<GenerationStream>,
    /// An event taken from the generation but not handled yet (the first one).
    next: Option<StreamEvent>,
    pending: VecDeque<Event>,
    encoder: E,
    text: StreamedText,
}

/// The engine trims the final answer's whitespace; deltas are trimmed the same way as they
/// go, so that they add up to exactly the final text: leading whitespace is dropped, and
/// trailing whitespace is held back until more text follows it.
#[derive(Debug, Default)]
pub(crate) struct StreamedText {
    held: String,
    sent: String,
}

impl StreamedText {
    /// What of `delta` can be sent now, if anything.
    pub(crate) fn push(&mut self, delta: &str) -> Option<String> {
        let delta = if self.sent.is_empty() {
            delta.trim_start()
        } else {
            delta
        };
        let body = delta.trim_end();
        if body.is_empty() {
            if !self.sent.is_empty() {
                self.held.push_str(delta);
            }
            return None;
        }
        let mut out = std::mem::take(&mut self.held);
        out.push_str(body);
        self.held.push_str(&delta[body.len()..]);
        self.sent.push_str(&out);
        Some(out)
    }

    /// Everything sent so far.
    pub(crate) fn sent(&self) -> &str {
        &self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::StreamedText;

    #[test]
    fn deltas_add_up_to_the_trimmed_text() {
        let pieces = ["\n ", " Hello", ",", " ", "\n", "world", "  ", "\n"];
        let mut text = StreamedText::default();
        let sent: String = pieces.iter().filter_map(|p| text.push(p)).collect();
        let whole: String = pieces.concat();
        assert_eq!(sent, whole.trim());
        assert_eq!(text.sent(), whole.trim());
    }
}
