"""Plain-text summaries of orders."""

from orders import calc_total, most_expensive


def summary(lines):
    """One line: number of items, total and the most expensive line."""
    count = sum(quantity for _name, _price, quantity in lines)
    total = calc_total(lines)
    return f"{count} items, total {total:.2f}, most expensive: {most_expensive(lines)}"
