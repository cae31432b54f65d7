use bounds::{clamp, within};

#[test]
fn clamp_limits_both_ways() {
    assert_eq!(clamp(5, 0, 10), 5);
    assert_eq!(clamp(11, 0, 10), 10);
    assert_eq!(clamp(-1, 0, 10), 0);
}

#[test]
fn within_includes_the_bounds() {
    assert!(within(0, 0, 10));
    assert!(within(10, 0, 10));
    assert!(!within(11, 0, 10));
}
