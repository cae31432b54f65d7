use std::sync::Arc;

use nightshift_protocol::{
    CheckOutcome, DiffStat, EventKind, TaskId, TaskResult, TaskStatus, ToolCall, Usage,
};
use nightshift_store::Store;

use super::backend::Backend;
use super::{id, spec};

contract!(
    appended_events_get_gap_free_seqs_timestamps_and_read_back_equal,
    events_after_seq_returns_only_later_events_in_order,
    status_follows_state_changed_and_other_events_leave_it_alone,
    task_finished_stores_the_result_and_final_status,
    a_final_state_change_waits_for_the_result,
    concurrent_appends_from_threads_and_connections_stay_gap_free,
);

pub fn result(task_id: TaskId, status: TaskStatus) -> TaskResult {
    TaskResult {
        task_id: task_id.clone(),
        status,
        branch: Some(task_id.branch()),
        commit: Some("a".repeat(40)),
        base_commit: Some("b".repeat(40)),
        summary: "did the thing".into(),
        reason: Some("checks failed".into()),
        diff_stat: Some(DiffStat {
            files_changed: 1,
            insertions: 2,
            deletions: 3,
            text: " a | 5 ++---\n".into(),
        }),
        checks: vec![CheckOutcome {
            command: "cargo test".into(),
            passed: false,
            exit_code: Some(101),
            duration_ms: 12,
            output: "boom".into(),
        }],
        steps: 4,
        verify_rounds: 1,
        usage: Usage {
            input_tokens: 10,
            output_tokens: 20,
            cached_tokens: 0,
        },
        cost_usd: Some(0.5),
        duration_ms: 1234,
        sandbox: None,
    }
}

pub fn state_changed(from: TaskStatus, to: TaskStatus) -> EventKind {
    EventKind::StateChanged {
        from: Some(from),
        to,
        reason: None,
    }
}

pub fn notice(n: usize) -> EventKind {
    EventKind::Notice {
        message: format!("notice {n}"),
    }
}

fn appended_events_get_gap_free_seqs_timestamps_and_read_back_equal(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    let kinds = vec![
        EventKind::TaskCreated { spec: spec("g") },
        EventKind::ModelResponse {
            step: 1,
            content: "hi".into(),
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "shell".into(),
                arguments: "{\"cmd\":\"ls\"}".into(),
            }],
            usage: Usage::default(),
            cost_usd: Some(0.0125),
            latency_ms: 5,
            finish_reason: None,
        },
        EventKind::Committed {
            branch: "nightshift/x".into(),
            commit: "c".repeat(40),
            message: "msg".into(),
            diff_stat: DiffStat::default(),
        },
    ];
    let mut appended = Vec::new();
    for kind in &kinds {
        appended.push(store.append_event(&id(1), kind.clone()).unwrap());
    }
    let seqs: Vec<u64> = appended.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    for event in &appended {
        assert_eq!(event.task_id, id(1));
        // RFC 3339 UTC with exactly millisecond precision, e.g. 2026-11-24T12:00:00.000Z.
        assert_eq!(event.ts.len(), 24, "{}", event.ts);
        assert!(event.ts.ends_with('Z'), "{}", event.ts);
        assert!(humantime::parse_rfc3339(&event.ts).is_ok());
    }
    assert_eq!(store.events(&id(1), 0).unwrap(), appended);
}

fn events_after_seq_returns_only_later_events_in_order(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    store.insert_task(&id(2), &spec("other")).unwrap();
    for n in 0..5 {
        store.append_event(&id(1), notice(n)).unwrap();
        store.append_event(&id(2), notice(100 + n)).unwrap();
    }
    let seqs = |after| -> Vec<u64> {
        store
            .events(&id(1), after)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(seqs(0), vec![1, 2, 3, 4, 5]);
    assert_eq!(seqs(3), vec![4, 5]);
    assert_eq!(seqs(5), Vec::<u64>::new());
    assert_eq!(seqs(u64::MAX), Vec::<u64>::new());
    // Each task has its own sequence and sees only its own events.
    let other = store.events(&id(2), 4).unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].kind, notice(104));
}

fn status_follows_state_changed_and_other_events_leave_it_alone(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    store
        .append_event(
            &id(1),
            state_changed(TaskStatus::Queued, TaskStatus::Running),
        )
        .unwrap();
    assert_eq!(
        store.task(&id(1)).unwrap().unwrap().status,
        TaskStatus::Running
    );
    store.append_event(&id(1), notice(1)).unwrap();
    assert_eq!(
        store.task(&id(1)).unwrap().unwrap().status,
        TaskStatus::Running
    );
    store
        .append_event(
            &id(1),
            state_changed(TaskStatus::Running, TaskStatus::Verifying),
        )
        .unwrap();
    let record = store.task(&id(1)).unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Verifying);
    assert!(record.updated_at >= record.created_at);
}

fn task_finished_stores_the_result_and_final_status(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    let result = result(id(1), TaskStatus::Succeeded);
    let event = store
        .append_event(
            &id(1),
            EventKind::TaskFinished {
                result: result.clone(),
            },
        )
        .unwrap();
    let record = store.task(&id(1)).unwrap().unwrap();
    assert_eq!(record.result, Some(result));
    assert_eq!(record.status, TaskStatus::Succeeded);
    assert_eq!(record.updated_at, event.ts);
}

/// The worker records `state_changed` to a final status and then `task_finished`: a reader
/// between the two must not see a finished task with no result (and so no branch).
fn a_final_state_change_waits_for_the_result(backend: &Backend) {
    let store = backend.open();
    store.insert_task(&id(1), &spec("g")).unwrap();
    store
        .append_event(
            &id(1),
            state_changed(TaskStatus::Queued, TaskStatus::Running),
        )
        .unwrap();
    store
        .append_event(
            &id(1),
            state_changed(TaskStatus::Running, TaskStatus::Succeeded),
        )
        .unwrap();
    let between = store.task(&id(1)).unwrap().unwrap();
    assert_eq!(between.status, TaskStatus::Running);
    assert_eq!(between.result, None);

    let result = result(id(1), TaskStatus::Succeeded);
    store
        .append_event(
            &id(1),
            EventKind::TaskFinished {
                result: result.clone(),
            },
        )
        .unwrap();
    let finished = store.task(&id(1)).unwrap().unwrap();
    assert_eq!(finished.status, TaskStatus::Succeeded);
    assert_eq!(finished.result, Some(result));
}

fn concurrent_appends_from_threads_and_connections_stay_gap_free(backend: &Backend) {
    let shared: Arc<dyn Store> = Arc::from(backend.open());
    shared.insert_task(&id(1), &spec("g")).unwrap();
    const THREADS: usize = 6;
    const EACH: usize = 40;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            // Half the threads share one store; the others open their own, as a second
            // process would, so both in-process sharing and the database's locking are used.
            let store: Arc<dyn Store> = if t % 2 == 0 {
                Arc::clone(&shared)
            } else {
                Arc::from(backend.open())
            };
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|n| {
                        store
                            .append_event(&id(1), notice(t * 1000 + n))
                            .unwrap()
                            .seq
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    let total = (THREADS * EACH) as u64;
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    let stored = shared.events(&id(1), 0).unwrap();
    assert_eq!(stored.len() as u64, total);
    assert!(stored.iter().zip(1..).all(|(e, n)| e.seq == n));
}
