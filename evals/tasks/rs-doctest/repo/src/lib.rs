//! Keeping numbers within bounds.

pub fn clamp(value: i32, low: i32, high: i32) -> i32 {
    if value < low {
        low
    } else if value > high {
        high
    } else {
        value
    }
}

/// Whether `value` lies in `low..=high`.
pub fn within(value: i32, low: i32, high: i32) -> bool {
    clamp(value, low, high) == value
}
