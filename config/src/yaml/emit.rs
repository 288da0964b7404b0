//! Writing a string so that it reads back as that string.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::scalar::{Resolved, resolve_plain};

/// `text` as a YAML scalar that reads back as the string `text`, as libyaml would write it:
/// as is when that is unambiguous for any YAML reader (`bob`, `c2FsdA==`), single-quoted
/// when it would read as something else (`'007'`, `'bob: the builder'`), double-quoted with
/// escapes when it holds control characters.
pub(crate) fn string(text: &str) -> Cow<'_, str> {
    if is_plain_safe(text) {
        Cow::Borrowed(text)
    } else if !text.chars().any(needs_escape) {
        Cow::Owned(format!("'{}'", text.replace('\'', "''")))
    } else {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{:04X}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        Cow::Owned(out)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{feff}'
}

/// Plain only when no YAML 1.1 or 1.2 reader takes it for anything but this string: no
/// indicator or digit first, no `: ` or ` #`, no flow characters, not a boolean or null
/// of either version.
fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else { return false };
    const YAML_1_1_WORDS: [&str; 10] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"];
    resolve_plain(text) == Resolved::Str
        && !YAML_1_1_WORDS.contains(&text.to_ascii_lowercase().as_str())
        && !"-?:,[]{}#&*!|>'\"%@`+.".contains(first)
        && !first.is_ascii_digit()
        && !first.is_whitespace()
        && !text.ends_with(char::is_whitespace)
        && !text.ends_with(':')
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains([',', '[', ']', '{', '}'])
        && !text.chars().any(needs_escape)
}

#[cfg(test)]
mod tests {
    use super::string;

    #[test]
    fn plain_single_or_double() {
        for (text, want) in [
            ("bob", "bob"),
            ("c2FsdA==", "c2FsdA=="),
            ("/k+y=", "/k+y="),
            ("SCRAM-SHA-256", "SCRAM-SHA-256"),
            ("007", "'007'"),
            ("1.5", "'1.5'"),
            ("yes", "'yes'"),
            ("Off", "'Off'"),
            ("~", "'~'"),
            ("", "''"),
            ("bob: the builder", "'bob: the builder'"),
            ("it's", "it's"),
            ("'quoted'", "'''quoted'''"),
            ("- x", "'- x'"),
            ("a #b", "'a #b'"),
            ("tab\there", "\"tab\\there\""),
            ("nl\n", "\"nl\\n\""),
        ] {
            assert_eq!(string(text), want, "{text:?}");
        }
    }
}
