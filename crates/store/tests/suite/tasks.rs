use nightshift_protocol::{EventKind, TaskStatus};
use nightshift_store::StoreError;

use super::backend::Backend;
use super::{id, spec};

contract!(
    inserted_task_reads_back_queued_with_its_spec,
    inserting_the_same_id_twice_is_refused_and_keeps_the_first,
    list_tasks_is_newest_first_and_limited,
    reopening_keeps_tasks_events_statuses_and_results,
    appending_to_an_unknown_task_is_refused_and_writes_nothing,
    the_database_refuses_to_rewrite_or_delete_events,
    a_database_from_a_newer_version_is_refused,
);

fn inserted_task_reads_back_queued_with_its_spec(backend: &Backend) {
    let store = backend.open();
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

fn inserting_the_same_id_twice_is_refused_and_keeps_the_first(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("first")).unwrap();
    let err = store.insert_task(&id(1), &spec("second")).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateTask { .. }), "{err}");
    assert_eq!(store.task(&id(1)).unwrap().unwrap().spec.goal, "first");
}

fn list_tasks_is_newest_first_and_limited(backend: &Backend) {
    let store = backend.open();
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

fn reopening_keeps_tasks_events_statuses_and_results(backend: &Backend) {
    let result = super::events::result(id(1), TaskStatus::Failed);
    {
        let store = backend.open();
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
    let store = backend.open();
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

fn appending_to_an_unknown_task_is_refused_and_writes_nothing(backend: &Backend) {
    let store = backend.open();
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

fn the_database_refuses_to_rewrite_or_delete_events(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    store
        .append_event(
            &id(1),
            EventKind::Notice {
                message: "x".into(),
            },
        )
        .unwrap();
    let update = backend.raw_execute("UPDATE events SET ts = 'never'");
    assert!(update.unwrap_err().contains("append-only"));
    let delete = backend.raw_execute("DELETE FROM events");
    assert!(delete.unwrap_err().contains("append-only"));
    assert_eq!(store.events(&id(1), 0).unwrap().len(), 1);
}

fn a_database_from_a_newer_version_is_refused(backend: &Backend) {
    drop(backend.open());
    backend
        .raw_execute("UPDATE schema_version SET version = 999")
        .unwrap();
    let err = backend.try_open().unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade nightshift"));
}
