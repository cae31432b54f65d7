use std::time::Duration;

use nightshift_protocol::EventKind;
use nightshift_store::{Store, StoreError};

use super::{id, spec};

#[test]
fn appending_to_an_unknown_task_is_refused_and_writes_nothing() {
    let store = Store::open_in_memory().unwrap();
    let err = store
        .append_event(
            &id(9),
            EventKind::Notice {
                message: "x".into(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownTask { id: got } if *got == id(9)),
        "{err}"
    );
    assert!(err.to_string().contains(id(9).as_str()));
    assert!(err.to_string().contains("hint:"));
    // Reading events of an unknown task is an error too, not an empty stream.
    assert!(matches!(
        store.events(&id(9), 0),
        Err(StoreError::UnknownTask { .. })
    ));
    // The task appearing later starts at seq 1: the refused append left nothing behind.
    store.insert_task(&id(9), &spec("g")).unwrap();
    let event = store
        .append_event(
            &id(9),
            EventKind::Notice {
                message: "y".into(),
            },
        )
        .unwrap();
    assert_eq!(event.seq, 1);
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightshift.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("hint:"), "{message}");
}

#[test]
fn a_database_held_locked_by_another_writer_fails_with_locked_and_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightshift.db");
    let store = Store::open(&path).unwrap();
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

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightshift.db");
    drop(Store::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE schema_version SET version = 999", [])
        .unwrap();
    drop(raw);
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade nightshift"));
}

#[test]
fn the_database_refuses_to_rewrite_or_delete_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightshift.db");
    let store = Store::open(&path).unwrap();
    store.insert_task(&id(1), &spec("g")).unwrap();
    store
        .append_event(
            &id(1),
            EventKind::Notice {
                message: "x".into(),
            },
        )
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let update = raw.execute("UPDATE events SET ts = 'never'", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = raw.execute("DELETE FROM events", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(store.events(&id(1), 0).unwrap().len(), 1);
}
