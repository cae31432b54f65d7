use kvconf::{parse_config, parse_line};

fn kv(key: &str, value: &str) -> Option<(String, String)> {
    Some((key.to_owned(), value.to_owned()))
}

#[test]
fn simple_setting() {
    assert_eq!(parse_line("name=nightshift"), kv("name", "nightshift"));
}

#[test]
fn whitespace_is_trimmed() {
    assert_eq!(parse_line("  port =  8080  "), kv("port", "8080"));
}

#[test]
fn value_may_be_empty_or_contain_equals() {
    assert_eq!(parse_line("empty ="), kv("empty", ""));
    assert_eq!(parse_line("expr = a=b"), kv("expr", "a=b"));
}

#[test]
fn comments_and_blank_lines_are_not_settings() {
    assert_eq!(parse_line(""), None);
    assert_eq!(parse_line("   "), None);
    assert_eq!(parse_line("# port = 1"), None);
    assert_eq!(parse_line("   # indented comment"), None);
}

#[test]
fn malformed_lines_are_not_settings() {
    assert_eq!(parse_line("just words"), None);
    assert_eq!(parse_line(" = value"), None);
}

#[test]
fn whole_file() {
    let text = "# settings\nname = demo\n\nbad line\nlevel=3\n";
    assert_eq!(
        parse_config(text),
        vec![
            ("name".to_owned(), "demo".to_owned()),
            ("level".to_owned(), "3".to_owned())
        ]
    );
}
