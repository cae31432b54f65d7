import unittest

from isogram import is_isogram


class IsogramTest(unittest.TestCase):
    def test_empty_string(self):
        self.assertIs(is_isogram(""), True)

    def test_lower_case_only(self):
        self.assertIs(is_isogram("isogram"), True)

    def test_duplicated_letter(self):
        self.assertIs(is_isogram("eleven"), False)

    def test_duplicated_letter_at_the_end(self):
        self.assertIs(is_isogram("zzyzx"), False)

    def test_longest_known_isogram(self):
        self.assertIs(is_isogram("subdermatoglyphic"), True)

    def test_mixed_case(self):
        self.assertIs(is_isogram("Alphabet"), False)
        self.assertIs(is_isogram("alphAbet"), False)

    def test_hyphens(self):
        self.assertIs(is_isogram("thumbscrew-japingly"), True)
        self.assertIs(is_isogram("six-year-old"), True)

    def test_hyphen_and_repeated_letter(self):
        self.assertIs(is_isogram("thumbscrew-jappingly"), False)

    def test_spaces(self):
        self.assertIs(is_isogram("Emily Jung Schwartzkopf"), True)

    def test_repeated_letter_far_apart(self):
        self.assertIs(is_isogram("accentor"), False)


if __name__ == "__main__":
    unittest.main()
