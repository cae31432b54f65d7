//! Reading the numbers out of `git diff --stat`.

/// Files changed, insertions and deletions from the summary line that ends `git diff --stat`
/// output, e.g. ` 3 files changed, 10 insertions(+), 1 deletion(-)`. Missing parts (git omits
/// zero insertions or deletions) count as zero; empty text (no diff) is all zeros.
pub(crate) fn summary_counts(stat: &str) -> (u64, u64, u64) {
    let Some(summary) = stat.lines().rev().find(|l| !l.trim().is_empty()) else {
        return (0, 0, 0);
    };
    let (mut files, mut insertions, mut deletions) = (0, 0, 0);
    for part in summary.split(',') {
        let mut words = part.split_whitespace();
        let (Some(number), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        if what.starts_with("file") {
            files = number;
        } else if what.starts_with("insertion") {
            insertions = number;
        } else if what.starts_with("deletion") {
            deletions = number;
        }
    }
    (files, insertions, deletions)
}

#[cfg(test)]
mod tests {
    use super::summary_counts;

    #[test]
    fn reads_plural_singular_and_missing_parts() {
        let text = " a.rs | 3 ++-\n b.rs | 9 +++++++++\n 2 files changed, 11 insertions(+), 1 deletion(-)\n";
        assert_eq!(summary_counts(text), (2, 11, 1));
        assert_eq!(
            summary_counts(" x | 1 -\n 1 file changed, 1 deletion(-)\n"),
            (1, 0, 1)
        );
        assert_eq!(
            summary_counts(" x | 1 +\n 1 file changed, 1 insertion(+)"),
            (1, 1, 0)
        );
        assert_eq!(
            summary_counts(
                " x.png | Bin 0 -> 4 bytes\n 1 file changed, 0 insertions(+), 0 deletions(-)\n"
            ),
            (1, 0, 0)
        );
        assert_eq!(summary_counts(""), (0, 0, 0));
    }
}
