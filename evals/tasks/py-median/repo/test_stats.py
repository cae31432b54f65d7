import unittest

from stats import mean, median


class StatsTest(unittest.TestCase):
    def test_mean(self):
        self.assertEqual(mean([1, 2, 3, 4]), 2.5)

    def test_median_odd(self):
        self.assertEqual(median([3, 1, 2]), 2)
        self.assertEqual(median([7]), 7)

    def test_median_even(self):
        self.assertEqual(median([4, 1, 3, 2]), 2.5)
        self.assertEqual(median([10, 20]), 15)
        self.assertEqual(median([5, 5, 1, 9]), 5)

    def test_median_does_not_change_its_input(self):
        values = [3, 1, 2, 0]
        median(values)
        self.assertEqual(values, [3, 1, 2, 0])

    def test_median_of_nothing(self):
        with self.assertRaises(ValueError):
            median([])


if __name__ == "__main__":
    unittest.main()
