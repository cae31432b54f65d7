import unittest

from anagram import find_anagrams


class AnagramTest(unittest.TestCase):
    def test_no_matches(self):
        self.assertEqual(find_anagrams("diaper", ["hello", "world", "zombies", "pants"]), [])

    def test_detects_two_anagrams(self):
        self.assertEqual(find_anagrams("solemn", ["lemons", "cherry", "melons"]), ["lemons", "melons"])

    def test_does_not_detect_anagram_subsets(self):
        self.assertEqual(find_anagrams("good", ["dog", "goody"]), [])

    def test_detects_anagram(self):
        self.assertEqual(find_anagrams("listen", ["enlists", "google", "inlets", "banana"]), ["inlets"])

    def test_detects_anagrams_case_insensitively(self):
        self.assertEqual(find_anagrams("Orchestra", ["cashregister", "Carthorse", "radishes"]), ["Carthorse"])

    def test_does_not_detect_non_anagrams_with_identical_checksum(self):
        self.assertEqual(find_anagrams("mass", ["last"]), [])

    def test_words_are_not_anagrams_of_themselves(self):
        self.assertEqual(find_anagrams("BANANA", ["BANANA"]), [])

    def test_words_are_not_anagrams_of_themselves_even_if_case_differs(self):
        self.assertEqual(find_anagrams("BANANA", ["Banana", "banana"]), [])

    def test_words_other_than_themselves_can_be_anagrams(self):
        self.assertEqual(find_anagrams("LISTEN", ["LISTEN", "Silent"]), ["Silent"])

    def test_repeated_letters_must_match(self):
        self.assertEqual(find_anagrams("tapper", ["patter"]), [])


if __name__ == "__main__":
    unittest.main()
