import unittest

from chunks import chunks, pairs


class ChunksTest(unittest.TestCase):
    def test_even_split(self):
        self.assertEqual(chunks([1, 2, 3, 4], 2), [[1, 2], [3, 4]])

    def test_last_chunk_is_shorter(self):
        self.assertEqual(chunks([1, 2, 3], 2), [[1, 2], [3]])
        self.assertEqual(chunks([1, 2, 3, 4, 5, 6, 7], 3), [[1, 2, 3], [4, 5, 6], [7]])

    def test_size_one(self):
        self.assertEqual(chunks([1], 1), [[1]])
        self.assertEqual(chunks("abc", 1), [["a"], ["b"], ["c"]])

    def test_size_larger_than_input(self):
        self.assertEqual(chunks([1, 2], 5), [[1, 2]])

    def test_empty(self):
        self.assertEqual(chunks([], 3), [])

    def test_bad_size(self):
        with self.assertRaises(ValueError):
            chunks([1, 2], 0)

    def test_pairs(self):
        self.assertEqual(pairs([1, 2, 3]), [(1, 2), (2, 3)])


if __name__ == "__main__":
    unittest.main()
