//! Overhead of running `true` through `Sandbox::run` (entering the task's bubblewrap sandbox,
//! cgroup, limits, capture) over a plain spawn of `/bin/true`, measured side by side in one
//! run (interleaved, so both see the same machine load). Target: median overhead ≤ 5 ms. Also
//! what building a task's sandbox costs once (`Sandbox::new`, which runs bubblewrap).
//!
//! `cargo bench -p nightshift-sandbox --bench sandbox_overhead`

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark binary: its output is the point, and setup failures should panic"
)]

use std::time::{Duration, Instant};

use nightshift_sandbox::{Limits, Sandbox, SandboxMode, cgroup_support};

const ITERATIONS: usize = 200;
/// Sandboxes built (one per task in real use).
const BUILDS: usize = 40;

#[expect(
    clippy::disallowed_methods,
    reason = "the baseline is a plain spawn, outside the sandbox on purpose"
)]
fn plain_true() -> Duration {
    let started = Instant::now();
    let status = std::process::Command::new("/bin/true").status().unwrap();
    assert!(status.success());
    started.elapsed()
}

struct Stats {
    min: Duration,
    median: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats {
        min: samples[0],
        median: samples[samples.len() / 2],
        max: samples[samples.len() - 1],
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(dir.path(), SandboxMode::Bwrap).unwrap();
    // Same path without bubblewrap: what the crate itself (cgroup, rlimits, pipe, wait)
    // adds, apart from the namespaces and mounts.
    let unisolated = Sandbox::new(dir.path(), SandboxMode::None).unwrap();
    let limits = Limits {
        timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let run_true = |sandbox: &Sandbox| {
        runtime.block_on(async {
            let started = Instant::now();
            let out = sandbox.run("true", &limits).await.unwrap();
            assert!(out.success());
            started.elapsed()
        })
    };
    // Warm up caches (binaries, cgroup parents) before measuring.
    for _ in 0..10 {
        plain_true();
        run_true(&sandbox);
        run_true(&unisolated);
    }
    let mut plain = Vec::with_capacity(ITERATIONS);
    let mut sandboxed = Vec::with_capacity(ITERATIONS);
    let mut bare = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        plain.push(plain_true());
        sandboxed.push(run_true(&sandbox));
        bare.push(run_true(&unisolated));
    }
    let mut builds = Vec::with_capacity(BUILDS);
    for _ in 0..BUILDS {
        let started = Instant::now();
        let built = Sandbox::new(dir.path(), SandboxMode::Bwrap).unwrap();
        builds.push(started.elapsed());
        drop(built);
    }
    let (p, s, n, b) = (stats(plain), stats(sandboxed), stats(bare), stats(builds));
    println!("sandbox_overhead: {ITERATIONS} iterations each, interleaved");
    println!("limits: {}", cgroup_support().detail);
    println!("{:<24} {:>10} {:>10} {:>10}", "", "min", "median", "max");
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "plain spawn of true",
        ms(p.min),
        ms(p.median),
        ms(p.max)
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "Sandbox::run(\"true\")",
        ms(s.min),
        ms(s.median),
        ms(s.max)
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "  same, --sandbox none",
        ms(n.min),
        ms(n.median),
        ms(n.max)
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10}",
        "Sandbox::new (per task)",
        ms(b.min),
        ms(b.median),
        ms(b.max)
    );
    let overhead = s.median.saturating_sub(p.median);
    println!(
        "median overhead: {} (target ≤ 5 ms: {})",
        ms(overhead),
        if overhead <= Duration::from_millis(5) {
            "met"
        } else {
            "NOT met"
        }
    );
}
