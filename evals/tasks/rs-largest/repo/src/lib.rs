/// The largest value in `values`, or `None` when there is none.
pub fn largest(values: &[i32]) -> Option<i32> {
    let mut best = 0;
    for &value in values {
        if value > best {
            best = value;
        }
    }
    Some(best)
}

/// The index of the first occurrence of the largest value.
pub fn position_of_largest(values: &[i32]) -> Option<usize> {
    let best = largest(values)?;
    values.iter().position(|&value| value == best)
}
