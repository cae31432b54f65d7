def is_paired(input_string):
    """True if the brackets of the string are balanced."""
    raise NotImplementedError("is_paired")
