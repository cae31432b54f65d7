use raindrops::raindrops;

#[test]
fn plain_numbers() {
    assert_eq!(raindrops(1), "1");
    assert_eq!(raindrops(8), "8");
    assert_eq!(raindrops(52), "52");
}

#[test]
fn single_sounds() {
    assert_eq!(raindrops(3), "Pling");
    assert_eq!(raindrops(5), "Plang");
    assert_eq!(raindrops(7), "Plong");
    assert_eq!(raindrops(9), "Pling");
    assert_eq!(raindrops(25), "Plang");
}

#[test]
fn combined_sounds_in_order() {
    assert_eq!(raindrops(15), "PlingPlang");
    assert_eq!(raindrops(21), "PlingPlong");
    assert_eq!(raindrops(35), "PlangPlong");
    assert_eq!(raindrops(105), "PlingPlangPlong");
}

#[test]
fn large_number() {
    assert_eq!(raindrops(3125), "Plang");
    assert_eq!(raindrops(4_294_967_291), "4294967291");
}
