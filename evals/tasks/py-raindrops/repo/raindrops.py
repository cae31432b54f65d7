def convert(number):
    """The raindrop sounds of a number."""
    raise NotImplementedError("convert")
