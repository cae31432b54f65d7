use crate::geometry::{compute_area, total_area, Rect};

/// One line per room, then the total, areas with two decimals.
pub fn describe(rooms: &[(&str, Rect)]) -> String {
    let mut out = String::new();
    for (name, rect) in rooms {
        out.push_str(&format!("{name}: {:.2} m2\n", compute_area(rect)));
    }
    let rects: Vec<Rect> = rooms.iter().map(|(_, rect)| *rect).collect();
    out.push_str(&format!("total: {:.2} m2\n", total_area(&rects)));
    out
}
