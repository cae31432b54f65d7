def rotate(text, key):
    """The text with each letter shifted by key."""
    raise NotImplementedError("rotate")
