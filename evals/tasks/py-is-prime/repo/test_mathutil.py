import unittest

from mathutil import gcd


class MathutilTest(unittest.TestCase):
    def test_gcd(self):
        self.assertEqual(gcd(12, 18), 6)
        self.assertEqual(gcd(-4, 6), 2)
        self.assertEqual(gcd(7, 0), 7)


if __name__ == "__main__":
    unittest.main()
