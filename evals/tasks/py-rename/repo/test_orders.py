import contextlib
import io
import unittest

import cli
from orders import order_total
from report import summary

LINES = [("pen", 1.5, 4), ("book", 12.0, 1), ("bag", 20.0, 1)]


class OrdersTest(unittest.TestCase):
    def test_order_total(self):
        self.assertEqual(order_total(LINES), 38.0)
        self.assertEqual(order_total([]), 0)

    def test_summary(self):
        self.assertEqual(summary(LINES), "6 items, total 38.00, most expensive: bag")

    def test_cli(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(cli.main(["pen:1.5:4", "bag:20:1"]), 0)
        self.assertEqual(out.getvalue(), "26.00\n")


if __name__ == "__main__":
    unittest.main()
