def distance(strand_a, strand_b):
    """How many positions of the two strands differ."""
    raise NotImplementedError("distance")
