import unittest

from word_count import count_words


class WordCountTest(unittest.TestCase):
    def test_one_word(self):
        self.assertEqual(count_words("word"), {"word": 1})

    def test_repeated_words(self):
        self.assertEqual(
            count_words("one fish two fish red fish blue fish"),
            {"one": 1, "fish": 4, "two": 1, "red": 1, "blue": 1},
        )

    def test_commas_without_spaces(self):
        self.assertEqual(count_words("one,two,three"), {"one": 1, "two": 1, "three": 1})

    def test_punctuation(self):
        self.assertEqual(
            count_words("car: carpet as java: javascript!!&@$%^&"),
            {"car": 1, "carpet": 1, "as": 1, "java": 1, "javascript": 1},
        )

    def test_numbers(self):
        self.assertEqual(count_words("testing, 1, 2 testing"), {"testing": 2, "1": 1, "2": 1})

    def test_case_insensitive(self):
        self.assertEqual(count_words("go Go GO Stop stop"), {"go": 3, "stop": 2})

    def test_apostrophes(self):
        self.assertEqual(
            count_words("First: don't laugh. Then: don't cry."),
            {"first": 1, "don't": 2, "laugh": 1, "then": 1, "cry": 1},
        )

    def test_quotations(self):
        self.assertEqual(
            count_words("Joe can't tell between 'large' and large."),
            {"joe": 1, "can't": 1, "tell": 1, "between": 1, "large": 2, "and": 1},
        )

    def test_multiple_spaces(self):
        self.assertEqual(count_words(" multiple   whitespaces\t\n"), {"multiple": 1, "whitespaces": 1})


if __name__ == "__main__":
    unittest.main()
