import unittest

from inventory import Inventory


class InventoryTest(unittest.TestCase):
    def setUp(self):
        self.stock = Inventory()
        self.stock.add("apple", 5)
        self.stock.add("pear", 2)

    def test_add_and_count(self):
        self.stock.add("apple", 1)
        self.assertEqual(self.stock.count("apple"), 6)
        self.assertEqual(self.stock.count("plum"), 0)

    def test_remove_some(self):
        self.stock.remove("apple", 3)
        self.assertEqual(self.stock.count("apple"), 2)
        self.assertEqual(self.stock.items(), ["apple", "pear"])

    def test_remove_all_drops_the_item(self):
        self.stock.remove("pear", 2)
        self.assertEqual(self.stock.count("pear"), 0)
        self.assertEqual(self.stock.items(), ["apple"])

    def test_remove_too_many(self):
        with self.assertRaises(ValueError):
            self.stock.remove("pear", 3)
        self.assertEqual(self.stock.count("pear"), 2)

    def test_remove_unknown_item(self):
        with self.assertRaises(ValueError):
            self.stock.remove("plum", 1)
        self.assertEqual(self.stock.items(), ["apple", "pear"])

    def test_remove_non_positive(self):
        for quantity in (0, -1):
            with self.assertRaises(ValueError):
                self.stock.remove("apple", quantity)
        self.assertEqual(self.stock.count("apple"), 5)


if __name__ == "__main__":
    unittest.main()
