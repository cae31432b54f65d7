//! Head-and-tail trimming of long text: the start of an output says what ran, the end says how
//! it ended (the failing test, the compiler's last error); the middle is what can go.

/// Keeps the first and last parts of `text` within `max_bytes` (cut on char boundaries, and at
/// line breaks when one is close), with a marker `[... N bytes omitted ...]` in the middle.
pub fn trim_middle(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    // Sized for the largest count the marker can show, so the result never exceeds the cap.
    let widest = marker(text.len());
    if max_bytes < widest.len() + 2 {
        return text[..floor_char(text, max_bytes)].to_owned();
    }
    // One byte more for the line break that may be added after the head.
    let keep = max_bytes - widest.len() - 1;
    let head_len = keep / 2;
    let tail_len = keep - head_len;

    let mut head_end = floor_char(text, head_len);
    // Prefer whole lines, unless that would throw away more than a quarter of the head.
    if let Some(nl) = text[..head_end].rfind('\n')
        && nl + 1 >= head_end - head_end / 4
    {
        head_end = nl + 1;
    }
    let mut tail_start = ceil_char(text, text.len() - tail_len);
    if let Some(nl) = text[tail_start..].find('\n')
        && nl < tail_len / 4
    {
        tail_start += nl + 1;
    }

    let omitted = tail_start - head_end;
    let mut out = String::with_capacity(max_bytes);
    out.push_str(&text[..head_end]);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&marker(omitted));
    out.push_str(&text[tail_start..]);
    out
}

fn marker(omitted: usize) -> String {
    format!("[... {omitted} bytes omitted ...]\n")
}

fn floor_char(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_char(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn omitted_count(out: &str) -> usize {
        let start = out.find("[... ").unwrap() + 5;
        let rest = &out[start..];
        rest[..rest.find(' ').unwrap()].parse().unwrap()
    }

    #[test]
    fn short_text_is_returned_unchanged() {
        assert_eq!(trim_middle("hello", 5), "hello");
        assert_eq!(trim_middle("", 0), "");
    }

    #[test]
    fn long_text_keeps_head_and_tail_within_the_cap() {
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let out = trim_middle(&text, 1000);
        assert!(out.len() <= 1000, "{} bytes", out.len());
        assert!(out.starts_with("line 0\nline 1\n"));
        assert!(out.ends_with("line 9999\n"));
        // Cut at line breaks: every kept line is whole.
        for line in out.lines().filter(|l| !l.starts_with("[...")) {
            assert!(line.starts_with("line "), "{line:?}");
            line[5..].parse::<u32>().unwrap();
        }
        let marker_line = out.lines().find(|l| l.starts_with("[...")).unwrap();
        let kept = out.len() - marker_line.len() - 1;
        assert_eq!(kept + omitted_count(&out), text.len());
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "é".repeat(5000) + &"🦀".repeat(5000);
        for cap in [100, 101, 102, 103, 999] {
            let out = trim_middle(&text, cap);
            assert!(out.len() <= cap, "cap {cap}: {} bytes", out.len());
            assert!(out.starts_with('é'));
            assert!(out.ends_with('🦀'));
        }
    }

    #[test]
    fn a_cap_smaller_than_the_marker_keeps_a_prefix() {
        let out = trim_middle("abcdefghijklmnopqrstuvwxyz", 10);
        assert_eq!(out, "abcdefghij");
    }
}
