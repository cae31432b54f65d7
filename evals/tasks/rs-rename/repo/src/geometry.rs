/// An axis-aligned rectangle, in metres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub width: f64,
    pub height: f64,
}

/// The area of `rect` in square metres.
pub fn compute_area(rect: &Rect) -> f64 {
    rect.width * rect.height
}

/// The total area of several rectangles.
pub fn total_area(rects: &[Rect]) -> f64 {
    rects.iter().map(compute_area).sum()
}
