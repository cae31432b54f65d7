//! Rectangles on a plan: areas and a printable report.

pub mod geometry;
pub mod report;

pub use geometry::Rect;
