use geo::geometry::{area, total_area};
use geo::report::describe;
use geo::Rect;

const KITCHEN: Rect = Rect {
    width: 3.0,
    height: 2.5,
};
const HALL: Rect = Rect {
    width: 1.2,
    height: 4.0,
};

#[test]
fn area_of_one_rectangle() {
    assert_eq!(area(&KITCHEN), 7.5);
}

#[test]
fn total() {
    assert!((total_area(&[KITCHEN, HALL]) - 12.3).abs() < 1e-9);
}

#[test]
fn report() {
    assert_eq!(
        describe(&[("kitchen", KITCHEN), ("hall", HALL)]),
        "kitchen: 7.50 m2\nhall: 4.80 m2\ntotal: 12.30 m2\n"
    );
}
