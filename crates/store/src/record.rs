//! What both backends share: the task record, encoding specs and events for storage, times,
//! and API token generation and hashing.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nightshift_protocol::{EventKind, TaskId, TaskResult, TaskSpec, TaskStatus};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// A task as stored: its spec, where it is now, and its result once finished.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    pub id: TaskId,
    pub spec: TaskSpec,
    pub status: TaskStatus,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
    /// RFC 3339 UTC with milliseconds; the time of the last event appended.
    pub updated_at: String,
    /// Set by the `task_finished` event.
    pub result: Option<TaskResult>,
}

/// A `tasks` row before its JSON and status columns are parsed.
pub(crate) struct RawTask {
    pub(crate) id: String,
    pub(crate) spec_json: String,
    pub(crate) status: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) result_json: Option<String>,
}

impl RawTask {
    /// `location` is the database's path or (password-free) URL, for error messages.
    pub(crate) fn decode(self, location: &Path) -> Result<TaskRecord, StoreError> {
        let id = TaskId::parse(&self.id).ok_or_else(|| StoreError::Decode {
            path: location.to_path_buf(),
            what: format!("task id `{}`", self.id),
            source: "not a valid task id".into(),
        })?;
        let spec = serde_json::from_str(&self.spec_json)
            .map_err(|e| StoreError::decode(location, format!("spec of task {id}"), e))?;
        let status = self
            .status
            .parse()
            .map_err(|e| StoreError::decode(location, format!("status of task {id}"), e))?;
        let result = self
            .result_json
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| StoreError::decode(location, format!("result of task {id}"), e))?;
        Ok(TaskRecord {
            id,
            spec,
            status,
            created_at: self.created_at,
            updated_at: self.updated_at,
            result,
        })
    }
}

/// The columns `SELECT`ed for a [`RawTask`], in its field order.
pub(crate) const TASK_COLUMNS: &str = "id, spec_json, status, created_at, updated_at, result_json";

pub(crate) fn encode_spec(spec: &TaskSpec) -> Result<String, StoreError> {
    serde_json::to_string(spec).map_err(|source| StoreError::Encode {
        what: "the task spec",
        source,
    })
}

/// An event ready to be written, and what it changes on its task's row.
pub(crate) struct EncodedEvent {
    pub(crate) kind_name: String,
    pub(crate) body_json: String,
    /// The status the task moves to, if the event moves it.
    pub(crate) status: Option<&'static str>,
    /// The result the event carries, if it finishes the task.
    pub(crate) result_json: Option<String>,
}

pub(crate) fn encode_event(kind: &EventKind) -> Result<EncodedEvent, StoreError> {
    let body = serde_json::to_value(kind).map_err(|source| StoreError::Encode {
        what: "the event",
        source,
    })?;
    // EventKind is an internally tagged enum, so its JSON always carries a string `type`.
    let kind_name = body
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("unknown")
        .to_owned();
    let (status, result_json) = match kind {
        // A task becomes final only with its result (`task_finished`, recorded right after):
        // otherwise a reader between the two writes sees "succeeded" with no branch.
        EventKind::StateChanged { to, .. } if !to.is_final() => (Some(to.as_str()), None),
        EventKind::TaskFinished { result } => {
            let json = serde_json::to_string(result).map_err(|source| StoreError::Encode {
                what: "the task result",
                source,
            })?;
            (Some(result.status.as_str()), Some(json))
        }
        _ => (None, None),
    };
    Ok(EncodedEvent {
        kind_name,
        body_json: body.to_string(),
        status,
        result_json,
    })
}

/// The statuses a task can still be claimed in, as stored.
pub(crate) fn unfinished_statuses() -> Vec<&'static str> {
    TaskStatus::ALL
        .into_iter()
        .filter(|status| !status.is_final())
        .map(TaskStatus::as_str)
        .collect()
}

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T12:00:00.000Z`.
pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Milliseconds since the Unix epoch, for lease expiry in the embedded database.
pub(crate) fn now_millis() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    millis(since_epoch)
}

/// A duration in whole milliseconds, saturating instead of overflowing.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// How API tokens start, so a leaked one is recognisable (e.g. by secret scanners).
const TOKEN_PREFIX: &str = "nst_";

/// A new API token (256 random bits) and the hash to store for it.
pub(crate) fn new_token() -> Result<(String, String), StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random {
        detail: e.to_string(),
    })?;
    let token = format!("{TOKEN_PREFIX}{}", hex(&bytes));
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// The SHA-256 of a token, in hex: what the database keeps instead of the token.
pub(crate) fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_to_their_stored_hash() {
        let (a, hash_a) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("nst_") && a.len() == 4 + 64, "{a}");
        assert_eq!(hash_token(&a), hash_a);
        assert_ne!(hash_a, a);
        // The SHA-256 of "abc", a published test vector.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_non_final_statuses_are_claimable() {
        assert_eq!(unfinished_statuses(), ["queued", "running", "verifying"]);
    }
}
