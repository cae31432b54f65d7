import math
import unittest

from shapes import Circle, Rectangle, Square


class ShapesTest(unittest.TestCase):
    def test_rectangle(self):
        r = Rectangle(3, 4.5)
        self.assertEqual(r.area(), 13.5)
        self.assertEqual(r.perimeter(), 15)

    def test_square(self):
        self.assertEqual(Square(2).area(), 4)

    def test_circle(self):
        self.assertAlmostEqual(Circle(1).perimeter(), 2 * math.pi)

    def test_messages(self):
        cases = [
            (lambda: Rectangle(0, 1), "width must be a positive number, got 0"),
            (lambda: Rectangle(1, -2), "height must be a positive number, got -2"),
            (lambda: Square("3"), "side must be a positive number, got '3'"),
            (lambda: Circle(True), "radius must be a positive number, got True"),
        ]
        for make, message in cases:
            with self.assertRaises(ValueError) as raised:
                make()
            self.assertEqual(str(raised.exception), message)

    def test_require_positive(self):
        from shapes import require_positive

        self.assertIsNone(require_positive("size", 0.5))
        with self.assertRaises(ValueError) as raised:
            require_positive("size", -1)
        self.assertEqual(str(raised.exception), "size must be a positive number, got -1")


if __name__ == "__main__":
    unittest.main()
