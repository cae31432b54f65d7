use largest::{largest, position_of_largest};

#[test]
fn positive_numbers() {
    assert_eq!(largest(&[3, 9, 2]), Some(9));
    assert_eq!(largest(&[7]), Some(7));
}

#[test]
fn empty_slice_has_no_largest() {
    assert_eq!(largest(&[]), None);
    assert_eq!(position_of_largest(&[]), None);
}

#[test]
fn negative_numbers() {
    assert_eq!(largest(&[-5, -2, -9]), Some(-2));
    assert_eq!(largest(&[i32::MIN]), Some(i32::MIN));
    assert_eq!(position_of_largest(&[-5, -2, -9, -2]), Some(1));
}

#[test]
fn mixed() {
    assert_eq!(largest(&[-1, 0, -3]), Some(0));
}
