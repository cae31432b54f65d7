import unittest

from matching_brackets import is_paired


class MatchingBracketsTest(unittest.TestCase):
    def test_paired_square_brackets(self):
        self.assertIs(is_paired("[]"), True)

    def test_empty_string(self):
        self.assertIs(is_paired(""), True)

    def test_unpaired_brackets(self):
        self.assertIs(is_paired("[["), False)

    def test_wrong_ordered_brackets(self):
        self.assertIs(is_paired("}{"), False)

    def test_wrong_closing_bracket(self):
        self.assertIs(is_paired("{]"), False)

    def test_paired_with_whitespace(self):
        self.assertIs(is_paired("{ }"), True)

    def test_partially_paired_brackets(self):
        self.assertIs(is_paired("{[])"), False)

    def test_simple_nested_brackets(self):
        self.assertIs(is_paired("{[]}"), True)

    def test_paired_and_wrong_nested_brackets(self):
        self.assertIs(is_paired("[({]})"), False)

    def test_unopened_closing_brackets(self):
        self.assertIs(is_paired("{[)][]}"), False)

    def test_math_expression(self):
        self.assertIs(is_paired("(((185 + 223.85) * 15) - 543)/2"), True)

    def test_complex_latex_expression(self):
        text = "\\left(\\begin{array}{cc} \\frac{1}{3} & x\\\\ \\mathrm{e}^{x} &... x^2 \\end{array}\\right)"
        self.assertIs(is_paired(text), True)


if __name__ == "__main__":
    unittest.main()
