use windows::{best_window, window_sums};

#[test]
fn every_window_is_summed() {
    assert_eq!(window_sums(&[1, 2, 3, 4], 2), vec![3, 5, 7]);
    assert_eq!(window_sums(&[5, -1, 2], 1), vec![5, -1, 2]);
}

#[test]
fn one_window_covering_everything() {
    assert_eq!(window_sums(&[1, 2, 3], 3), vec![6]);
}

#[test]
fn no_windows() {
    assert_eq!(window_sums(&[1, 2], 3), Vec::<i64>::new());
    assert_eq!(window_sums(&[1, 2], 0), Vec::<i64>::new());
    assert_eq!(window_sums(&[], 1), Vec::<i64>::new());
}

#[test]
fn best_window_can_be_the_last() {
    assert_eq!(best_window(&[1, 1, 1, 9, 9], 2), Some(18));
    assert_eq!(best_window(&[1], 2), None);
}
