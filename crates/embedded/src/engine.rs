//! In-process inference on llama.cpp behind [`ModelClient`].
//!
//! One [`EmbeddedModel`] owns a loaded GGUF model and one llama.cpp context on a worker
//! thread of its own; requests queue there and run one at a time. Across requests the worker
//! keeps the KV cache and the tokens in it, so a conversation that grew by a turn only
//! prefills the new tokens (the prompt layout keeps the system message and tools first).
//!
//! Prompts are rendered with the model's own chat template from the GGUF metadata. Tool calls
//! follow the template's convention (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`)
//! and are grammar-constrained: once a call starts, a GBNF grammar built from the offered
//! tools' JSON schemas forces it to parse and match one tool's schema. See [`ToolCallMode`]
//! for when the grammar applies.
//!
//! Not here: fetching models (`pull`), an HTTP server, GPU offload.

mod cpu;
mod grammar;
mod template;
mod text;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nightshift_model::{
    BoxFuture, ModelClient, ModelError, ModelRequest, ModelResponse, RetryNote,
};
use tokio::sync::{mpsc, oneshot};

pub use cpu::physical_cores;

/// How tool calls are decided when tools are offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolCallMode {
    /// The model writes freely; when it opens a call (`<tool_call>`), the grammar takes over
    /// and forces a valid call. Plain answers stay possible. Costs nothing until a call.
    Lazy,
    /// The answer must be one or more tool calls, grammar-constrained from the first token.
    /// For agents whose every turn acts (they end with a `finish` tool): small models rarely
    /// open a call on their own.
    Required,
}

/// How a model is loaded and sampled.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Threads for prefill and decode; `None` means the number of physical cores (more
    /// threads than cores slows llama.cpp down).
    pub threads: Option<u32>,
    /// The context window to allocate, in tokens (KV cache: about 28 KiB per token for
    /// Qwen2.5-Coder-1.5B).
    pub context_tokens: u32,
    /// Prompt tokens per llama.cpp batch (`n_batch` = `n_ubatch`). Cancellation is checked
    /// between batches.
    pub batch_tokens: u32,
    /// The longest answer, in tokens; a longer one ends with finish reason `length`.
    pub max_output_tokens: u32,
    /// Sampling temperature; `0` is greedy.
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub seed: u32,
    pub tool_calls: ToolCallMode,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: None,
            context_tokens: 8192,
            batch_tokens: 512,
            max_output_tokens: 4096,
            temperature: 0.2,
            top_k: 40,
            top_p: 0.95,
            seed: 0x5eed,
            tool_calls: ToolCallMode::Required,
        }
    }
}

/// Per-request overrides of the [`EngineOptions`] a model was loaded with (for the
/// OpenAI-compatible endpoint's `max_tokens`, `temperature`, `tool_choice`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GenerateOptions {
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub seed: Option<u32>,
    pub tool_calls: Option<ToolCallMode>,
    /// Sample with min-p (drop tokens less likely than this fraction of the likeliest) instead
    /// of top-k and top-p. Min-p keeps high temperatures coherent: used to explore.
    pub min_p: Option<f32>,
}

/// What went wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "could not load the model {}: {detail}\nhint: check that the file is a complete GGUF model (`nightshift model pull` verifies it)",
        .path.display()
    )]
    Load { path: PathBuf, detail: String },

    #[error(
        "the model's chat template cannot be used: {detail}\nhint: use a GGUF model whose metadata has a Jinja chat template (tokenizer.chat_template)"
    )]
    Template { detail: String },

    #[error(
        "the request exceeds the available context size: the prompt is {prompt_tokens} tokens and the answer needs room for {reserve} more, but the context holds {context_tokens}\nhint: shorten the conversation, or load the model with a larger context_tokens"
    )]
    ContextOverflow {
        prompt_tokens: usize,
        reserve: usize,
        context_tokens: usize,
    },

    #[error(
        "llama.cpp failed while {during}: {detail}\nhint: this is a bug or a broken model file; run with RUST_LOG=debug for llama.cpp's log"
    )]
    Llama {
        during: &'static str,
        detail: String,
    },

    #[error("the generation was cancelled")]
    Cancelled,

    #[error(
        "the model's worker thread has stopped\nhint: an earlier error or panic ended it; load the model again"
    )]
    WorkerGone,
}

impl From<EngineError> for ModelError {
    fn from(error: EngineError) -> Self {
        match error {
            // Status 400 + llama.cpp's own phrase, so `is_context_length()` is true and the
            // agent trims instead of retrying.
            EngineError::ContextOverflow { .. } | EngineError::Template { .. } => {
                ModelError::Rejected {
                    status: 400,
                    body: error.to_string(),
                }
            }
            EngineError::Load { .. } => ModelError::Config(error.to_string()),
            other => ModelError::Provider {
                message: other.to_string(),
            },
        }
    }
}

/// Facts about a loaded model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// The file stem, e.g. `qwen2.5-coder-1.5b-instruct-q4_k_m`.
    pub name: String,
    pub path: PathBuf,
    pub context_tokens: u32,
    pub threads: u32,
    pub parameters: u64,
    /// The context the model was trained for.
    pub trained_context_tokens: u32,
}

/// Token counts and timings of one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV cache entries were kept from the previous request.
    pub reused_tokens: usize,
    /// Prompt tokens actually computed (`prompt_tokens - reused_tokens`).
    pub prefilled_tokens: usize,
    pub completion_tokens: usize,
    /// Tokens the tool-call grammar rejected, so that the whole vocabulary had to be
    /// filtered and sampled again (the expensive path; see the bench).
    pub grammar_resamples: usize,
    /// Time spent waiting for an earlier generation to finish.
    pub queued: Duration,
    pub prefill: Duration,
    /// Generating the answer, sampling included.
    pub decode: Duration,
    /// The part of `decode` spent choosing tokens (sampler chain and grammar).
    pub sampling: Duration,
}

/// A finished generation: the answer as a [`ModelResponse`] and its statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub response: ModelResponse,
    pub stats: GenerationStats,
}

/// What a running generation reports.
#[derive(Debug)]
pub enum StreamEvent {
    /// Answer text as it is generated (never the text of tool calls).
    Text(String),
    /// The end: always the last event. (Boxed: it is much larger than a text event.)
    Done(Box<Result<Completion, EngineError>>),
}

struct Job {
    request: ModelRequest,
    options: GenerateOptions,
    cancel: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<StreamEvent>,
    submitted: std::time::Instant,
    /// The model's count of generated tokens, which the worker adds to.
    generated: Arc<AtomicU64>,
}

/// A GGUF model loaded into llama.cpp, with its own worker thread. Share it with `Arc`.
pub struct EmbeddedModel {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    worker: Option<std::thread::JoinHandle<()>>,
    info: ModelInfo,
    generated: Arc<AtomicU64>,
}

impl std::fmt::Debug for EmbeddedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedModel")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl EmbeddedModel {
    /// Loads the model and allocates its context. Blocks for seconds: from async code use
    /// [`load_async`](Self::load_async).
    pub fn load(path: &Path, options: EngineOptions) -> Result<Arc<Self>, EngineError> {
        // A std channel: this may be called from a thread that belongs to an async runtime.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let ready: worker::Ready = Box::new(move |result| ready_tx.send(result).is_ok());
        let (jobs, worker) = worker::spawn(path.to_path_buf(), options, ready)?;
        let info = ready_rx.recv().map_err(|_| EngineError::WorkerGone)??;
        Ok(Arc::new(EmbeddedModel {
            jobs: Some(jobs),
            worker: Some(worker),
            info,
            generated: Arc::default(),
        }))
    }

    /// [`load`](Self::load) without blocking the async runtime.
    pub async fn load_async(path: &Path, options: EngineOptions) -> Result<Arc<Self>, EngineError> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let ready: worker::Ready = Box::new(move |result| ready_tx.send(result).is_ok());
        let (jobs, worker) = worker::spawn(path.to_path_buf(), options, ready)?;
        let info = ready_rx.await.map_err(|_| EngineError::WorkerGone)??;
        Ok(Arc::new(EmbeddedModel {
            jobs: Some(jobs),
            worker: Some(worker),
            info,
            generated: Arc::default(),
        }))
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Tokens generated since the model was loaded, by every request, cancelled ones
    /// included: shows whether abandoned work really stopped.
    pub fn tokens_generated(&self) -> u64 {
        self.generated.load(Ordering::Relaxed)
    }

    /// Starts a generation; it waits its turn behind earlier ones. Dropping the stream (or
    /// calling [`GenerationStream::cancel`]) stops it within one token or one prompt batch.
    pub fn stream(&self, request: ModelRequest, options: GenerateOptions) -> GenerationStream {
        let (events_tx, events) = mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job {
            request,
            options,
            cancel: Arc::clone(&cancel),
            events: events_tx,
            submitted: std::time::Instant::now(),
            generated: Arc::clone(&self.generated),
        };
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        let mut stream = GenerationStream { events, cancel };
        if !sent {
            // The receiver is still open: report the failure through it.
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(StreamEvent::Done(Box::new(Err(EngineError::WorkerGone))));
            stream.events = rx;
        }
        stream
    }

    /// Runs one generation to the end on the calling thread, handing answer text to
    /// `on_text` as it comes (for streaming endpoints). Blocks: call it from a blocking
    /// thread, never from async code (use [`stream`](Self::stream) there).
    pub fn generate(
        &self,
        request: ModelRequest,
        options: GenerateOptions,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion, EngineError> {
        let mut stream = self.stream(request, options);
        while let Some(event) = stream.events.blocking_recv() {
            match event {
                StreamEvent::Text(text) => on_text(&text),
                StreamEvent::Done(result) => return *result,
            }
        }
        Err(EngineError::WorkerGone)
    }
}

impl Drop for EmbeddedModel {
    fn drop(&mut self) {
        // Closing the queue ends the worker after its current job, which frees the context
        // and the model.
        self.jobs.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// A generation in progress. Dropping it cancels the generation.
#[derive(Debug)]
pub struct GenerationStream {
    events: mpsc::UnboundedReceiver<StreamEvent>,
    cancel: Arc<AtomicBool>,
}

impl GenerationStream {
    /// The next event; `None` after [`StreamEvent::Done`].
    pub async fn next(&mut self) -> Option<StreamEvent> {
        self.events.recv().await
    }

    /// Asks the worker to stop; the stream then ends with [`EngineError::Cancelled`].
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for the end, ignoring the text events.
    pub async fn finish(mut self) -> Result<Completion, EngineError> {
        while let Some(event) = self.next().await {
            if let StreamEvent::Done(result) = event {
                return *result;
            }
        }
        Err(EngineError::WorkerGone)
    }
}

impl Drop for GenerationStream {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// [`ModelClient`] over a shared [`EmbeddedModel`].
#[derive(Debug)]
pub struct EmbeddedClient {
    model: Arc<EmbeddedModel>,
    /// How many times each request (by [`request_key`]) was asked.
    asked: Mutex<HashMap<u64, u32>>,
}

/// Requests remembered before the memory starts over: it only has to span one task's retries.
const ASKED_MEMORY: usize = 100_000;

impl EmbeddedClient {
    pub fn new(model: Arc<EmbeddedModel>) -> Self {
        EmbeddedClient {
            model,
            asked: Mutex::default(),
        }
    }

    pub fn model(&self) -> &Arc<EmbeddedModel> {
        &self.model
    }
}

/// How a request that was asked before is sampled: hotter than the default, with min-p
/// rather than top-k/top-p (which, for a confident model, often leaves one candidate whatever
/// the temperature), and a new seed each time.
const ASKED_AGAIN_TEMPERATURE: f32 = 0.8;
const ASKED_AGAIN_MIN_P: f32 = 0.05;

/// A request's identity for [`EmbeddedClient`]'s memory of what it was asked: the messages
/// and the offered tools.
fn request_key(request: &ModelRequest) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&request.messages)
        .unwrap_or_default()
        .hash(&mut hasher);
    for tool in &request.tools {
        tool.name.hash(&mut hasher);
    }
    hasher.finish()
}

impl ModelClient for EmbeddedClient {
    fn model_name(&self) -> &str {
        &self.model.info.name
    }

    /// Nothing here is retried: a local model has no transient network failures.
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        _on_retry: &'a (dyn Fn(&RetryNote) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(async move {
            // The same request twice means its first answer did not do (the agent went back
            // to an earlier point to try again). Near-greedy sampling with a fixed seed would
            // give that answer again, word for word: sample this one hotter, with a new seed.
            let asked_before = {
                let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
                if asked.len() >= ASKED_MEMORY {
                    asked.clear();
                }
                let times = asked.entry(request_key(request)).or_insert(0);
                *times += 1;
                *times - 1
            };
            let options = if asked_before == 0 {
                GenerateOptions::default()
            } else {
                GenerateOptions {
                    temperature: Some(ASKED_AGAIN_TEMPERATURE),
                    seed: Some(EngineOptions::default().seed.wrapping_add(asked_before)),
                    min_p: Some(ASKED_AGAIN_MIN_P),
                    ..GenerateOptions::default()
                }
            };
            // Dropping this future drops the stream, which cancels the generation.
            let completion = self.model.stream(request.clone(), options).finish().await?;
            Ok(completion.response)
        })
    }
}
