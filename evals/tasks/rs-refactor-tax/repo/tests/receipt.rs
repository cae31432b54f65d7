use receipt::{gift_card_price, line_price, shipping_price, total, with_tax, TAX_PERCENT};

#[test]
fn the_tax_rate() {
    assert_eq!(TAX_PERCENT, 8);
    assert_eq!(with_tax(1000), 1080);
    assert_eq!(with_tax(999), 1078);
    assert_eq!(with_tax(0), 0);
}

#[test]
fn prices_are_unchanged() {
    assert_eq!(line_price(250, 3), 810);
    assert_eq!(line_price(333, 1), 359);
    assert_eq!(shipping_price(4999), 529);
    assert_eq!(shipping_price(5000), 0);
    assert_eq!(gift_card_price(2500), 2700);
}

#[test]
fn totals() {
    assert_eq!(total(&[(250, 3), (333, 1)]), 810 + 359 + 529);
    assert_eq!(total(&[(5000, 1)]), 5400);
}
