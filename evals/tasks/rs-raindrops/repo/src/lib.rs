/// The sound of `n` raindrops.
pub fn raindrops(n: u32) -> String {
    todo!("raindrops({n})")
}
