def abbreviate(words):
    """The acronym of a phrase, in upper case."""
    raise NotImplementedError("abbreviate")
