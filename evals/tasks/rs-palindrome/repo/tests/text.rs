use textkit::{is_palindrome, normalize, word_count};

#[test]
fn normalize_keeps_letters_and_digits() {
    assert_eq!(normalize("A man, a plan!"), "amanaplan");
    assert_eq!(word_count("  two   words "), 2);
}

#[test]
fn simple_palindromes() {
    assert!(is_palindrome("racecar"));
    assert!(is_palindrome("abba"));
    assert!(is_palindrome("x"));
    assert!(is_palindrome(""));
}

#[test]
fn not_palindromes() {
    assert!(!is_palindrome("rust"));
    assert!(!is_palindrome("ab"));
    assert!(!is_palindrome("almostomla x"));
}

#[test]
fn case_and_punctuation_are_ignored() {
    assert!(is_palindrome("A man, a plan, a canal: Panama!"));
    assert!(is_palindrome("No 'x' in Nixon"));
    assert!(is_palindrome("Was it a car or a cat I saw?"));
}

#[test]
fn digits_count() {
    assert!(is_palindrome("12321"));
    assert!(!is_palindrome("1231"));
}

#[test]
fn non_ascii_letters() {
    assert!(is_palindrome("Ésé"));
}
