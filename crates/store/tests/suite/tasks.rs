use nightshift_protocol::{EventKind, TaskStatus};
use nightshift_store::{Store, StoreError};

use super::{id, spec};

#[test]
fn inserted_task_reads_back_queued_with_its_spec() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("nightshift.db")).unwrap();
    store.insert_task(&id(1), &spec("fix the bug")).unwrap();

    let record = store.task(&id(1)).unwrap().unwrap();
    assert_eq!(record.id, id(1));
    assert_eq!(record.spec, spec("fix the bug"));
    assert_eq!(record.status, TaskStatus::Queued);
    assert_eq!(record.result, None);
    assert_eq!(record.created_at, record.updated_at);
    assert!(humantime::parse_rfc3339(&record.created_at).is_ok());
    assert_eq!(store.task(&id(2)).unwrap(), None);
}

#[test]
fn inserting_the_same_id_twice_is_refused_and_keeps_the_first() {
    let store = Store::open_in_memory().unwrap();
    store.insert_task(&id(1), &spec("first")).unwrap();
    let err = store.insert_task(&id(1), &spec("second")).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateTask { .. }), "{err}");
    assert_eq!(store.task(&id(1)).unwrap().unwrap().spec.goal, "first");
}

#[test]
fn open_creates_missing_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/nightshift.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.path(), path);
    assert!(path.exists());
}

#[test]
fn list_tasks_is_newest_first_and_limited() {
    let store = Store::open_in_memory().unwrap();
    for n in 0..5 {
        store
            .insert_task(&id(n), &spec(&format!("goal {n}")))
            .unwrap();
    }
    let listed: Vec<_> = store
        .list_tasks(3)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, vec![id(4), id(3), id(2)]);
    assert_eq!(store.list_tasks(100).unwrap().len(), 5);
    assert!(store.list_tasks(0).unwrap().is_empty());
}

#[test]
fn reopening_keeps_tasks_events_statuses_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightshift.db");
    let result = super::events::result(id(1), TaskStatus::Failed);
    {
        let store = Store::open(&path).unwrap();
        store.insert_task(&id(1), &spec("durable")).unwrap();
        store
            .append_event(
                &id(1),
                EventKind::TaskCreated {
                    spec: spec("durable"),
                },
            )
            .unwrap();
        store
            .append_event(
                &id(1),
                EventKind::TaskFinished {
                    result: result.clone(),
                },
            )
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let record = store.task(&id(1)).unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert_eq!(record.result, Some(result));
    let events = store.events(&id(1), 0).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].kind,
        EventKind::TaskCreated {
            spec: spec("durable")
        }
    );
    // Sequence numbers continue after a reopen rather than restarting.
    let next = store
        .append_event(
            &id(1),
            EventKind::Notice {
                message: "again".into(),
            },
        )
        .unwrap();
    assert_eq!(next.seq, 3);
}
