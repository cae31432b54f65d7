use armstrong::is_armstrong_number;

#[test]
fn single_digits_are_armstrong_numbers() {
    assert!(is_armstrong_number(0));
    assert!(is_armstrong_number(5));
    assert!(is_armstrong_number(9));
}

#[test]
fn two_digit_numbers_are_not() {
    assert!(!is_armstrong_number(10));
    assert!(!is_armstrong_number(99));
}

#[test]
fn three_digits() {
    assert!(is_armstrong_number(153));
    assert!(!is_armstrong_number(100));
    assert!(!is_armstrong_number(154));
}

#[test]
fn four_to_seven_digits() {
    assert!(is_armstrong_number(9474));
    assert!(!is_armstrong_number(9475));
    assert!(is_armstrong_number(93084));
    assert!(is_armstrong_number(9_926_315));
    assert!(!is_armstrong_number(9_926_314));
}

#[test]
fn large_numbers_do_not_overflow() {
    assert!(!is_armstrong_number(4_106_098_957));
    assert!(!is_armstrong_number(u32::MAX));
}
