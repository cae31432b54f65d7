"""Orders: lists of (name, unit price, quantity) lines."""


def calc_total(lines):
    """The total price of an order's lines."""
    return sum(price * quantity for _name, price, quantity in lines)


def most_expensive(lines):
    """The name of the line that costs the most in total."""
    name, _price, _quantity = max(lines, key=lambda line: line[1] * line[2])
    return name
