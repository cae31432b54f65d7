//! Validation at the door: a bad spec is refused with a message that names the problem and the
//! fix, before anything is created.

use std::path::Path;

use nightshift_git::{GitError, Repo};
use nightshift_protocol::TaskSpec;

/// A spec that passed [`validate`]: its repository exists and its base ref resolved.
#[derive(Debug)]
pub struct ValidSpec {
    /// The spec with `repo` made absolute (the repository's top level).
    pub spec: TaskSpec,
    pub repo: Repo,
    /// The commit the task branch starts from.
    pub base_commit: String,
}

/// Why a spec was refused. Each message ends with a `hint:` line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "the goal is empty\nhint: say what to do in plain words, e.g. nightshift run \"Fix the failing test in src/parser.rs\""
    )]
    EmptyGoal,
    #[error(
        "check {index} is empty\nhint: every --check must be a shell command that exits 0 when the work is done, e.g. --check \"cargo test\""
    )]
    EmptyCheck { index: usize },
    #[error("--max-steps must be at least 1\nhint: leave it out to use the default (50)")]
    ZeroSteps,
    #[error("--max-verify-rounds must be at least 1\nhint: leave it out to use the default (3)")]
    ZeroVerifyRounds,
    #[error("--max-tokens must be at least 1\nhint: leave it out for no token limit")]
    ZeroTokens,
    #[error(
        "--timeout must be longer than zero\nhint: e.g. --timeout 30m, or leave it out for no wall-clock limit"
    )]
    ZeroTimeout,
    #[error(transparent)]
    Repo(#[from] GitError),
    #[error(transparent)]
    Network(#[from] nightshift_sandbox::NetworkPolicyError),
    #[error(
        "`{name}` is not a valid environment variable name\nhint: use letters, digits and _, not starting with a digit, e.g. --env RUST_LOG=debug"
    )]
    BadEnvName { name: String },
    #[error(
        "--env {name} passes {name} through from this environment, but it is not set here\nhint: export {name} first, or give a value with --env {name}=VALUE"
    )]
    EnvNotSet { name: String },
}

/// Checks a spec before anything is created for it.
pub fn validate(mut spec: TaskSpec) -> Result<ValidSpec, SpecError> {
    if spec.goal.trim().is_empty() {
        return Err(SpecError::EmptyGoal);
    }
    if let Some(index) = spec.checks.iter().position(|c| c.trim().is_empty()) {
        return Err(SpecError::EmptyCheck { index: index + 1 });
    }
    if spec.budget.max_steps == 0 {
        return Err(SpecError::ZeroSteps);
    }
    if spec.max_verify_rounds == 0 {
        return Err(SpecError::ZeroVerifyRounds);
    }
    if spec.budget.max_tokens == Some(0) {
        return Err(SpecError::ZeroTokens);
    }
    if spec.budget.timeout_secs == Some(0) {
        return Err(SpecError::ZeroTimeout);
    }
    for (name, value) in &spec.env {
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(SpecError::BadEnvName { name: name.clone() });
        }
        if value.is_none() && std::env::var_os(name).is_none() {
            return Err(SpecError::EnvNotSet { name: name.clone() });
        }
    }
    let allowlist = nightshift_sandbox::NetworkPolicy {
        allow_domains: spec.allow_domains.clone(),
        ..Default::default()
    };
    allowlist.validate()?;
    let repo = Repo::open(Path::new(&spec.repo))?;
    let reference = spec.base_ref.clone().unwrap_or_else(|| "HEAD".to_owned());
    let base_commit = repo.resolve_commit(&reference)?;
    spec.repo = repo.path().display().to_string();
    Ok(ValidSpec {
        spec,
        repo,
        base_commit,
    })
}
