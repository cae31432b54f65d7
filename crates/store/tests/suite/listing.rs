use nightshift_protocol::{TaskId, TaskSpec, TaskStatus};
use nightshift_store::{Store, StoreError, TaskFilter};

use super::backend::Backend;
use super::events::state_changed;
use super::{id, spec};

contract!(
    list_filters_by_status_repo_and_label,
    pages_follow_the_cursor_without_gaps_or_repeats,
);

fn spec_in(repo: &str, labels: &[&str]) -> TaskSpec {
    TaskSpec {
        repo: repo.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        ..spec("g")
    }
}

fn ids(store: &dyn Store, filter: TaskFilter) -> Vec<TaskId> {
    store
        .list_tasks_filtered(&filter)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect()
}

fn list_filters_by_status_repo_and_label(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec_in("/a", &["bug"])).unwrap();
    store
        .insert_task(&id(2), &spec_in("/b", &["bug", "ui"]))
        .unwrap();
    store.insert_task(&id(3), &spec_in("/a", &[])).unwrap();
    store.insert_task(&id(4), &spec_in("/a", &["ui"])).unwrap();
    store
        .append_event(
            &id(3),
            state_changed(TaskStatus::Queued, TaskStatus::Running),
        )
        .unwrap();
    let store = store.as_ref();

    assert_eq!(
        ids(store, TaskFilter::default()),
        [id(4), id(3), id(2), id(1)]
    );
    let by_repo = TaskFilter {
        repo: Some("/a".into()),
        ..TaskFilter::default()
    };
    assert_eq!(ids(store, by_repo.clone()), [id(4), id(3), id(1)]);
    let by_label = TaskFilter {
        label: Some("bug".into()),
        ..TaskFilter::default()
    };
    assert_eq!(ids(store, by_label.clone()), [id(2), id(1)]);
    let running = TaskFilter {
        statuses: vec![TaskStatus::Running],
        ..TaskFilter::default()
    };
    assert_eq!(ids(store, running), [id(3)]);
    let active = TaskFilter {
        statuses: vec![TaskStatus::Queued, TaskStatus::Running],
        repo: Some("/a".into()),
        ..TaskFilter::default()
    };
    assert_eq!(ids(store, active), [id(4), id(3), id(1)]);
    let everything_at_once = TaskFilter {
        statuses: vec![TaskStatus::Queued],
        repo: Some("/a".into()),
        label: Some("ui".into()),
        ..TaskFilter::default()
    };
    assert_eq!(ids(store, everything_at_once), [id(4)]);
    let nothing = TaskFilter {
        label: Some("nope".into()),
        ..by_repo
    };
    assert!(ids(store, nothing).is_empty());
    let finished = TaskFilter {
        statuses: vec![TaskStatus::Succeeded],
        ..by_label
    };
    assert!(ids(store, finished).is_empty());
}

fn pages_follow_the_cursor_without_gaps_or_repeats(backend: &Backend) {
    let store = backend.open();
    for n in 0..7 {
        store.insert_task(&id(n), &spec("g")).unwrap();
    }
    let page = |before: Option<TaskId>| {
        ids(
            store.as_ref(),
            TaskFilter {
                limit: 3,
                before,
                ..TaskFilter::default()
            },
        )
    };
    let first = page(None);
    assert_eq!(first, [id(6), id(5), id(4)]);
    // A task created between two pages is newer than the cursor: it cannot shift later pages.
    store.insert_task(&id(100), &spec("late")).unwrap();
    let second = page(first.last().cloned());
    assert_eq!(second, [id(3), id(2), id(1)]);
    let third = page(second.last().cloned());
    assert_eq!(third, [id(0)]);
    assert!(page(third.last().cloned()).is_empty());

    let err = store
        .list_tasks_filtered(&TaskFilter {
            before: Some(id(55)),
            ..TaskFilter::default()
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err}");
}
