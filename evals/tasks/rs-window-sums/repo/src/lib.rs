/// The sums of every run of `k` consecutive values, in order. Empty when `k` is 0 or larger
/// than the number of values.
pub fn window_sums(values: &[i64], k: usize) -> Vec<i64> {
    if k == 0 || k > values.len() {
        return Vec::new();
    }
    let mut sums = Vec::new();
    for start in 0..values.len() - k {
        sums.push(values[start..start + k].iter().sum());
    }
    sums
}

/// The largest window sum, if there is any window.
pub fn best_window(values: &[i64], k: usize) -> Option<i64> {
    window_sums(values, k).into_iter().max()
}
