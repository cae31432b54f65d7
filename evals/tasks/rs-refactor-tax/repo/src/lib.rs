//! Prices in cents for the shop's receipt.

/// Shipping for orders that do not ship free, in cents.
pub const SHIPPING: u64 = 490;

/// The price of `quantity` items at `unit` cents each, tax included.
pub fn line_price(unit: u64, quantity: u64) -> u64 {
    let net = unit * quantity;
    net + net * 8 / 100
}

/// Shipping, tax included; free from 5000 cents (before tax).
pub fn shipping_price(net_total: u64) -> u64 {
    if net_total >= 5000 {
        0
    } else {
        SHIPPING + SHIPPING * 8 / 100
    }
}

/// A gift card of `value` cents costs its value plus tax.
pub fn gift_card_price(value: u64) -> u64 {
    value + value * 8 / 100
}

/// The receipt total for `(unit, quantity)` lines, tax and shipping included.
pub fn total(lines: &[(u64, u64)]) -> u64 {
    let net: u64 = lines.iter().map(|(unit, quantity)| unit * quantity).sum();
    let goods: u64 = lines
        .iter()
        .map(|&(unit, quantity)| line_price(unit, quantity))
        .sum();
    goods + shipping_price(net)
}
