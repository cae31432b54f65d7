import unittest

from bob import response


class BobTest(unittest.TestCase):
    def test_stating_something(self):
        self.assertEqual(response("Tom-ay-to, tom-aaaah-to."), "Whatever.")

    def test_shouting(self):
        self.assertEqual(response("WATCH OUT!"), "Whoa, chill out!")

    def test_shouting_gibberish(self):
        self.assertEqual(response("FCECDFCAAB"), "Whoa, chill out!")

    def test_asking_a_question(self):
        self.assertEqual(response("Does this cryogenic chamber make me look fat?"), "Sure.")

    def test_asking_a_numeric_question(self):
        self.assertEqual(response("You are, what, like 15?"), "Sure.")

    def test_talking_forcefully(self):
        self.assertEqual(response("Hi there!"), "Whatever.")

    def test_forceful_question(self):
        self.assertEqual(
            response("WHAT'S GOING ON?"), "Calm down, I know what I'm doing!"
        )

    def test_shouting_numbers(self):
        self.assertEqual(response("1, 2, 3 GO!"), "Whoa, chill out!")

    def test_no_letters(self):
        self.assertEqual(response("1, 2, 3"), "Whatever.")

    def test_question_with_no_letters(self):
        self.assertEqual(response("4?"), "Sure.")

    def test_silence(self):
        self.assertEqual(response(""), "Fine. Be that way!")

    def test_prolonged_silence(self):
        self.assertEqual(response("          "), "Fine. Be that way!")

    def test_other_whitespace(self):
        self.assertEqual(response("\n\r \t"), "Fine. Be that way!")

    def test_question_with_trailing_whitespace(self):
        self.assertEqual(response("Okay if like my  spacebar  quite a bit?   "), "Sure.")

    def test_statement_containing_question_mark(self):
        self.assertEqual(response("Ending with ? means a question."), "Whatever.")


if __name__ == "__main__":
    unittest.main()
