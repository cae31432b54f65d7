def is_isogram(string):
    """True if no letter occurs more than once in string."""
    raise NotImplementedError("is_isogram")
