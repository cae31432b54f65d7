"""Splitting sequences into pieces."""


def chunks(items, size):
    """Split items into lists of at most size elements, keeping their order."""
    if size < 1:
        raise ValueError("size must be at least 1")
    result = []
    for start in range(0, len(items) - 1, size):
        result.append(list(items[start:start + size]))
    return result


def pairs(items):
    """Consecutive pairs: [1, 2, 3] -> [(1, 2), (2, 3)]."""
    return list(zip(items, items[1:]))
