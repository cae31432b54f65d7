import unittest

from sizes import format_bytes


class SizesTest(unittest.TestCase):
    def test_bytes(self):
        self.assertEqual(format_bytes(0), "0 B")
        self.assertEqual(format_bytes(1023), "1023 B")

    def test_larger_units(self):
        self.assertEqual(format_bytes(1536), "1.5 KiB")
        self.assertEqual(format_bytes(5 * 1024**3), "5.0 GiB")
        self.assertEqual(format_bytes(2048 * 1024**4), "2048.0 TiB")


if __name__ == "__main__":
    unittest.main()
