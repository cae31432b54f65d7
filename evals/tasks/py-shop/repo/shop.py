"""Prices and shipping for the shop."""

FREE_SHIPPING_FROM = 50.00
SHIPPING_FEE = 4.90


def price_after_discount(price, percent):
    """The price after taking percent off, rounded to cents."""
    return round(price * (1 + percent / 100), 2)


def qualifies_for_free_shipping(total):
    """Orders of FREE_SHIPPING_FROM or more ship for free."""
    return total > FREE_SHIPPING_FROM


def order_total(prices):
    """The sum of prices plus shipping, if any, rounded to cents."""
    subtotal = sum(prices)
    shipping = 0 if qualifies_for_free_shipping(subtotal) else SHIPPING_FEE
    return round(subtotal + shipping, 2)
