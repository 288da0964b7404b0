//! Writing a string so that it reads back as that string.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::scalar::{Resolved, resolve_plain};

/// `text` as a YAML scalar that reads back as the string `text`: as is when that is
/// unambiguous (`bob`, `c2FsdA==`), double-quoted otherwise (`"007"`, `"bob: the builder"`).
pub(crate) fn string(text: &str) -> Cow<'_, str> {
    if is_plain_safe(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else { return false };
    resolve_plain(text) == Resolved::Str
        && !"-?:,[]{}#&*!|>'\"%@`".contains(first)
        && !first.is_whitespace()
        && !text.ends_with(char::is_whitespace)
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.ends_with(':')
        && !text.contains([',', '[', ']', '{', '}'])
        && !text.chars().any(|c| c.is_control() || c == '\u{feff}')
}
