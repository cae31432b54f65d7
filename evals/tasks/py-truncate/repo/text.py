"""Text helpers for page titles and URLs."""

import re


def slugify(title):
    """A URL-safe slug: lower case words joined by hyphens."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words)
