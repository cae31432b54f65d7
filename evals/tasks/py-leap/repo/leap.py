def leap_year(year):
    """Return True if year is a leap year in the Gregorian calendar."""
    raise NotImplementedError("leap_year")
