use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A task's id: lowercase hex of the creation time in milliseconds followed by 4 random hex
/// digits, so ids sort by creation time and are safe in branch names (`nightshift/<id>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// Builds an id from the creation time and 16 random bits supplied by the caller.
    pub fn from_parts(unix_millis: u64, random: u16) -> Self {
        TaskId(format!("{unix_millis:011x}{random:04x}"))
    }

    /// Parses a user-supplied id, refusing anything that could not have been generated.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = (8..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| TaskId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The branch the task's work is committed on.
    pub fn branch(&self) -> String {
        format!("nightshift/{}", self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Limits a task must stay within; checked on every turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Model turns (requests) the agent may take, verification rounds included.
    #[serde(default = "Budget::default_max_steps")]
    pub max_steps: u32,
    /// Total tokens (input + output) across all model requests.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Wall-clock limit for the whole task, in seconds.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Money the model requests may cost, in US dollars, at the provider profile's prices;
    /// checked before each request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

impl Budget {
    pub const DEFAULT_MAX_STEPS: u32 = 50;

    fn default_max_steps() -> u32 {
        Self::DEFAULT_MAX_STEPS
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_steps: Self::DEFAULT_MAX_STEPS,
            max_tokens: None,
            timeout_secs: None,
            max_cost_usd: None,
        }
    }
}

/// What a person asks for: a repository, a goal, and the checks that say when it is done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Path of the git repository (absolute once validated).
    pub repo: String,
    /// The ref the task branch starts from; `HEAD` when absent.
    #[serde(default)]
    pub base_ref: Option<String>,
    /// The goal, in plain words.
    pub goal: String,
    /// Shell commands that must all exit 0 for the task to succeed.
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default)]
    pub budget: Budget,
    /// How many times failing checks are handed back to the model before giving up.
    #[serde(default = "TaskSpec::default_max_verify_rounds")]
    pub max_verify_rounds: u32,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Hosts sandboxed commands may reach through Nightshift's proxy (`example.com`,
    /// `*.example.com`, `host:PORT`); empty means no network at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_domains: Vec<String>,
    /// Environment variables the task's commands get on top of the sandbox's allowlist. A
    /// `None` value is taken from the environment of the process running the task, so a secret
    /// passed that way is never stored with the task.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, Option<String>>,
}

impl TaskSpec {
    pub const DEFAULT_MAX_VERIFY_ROUNDS: u32 = 3;

    fn default_max_verify_rounds() -> u32 {
        Self::DEFAULT_MAX_VERIFY_ROUNDS
    }
}

/// Where a task is in its life. The final ones each map to their own process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Verifying,
    Succeeded,
    Failed,
    BudgetExhausted,
    Cancelled,
    Error,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Verifying,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::BudgetExhausted,
        TaskStatus::Cancelled,
        TaskStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Verifying => "verifying",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::BudgetExhausted => "budget_exhausted",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Error => "error",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded
                | TaskStatus::Failed
                | TaskStatus::BudgetExhausted
                | TaskStatus::Cancelled
                | TaskStatus::Error
        )
    }

    /// The exit code of `nightshift run` for a task that ended in this status.
    /// 2 is reserved for a task spec refused at the door (usage error).
    pub fn exit_code(self) -> u8 {
        match self {
            TaskStatus::Succeeded => 0,
            TaskStatus::Failed => 1,
            TaskStatus::BudgetExhausted => 3,
            TaskStatus::Cancelled => 4,
            TaskStatus::Error => 5,
            // Not final: reaching the end of a run in one of these is itself an error.
            TaskStatus::Queued | TaskStatus::Running | TaskStatus::Verifying => 5,
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status word that is not one of [`TaskStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusParseError(pub String);

impl fmt::Display for StatusParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown task status `{}`", self.0)
    }
}

impl std::error::Error for StatusParseError {}

impl FromStr for TaskStatus {
    type Err = StatusParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| StatusParseError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_round_trip_through_serde_and_from_str() {
        for status in TaskStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), status);
        }
    }

    #[test]
    fn final_statuses_have_distinct_exit_codes_and_none_is_two() {
        let finals: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        let mut codes: Vec<_> = finals.iter().map(|s| s.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), finals.len());
        assert!(!codes.contains(&2));
    }

    #[test]
    fn task_ids_parse_back_and_reject_junk() {
        let id = TaskId::from_parts(1_764_000_000_000, 0xbeef);
        assert_eq!(TaskId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.branch(), format!("nightshift/{id}"));
        assert_eq!(TaskId::parse("../etc"), None);
        assert_eq!(TaskId::parse("ABCDEF0123"), None);
    }

    #[test]
    fn spec_rejects_unknown_fields() {
        let err =
            serde_json::from_str::<TaskSpec>(r#"{"repo":"r","goal":"g","bogus":1}"#).unwrap_err();
        assert!(err.to_string().contains("bogus"));
    }
}
