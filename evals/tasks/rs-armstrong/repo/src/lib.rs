/// Whether `num` is the sum of its digits, each raised to the number of digits.
pub fn is_armstrong_number(num: u32) -> bool {
    todo!("is_armstrong_number({num})")
}
