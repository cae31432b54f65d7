"""A stock of items and their quantities."""


class Inventory:
    def __init__(self):
        self._stock = {}

    def add(self, item, quantity):
        """Add quantity (a positive integer) of item."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self._stock[item] = self._stock.get(item, 0) + quantity

    def count(self, item):
        """How many of item are in stock (0 if none)."""
        return self._stock.get(item, 0)

    def items(self):
        """The names of the items in stock, sorted."""
        return sorted(self._stock)

    def remove(self, item, quantity):
        """Take quantity (a positive integer) of item out of the stock.

        Raises ValueError if quantity is not positive or if there are fewer than quantity of
        item in stock; the stock is then left unchanged. An item whose count drops to 0 is
        no longer listed by items().
        """
        raise NotImplementedError("Inventory.remove")
