"""Plane shapes with their areas and perimeters."""

import math


class Rectangle:
    def __init__(self, width, height):
        if isinstance(width, bool) or not isinstance(width, (int, float)) or width <= 0:
            raise ValueError(f"width must be a positive number, got {width!r}")
        if isinstance(height, bool) or not isinstance(height, (int, float)) or height <= 0:
            raise ValueError(f"height must be a positive number, got {height!r}")
        self.width = width
        self.height = height

    def area(self):
        return self.width * self.height

    def perimeter(self):
        return 2 * (self.width + self.height)


class Square(Rectangle):
    def __init__(self, side):
        if isinstance(side, bool) or not isinstance(side, (int, float)) or side <= 0:
            raise ValueError(f"side must be a positive number, got {side!r}")
        super().__init__(side, side)


class Circle:
    def __init__(self, radius):
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or radius <= 0:
            raise ValueError(f"radius must be a positive number, got {radius!r}")
        self.radius = radius

    def area(self):
        return math.pi * self.radius**2

    def perimeter(self):
        return 2 * math.pi * self.radius
