use temperature::{celsius_to_fahrenheit, fahrenheit_to_celsius};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn freezing_and_boiling() {
    assert!(close(celsius_to_fahrenheit(0.0), 32.0));
    assert!(close(celsius_to_fahrenheit(100.0), 212.0));
}

#[test]
fn minus_forty_is_the_same_on_both_scales() {
    assert!(close(celsius_to_fahrenheit(-40.0), -40.0));
    assert!(close(fahrenheit_to_celsius(-40.0), -40.0));
}

#[test]
fn round_trip() {
    for c in [-273.15, -10.0, 0.5, 37.0, 1000.0] {
        assert!(close(fahrenheit_to_celsius(celsius_to_fahrenheit(c)), c));
    }
}
