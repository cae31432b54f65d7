"""Human-readable sizes."""

UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]


def format_bytes(count):
    size = float(count)
    for unit in UNITS[:-1]:
        if size < 1024:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} {UNITS[-1]}"
