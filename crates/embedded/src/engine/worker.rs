//! The worker thread: owns the llama.cpp model and context, runs one job at a time, and keeps
//! the KV cache (and the tokens in it) from one job to the next.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use nightshift_model::{ModelRequest, ModelResponse};
use nightshift_protocol::{Message, ToolCall, Usage};

use super::grammar::{self, CALL_OPEN, Start};
use super::template::{ChatTemplate, python_json};
use super::text::{Utf8Buffer, marker_prefix_len};
use super::{
    Completion, EngineError, EngineOptions, GenerationStats, Job, ModelInfo, StreamEvent,
    ToolCallMode, cpu,
};

/// Room an answer needs at least: a prompt that leaves less is refused as too long, so the
/// caller trims the conversation instead of getting a truncated answer.
const MIN_ANSWER_ROOM: usize = 256;

/// How many of the most likely tokens the grammar is tried on before the whole vocabulary.
const GRAMMAR_FIRST_TRY: i32 = 64;

/// Told whether loading worked; returns false when nobody waits any more (then the worker
/// quits).
pub(super) type Ready = Box<dyn FnOnce(Result<ModelInfo, EngineError>) -> bool + Send>;

/// llama.cpp's global state: initialised once per process, never freed.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor it loads; keep that in `tracing` (debug).
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Starts the worker thread, which loads the model and reports on `ready`.
pub(super) fn spawn(
    path: PathBuf,
    options: EngineOptions,
    ready: Ready,
) -> Result<(std::sync::mpsc::Sender<Job>, std::thread::JoinHandle<()>), EngineError> {
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
    let thread_path = path.clone();
    let handle = std::thread::Builder::new()
        .name("nightshift-llama".into())
        .spawn(move || {
            let loaded = backend()
                .map_err(|detail| EngineError::Load {
                    path: thread_path.clone(),
                    detail,
                })
                .and_then(|backend| load_model(backend, &thread_path).map(|m| (backend, m)));
            let (backend, model) = match loaded {
                Ok(loaded) => loaded,
                Err(error) => {
                    ready(Err(error));
                    return;
                }
            };
            let mut worker = match Worker::new(backend, &model, &thread_path, &options) {
                Ok(worker) => worker,
                Err(error) => {
                    ready(Err(error));
                    return;
                }
            };
            if !ready(Ok(worker.info.clone())) {
                return;
            }
            while let Ok(job) = jobs_rx.recv() {
                worker.run(job);
            }
        })
        .map_err(|e| EngineError::Load {
            path,
            detail: format!("cannot start the model's thread: {e}"),
        })?;
    Ok((jobs_tx, handle))
}

fn load_model(backend: &LlamaBackend, path: &Path) -> Result<LlamaModel, EngineError> {
    let load_error = |detail: String| EngineError::Load {
        path: path.to_path_buf(),
        detail,
    };
    if !path.is_file() {
        return Err(load_error("no such file".into()));
    }
    LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| load_error(format!("llama.cpp refused it ({e})")))
}

struct Worker<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// The tokens whose keys and values are in the KV cache, position `i` at index `i`.
    cached: Vec<LlamaToken>,
    template: ChatTemplate,
    options: EngineOptions,
    info: ModelInfo,
    /// The single token that opens a tool call, when the vocabulary has one.
    call_open_token: Option<LlamaToken>,
    /// llama.cpp's grammar for a tool set's schema, by schema text.
    schema_grammars: HashMap<String, String>,
    /// Tool call ids: `call_<load time>_<n>`, unique within and across tasks.
    id_prefix: String,
    next_id: u64,
    /// Grammar rejections in the current generation.
    resamples: usize,
}

/// How a generation ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Finish {
    Stop,
    Length,
}

impl<'m> Worker<'m> {
    fn new(
        backend: &LlamaBackend,
        model: &'m LlamaModel,
        path: &Path,
        options: &EngineOptions,
    ) -> Result<Self, EngineError> {
        let threads = options.threads.unwrap_or_else(cpu::physical_cores).max(1);
        let context_tokens = options
            .context_tokens
            .clamp(MIN_ANSWER_ROOM as u32 * 2, model.n_ctx_train().max(512));
        let batch_tokens = options.batch_tokens.clamp(1, context_tokens);
        let threads_i32 = i32::try_from(threads).unwrap_or(i32::MAX);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context_tokens))
            .with_n_batch(batch_tokens)
            .with_n_ubatch(batch_tokens)
            .with_n_threads(threads_i32)
            .with_n_threads_batch(threads_i32);
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| EngineError::Load {
                path: path.to_path_buf(),
                detail: format!("cannot allocate a {context_tokens}-token context ({e})"),
            })?;

        let source = model
            .chat_template(None)
            .map_err(|e| EngineError::Template {
                detail: format!("the model has none ({e})"),
            })?
            .to_string()
            .map_err(|e| EngineError::Template {
                detail: e.to_string(),
            })?;
        let vocab = model.vocab();
        let piece =
            |token| String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned();
        let template = ChatTemplate::new(&source, &piece(vocab.bos()), &piece(vocab.eos()))
            .map_err(|detail| EngineError::Template { detail })?;
        let call_open_token = match vocab.tokenize(CALL_OPEN.as_bytes(), false, true).as_slice() {
            [token] => Some(*token),
            _ => None,
        };

        let name = path.file_stem().map_or_else(
            || "embedded".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        );
        let info = ModelInfo {
            name,
            path: path.to_path_buf(),
            context_tokens: ctx.n_ctx(),
            threads,
            parameters: model.n_params(),
            trained_context_tokens: model.n_ctx_train(),
        };
        let id_prefix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 0x1_0000_0000);
        Ok(Worker {
            model,
            ctx,
            batch: LlamaBatch::new(batch_tokens as usize, 1),
            cached: Vec::new(),
            template,
            options: options.clone(),
            info,
            call_open_token,
            schema_grammars: HashMap::new(),
            id_prefix: format!("{id_prefix:x}"),
            next_id: 0,
            resamples: 0,
        })
    }

    fn run(&mut self, job: Job) {
        let queued = job.submitted.elapsed();
        let result = self.generate(&job).map(|mut completion| {
            completion.stats.queued = queued;
            completion
        });
        let _ = job.events.send(StreamEvent::Done(Box::new(result)));
    }

    fn generate(&mut self, job: &Job) -> Result<Completion, EngineError> {
        let cancelled = || job.cancel.load(Ordering::Relaxed);
        if cancelled() {
            return Err(EngineError::Cancelled);
        }
        let request = &job.request;
        let prompt = self
            .template
            .render(&request.messages, &request.tools)
            .map_err(|detail| EngineError::Template { detail })?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), false, true);
        let max_output_tokens = job
            .options
            .max_output_tokens
            .unwrap_or(self.options.max_output_tokens)
            .max(1) as usize;
        let context_tokens = self.ctx.n_ctx() as usize;
        let reserve = max_output_tokens.min(MIN_ANSWER_ROOM);
        if tokens.is_empty() || tokens.len() + reserve > context_tokens {
            return Err(EngineError::ContextOverflow {
                prompt_tokens: tokens.len(),
                reserve,
                context_tokens,
            });
        }

        // Required calls start with the template's own `<tool_call>` token, put there rather
        // than sampled: the grammar would also accept it spelled out in pieces (`<`, `tool`,
        // ...), which the model never saw and which would not match the next prompt's tokens.
        let mode = job.options.tool_calls.unwrap_or(self.options.tool_calls);
        let required = !request.tools.is_empty() && mode == ToolCallMode::Required;
        let mut forced = self.call_open_token.filter(|_| required);
        let mut grammar = if required && forced.is_none() {
            Some(self.grammar(request, Start::Answer)?)
        } else {
            None
        };

        self.resamples = 0;
        let prefill_start = Instant::now();
        let reused = self.reuse_prefix(&tokens);
        let mut logits_index = self.prefill(&tokens, reused, job)?;
        let prefill = prefill_start.elapsed();

        let decode_start = Instant::now();
        let mut chain = self.sampler_chain(
            job.options.temperature.unwrap_or(self.options.temperature),
            job.options.seed.unwrap_or(self.options.seed),
            job.options.min_p,
        );
        let mut in_call = grammar.is_some();
        let mut utf8 = Utf8Buffer::default();
        let mut content = String::new();
        let mut emitted = 0;
        let mut call_text = String::new();
        let mut piece = Vec::new();
        let mut completion_tokens = 0;
        let mut sampling = std::time::Duration::ZERO;
        let finish = loop {
            if cancelled() {
                return Err(EngineError::Cancelled);
            }
            let sample_start = Instant::now();
            let token = match forced.take() {
                Some(token) => token,
                None => self.sample(&mut chain, grammar.as_mut(), logits_index)?,
            };
            sampling += sample_start.elapsed();
            if self.model.vocab().is_eog(token) {
                break Finish::Stop;
            }
            completion_tokens += 1;
            job.generated.fetch_add(1, Ordering::Relaxed);
            piece.clear();
            self.model
                .vocab()
                .token_to_piece_into(token, &mut piece, false, None);

            if in_call {
                call_text.push_str(&utf8.push(&piece));
            } else if Some(token) == self.call_open_token && !request.tools.is_empty() {
                content.push_str(&utf8.finish());
                grammar = Some(self.grammar(request, Start::AfterOpen)?);
                in_call = true;
            } else {
                content.push_str(&utf8.push(&piece));
                if !request.tools.is_empty() && content.ends_with(CALL_OPEN) {
                    // The model spelled the marker out in several tokens.
                    content.truncate(content.len() - CALL_OPEN.len());
                    grammar = Some(self.grammar(request, Start::AfterOpen)?);
                    in_call = true;
                }
                let held = if request.tools.is_empty() {
                    0
                } else {
                    marker_prefix_len(&content, CALL_OPEN)
                };
                let safe = content.len() - held;
                if safe > emitted {
                    let _ = job
                        .events
                        .send(StreamEvent::Text(content[emitted..safe].to_owned()));
                    emitted = safe;
                }
            }

            if completion_tokens >= max_output_tokens || self.cached.len() + 1 >= context_tokens {
                break Finish::Length;
            }
            logits_index = self.decode_one(token)?;
        };
        let rest = utf8.finish();
        if in_call {
            call_text.push_str(&rest);
        } else {
            content.push_str(&rest);
            if content.len() > emitted {
                let _ = job
                    .events
                    .send(StreamEvent::Text(content[emitted..].to_owned()));
            }
        }
        let decode = decode_start.elapsed();

        let tool_calls: Vec<ToolCall> = grammar::parse_calls(&call_text)
            .into_iter()
            .map(|(name, arguments)| {
                self.next_id += 1;
                ToolCall {
                    id: format!("call_{}_{}", self.id_prefix, self.next_id),
                    name,
                    arguments: python_json(&arguments),
                }
            })
            .collect();
        let finish_reason = match finish {
            Finish::Length => "length",
            Finish::Stop if !tool_calls.is_empty() => "tool_calls",
            Finish::Stop => "stop",
        };
        let stats = GenerationStats {
            prompt_tokens: tokens.len(),
            reused_tokens: reused,
            prefilled_tokens: tokens.len() - reused,
            completion_tokens,
            grammar_resamples: self.resamples,
            queued: std::time::Duration::ZERO,
            prefill,
            decode,
            sampling,
        };
        Ok(Completion {
            response: ModelResponse {
                message: Message::assistant(content.trim(), tool_calls),
                usage: Usage {
                    input_tokens: tokens.len() as u64,
                    output_tokens: completion_tokens as u64,
                    cached_tokens: reused as u64,
                },
                finish_reason: Some(finish_reason.to_owned()),
                skipped_lines: Vec::new(),
            },
            stats,
        })
    }

    /// Keeps the KV cache entries of the longest common prefix of the cached tokens and
    /// `tokens`, drops the rest, and returns how many were kept. At least the last prompt
    /// token is always computed again: its logits start the answer.
    fn reuse_prefix(&mut self, tokens: &[LlamaToken]) -> usize {
        let common = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len() - 1);
        if common < self.cached.len() {
            let removed = u32::try_from(common)
                .ok()
                .and_then(|p0| self.ctx.clear_kv_cache_seq(Some(0), Some(p0), None).ok())
                .unwrap_or(false);
            if !removed {
                self.ctx.clear_kv_cache();
                self.cached.clear();
                return 0;
            }
            self.cached.truncate(common);
        }
        common
    }

    /// Computes `tokens[start..]` in batches; returns the batch index of the last token's
    /// logits.
    fn prefill(
        &mut self,
        tokens: &[LlamaToken],
        start: usize,
        job: &Job,
    ) -> Result<i32, EngineError> {
        let batch_tokens = self.ctx.n_batch() as usize;
        let mut position = start;
        while position < tokens.len() {
            if job.cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Cancelled);
            }
            let end = (position + batch_tokens).min(tokens.len());
            self.batch.clear();
            for (i, token) in tokens[position..end].iter().enumerate() {
                let at = position + i;
                self.batch
                    .add(*token, at as i32, &[0], at + 1 == tokens.len())
                    .map_err(|e| llama_error("filling a batch", e))?;
            }
            self.decode_batch("computing the prompt")?;
            self.cached.extend_from_slice(&tokens[position..end]);
            position = end;
        }
        Ok(self.batch.n_tokens() - 1)
    }

    fn decode_one(&mut self, token: LlamaToken) -> Result<i32, EngineError> {
        self.batch.clear();
        let position = self.cached.len() as i32;
        self.batch
            .add(token, position, &[0], true)
            .map_err(|e| llama_error("filling a batch", e))?;
        self.decode_batch("generating")?;
        self.cached.push(token);
        Ok(0)
    }

    fn decode_batch(&mut self, during: &'static str) -> Result<(), EngineError> {
        self.ctx.decode(&mut self.batch).map_err(|e| {
            // What the cache holds is unknown now: start from scratch next time.
            self.ctx.clear_kv_cache();
            self.cached.clear();
            llama_error(during, e)
        })
    }

    fn sampler_chain(&self, temperature: f32, seed: u32, min_p: Option<f32>) -> LlamaSampler {
        if temperature <= 0.0 {
            return LlamaSampler::greedy();
        }
        if let Some(min_p) = min_p {
            return LlamaSampler::chain_simple([
                LlamaSampler::min_p(min_p, 1),
                LlamaSampler::temp(temperature),
                LlamaSampler::dist(seed),
            ]);
        }
        LlamaSampler::chain_simple([
            LlamaSampler::top_k(self.options.top_k.max(1)),
            LlamaSampler::top_p(self.options.top_p, 1),
            LlamaSampler::temp(temperature),
            LlamaSampler::dist(seed),
        ])
    }

    /// Samples the next token. With a grammar, the token is sampled freely first and checked
    /// against the grammar; only when the grammar rejects it are the candidates filtered by
    /// the grammar and sampled again: the 64 most likely first, the whole vocabulary (150 000
    /// tokens for Qwen, tens of milliseconds through the grammar) only if none of those fits.
    /// A model that follows the format pays almost nothing for the grammar.
    fn sample(
        &mut self,
        chain: &mut LlamaSampler,
        grammar: Option<&mut LlamaSampler>,
        index: i32,
    ) -> Result<LlamaToken, EngineError> {
        let token = chain.sample(&self.ctx, index);
        let Some(grammar) = grammar else {
            return Ok(token);
        };
        let mut single =
            LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 0.0, 0.0)], false);
        grammar.apply(&mut single);
        let allowed = single.data.first().is_some_and(|d| d.logit().is_finite());
        let token = if allowed {
            token
        } else {
            self.resamples += 1;
            // The grammar on the most likely tokens first (cheap); on the whole vocabulary
            // only when it allows none of them.
            let mut candidates = self.ctx.token_data_array_ith(index);
            LlamaSampler::top_k(GRAMMAR_FIRST_TRY).apply(&mut candidates);
            keep_allowed(grammar, &mut candidates);
            if candidates.data.is_empty() {
                candidates = self.ctx.token_data_array_ith(index);
                keep_allowed(grammar, &mut candidates);
            }
            chain.apply(&mut candidates);
            candidates.selected_token().unwrap_or(token)
        };
        // A token the grammar cannot take would leave it without states, and llama.cpp aborts
        // the process on the next use; refuse it here instead.
        grammar.try_accept(token).map_err(|e| {
            let piece = self.model.vocab().token_to_piece(token, true, None);
            llama_error(
                "constraining a tool call",
                format!(
                    "the grammar refused token {:?} ({e})",
                    String::from_utf8_lossy(&piece)
                ),
            )
        })?;
        Ok(token)
    }

    /// The tool-call grammar for the request's tools, starting at `start`.
    fn grammar(
        &mut self,
        request: &ModelRequest,
        start: Start,
    ) -> Result<LlamaSampler, EngineError> {
        let schema = grammar::calls_schema(&request.tools);
        let schema_grammar = match self.schema_grammars.get(&schema) {
            Some(found) => found.clone(),
            None => {
                let converted = llama_cpp_2::json_schema_to_grammar(&schema).map_err(|e| {
                    EngineError::Template {
                        detail: format!(
                            "the offered tools' schemas cannot be turned into a grammar: {e}"
                        ),
                    }
                })?;
                self.schema_grammars.insert(schema, converted.clone());
                converted
            }
        };
        let text = grammar::frame(&schema_grammar, start);
        LlamaSampler::grammar(self.model, &text, "root").map_err(|e| EngineError::Template {
            detail: format!("llama.cpp refused the tool-call grammar: {e}"),
        })
    }
}

/// Applies the grammar and drops what it rejects. Dropping matters: the array may be
/// marked sorted from an earlier top-k, and a later top-k trusts that mark and would keep
/// the first (now rejected) entries.
fn keep_allowed(grammar: &mut LlamaSampler, candidates: &mut LlamaTokenDataArray) {
    grammar.apply(candidates);
    candidates.data.retain(|d| d.logit().is_finite());
    candidates.selected = None;
    candidates.sorted = false;
}

fn llama_error(during: &'static str, error: impl std::fmt::Display) -> EngineError {
    EngineError::Llama {
        during,
        detail: error.to_string(),
    }
}
