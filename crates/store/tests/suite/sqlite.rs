//! What only the SQLite backend does: files, locks, corruption, upgrades of old files.

use std::time::Duration;

use nightshift_protocol::{EventKind, TaskStatus};
use nightshift_store::{SqliteStore, Store, StoreError, TaskFilter};

use super::{id, spec};

#[test]
fn open_creates_missing_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/nightshift.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.path(), path);
    assert!(path.exists());
}

#[test]
fn open_takes_anything_but_a_postgres_url_for_a_sqlite_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postgres:not-a-url.db");
    let store = nightshift_store::open(path.to_str().unwrap()).unwrap();
    store.insert_task(&id(1), &spec("g")).unwrap();
    assert!(path.exists());
    assert!(format!("{store:?}").contains("SqliteStore"));
}

#[test]
fn an_in_memory_store_honours_the_whole_contract_surface() {
    let store = SqliteStore::open_in_memory().unwrap();
    store.insert_task(&id(1), &spec("g")).unwrap();
    assert_eq!(
        store
            .claim_next("w", Duration::from_secs(5))
            .unwrap()
            .unwrap()
            .id,
        id(1)
    );
    let token = store.create_token("t").unwrap();
    assert!(store.verify_token(&token).unwrap());
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightshift.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("hint:"), "{message}");
}

#[test]
fn a_database_held_locked_by_another_writer_fails_with_locked_and_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightshift.db");
    let store = SqliteStore::open(&path).unwrap();
    store.insert_task(&id(1), &spec("g")).unwrap();
    store.set_busy_timeout(Duration::from_millis(50)).unwrap();

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store
        .append_event(
            &id(1),
            EventKind::Notice {
                message: "x".into(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    // A claim waits for the same lock, and gives up the same way rather than hand out a task
    // it could not lease.
    let err = store.claim_next("w", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    // Readers are not blocked by a writer in WAL mode.
    assert!(store.task(&id(1)).unwrap().is_some());

    other.execute_batch("ROLLBACK").unwrap();
    let event = store
        .append_event(
            &id(1),
            EventKind::Notice {
                message: "y".into(),
            },
        )
        .unwrap();
    assert_eq!(event.seq, 1);
}

/// The first schema, exactly as shipped before the queue existed.
const SCHEMA_1: &str = "
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY NOT NULL, spec_json TEXT NOT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, result_json TEXT);
    CREATE INDEX tasks_by_created_at ON tasks (created_at);
    CREATE TABLE events (
        task_id TEXT NOT NULL REFERENCES tasks (id), seq INTEGER NOT NULL, ts TEXT NOT NULL,
        type TEXT NOT NULL, body_json TEXT NOT NULL, PRIMARY KEY (task_id, seq)) WITHOUT ROWID;
    CREATE TABLE schema_version (version INTEGER NOT NULL);
    INSERT INTO schema_version (version) VALUES (1);";

#[test]
fn a_database_from_before_the_queue_is_upgraded_with_its_tasks_filterable_and_claimable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightshift.db");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(SCHEMA_1).unwrap();
        let old_spec = nightshift_protocol::TaskSpec {
            repo: "/old/repo".into(),
            labels: vec!["legacy".into(), "bug".into()],
            ..spec("old")
        };
        raw.execute(
            "INSERT INTO tasks VALUES (?1, ?2, 'running', '2026-01-01T00:00:00.000Z',
             '2026-01-01T00:00:00.000Z', NULL)",
            rusqlite::params![id(1).as_str(), serde_json::to_string(&old_spec).unwrap()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let listed = store
        .list_tasks_filtered(&TaskFilter {
            repo: Some("/old/repo".into()),
            label: Some("legacy".into()),
            ..TaskFilter::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, TaskStatus::Running);
    // A task left running by an old version has no lease: a worker picks it up.
    let claimed = store.claim_next("w", Duration::from_secs(5)).unwrap();
    assert_eq!(claimed.unwrap().id, id(1));
}
