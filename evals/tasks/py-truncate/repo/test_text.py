import unittest

from text import slugify, truncate


class SlugifyTest(unittest.TestCase):
    def test_slugify(self):
        self.assertEqual(slugify("Hello, World!"), "hello-world")
        self.assertEqual(slugify("  Rust & Python 3 "), "rust-python-3")


class TruncateTest(unittest.TestCase):
    def test_short_text_is_unchanged(self):
        self.assertEqual(truncate("hello", 10), "hello")

    def test_exact_width_is_unchanged(self):
        self.assertEqual(truncate("hello", 5), "hello")

    def test_long_text_is_cut_with_ellipsis(self):
        self.assertEqual(truncate("hello world", 8), "hello...")
        self.assertEqual(len(truncate("a" * 100, 20)), 20)

    def test_smallest_width(self):
        self.assertEqual(truncate("abcdef", 3), "...")

    def test_width_too_small(self):
        with self.assertRaises(ValueError):
            truncate("abcdef", 2)


if __name__ == "__main__":
    unittest.main()
