//! Small text utilities.

/// `s` in lower case with everything but letters and digits removed.
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The number of words (runs of non-whitespace) in `s`.
pub fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}
