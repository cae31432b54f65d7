import unittest

from shop import order_total, price_after_discount, qualifies_for_free_shipping


class ShopTest(unittest.TestCase):
    def test_discount(self):
        self.assertEqual(price_after_discount(100.0, 25), 75.0)
        self.assertEqual(price_after_discount(19.99, 10), 17.99)

    def test_no_discount(self):
        self.assertEqual(price_after_discount(12.5, 0), 12.5)

    def test_free_shipping_threshold(self):
        self.assertFalse(qualifies_for_free_shipping(49.99))
        self.assertTrue(qualifies_for_free_shipping(50.00))
        self.assertTrue(qualifies_for_free_shipping(80))

    def test_order_total(self):
        self.assertEqual(order_total([10.0, 20.0]), 34.9)
        self.assertEqual(order_total([25.0, 25.0]), 50.0)


if __name__ == "__main__":
    unittest.main()
