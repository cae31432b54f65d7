"""Integer helpers."""


def gcd(a, b):
    """The greatest common divisor of two integers (never negative)."""
    while b:
        a, b = b, a % b
    return abs(a)
