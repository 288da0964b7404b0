//! `${VAR}` and `${VAR:default}` expansion of the configuration text, before YAML parsing.
//!
//! Rules (the seed proxy's, plus an escape):
//! * `${NAME}`: the value of `NAME`; an error if it is unset or empty.
//! * `${NAME:default}`: the value of `NAME`, or `default` (taken literally, up to the
//!   first `}`) when it is unset or empty. `${NAME:}` expands to the empty string.
//! * `NAME` is `[A-Za-z_][A-Za-z0-9_]*`.
//! * `$$` is a literal `$` (write `$${X}` for the text `${X}`).
//! * Any other `$` is kept as is, so `$anonymous` and `<$id>` need no escaping.
//! * A `${` that does not form one of the two placeholders is an error, so typos such
//!   as `${VAR-x}` are not silently kept.
//!
//! Expansion is textual and applies everywhere, comments included. Values are inserted
//! verbatim and never expanded again; a value holding YAML syntax (quotes, `: `, a
//! leading `*`) can change how the line parses, so quote placeholders that carry secrets.

use crate::error::EnvErrorKind;

/// A placeholder that could not be expanded, at a 1-based line and character column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) kind: EnvErrorKind,
}

/// Expands every placeholder in `text`, looking variables up with `env`.
pub(crate) fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        let (before, from_dollar) = rest.split_at(dollar);
        out.push_str(before);
        let after = &from_dollar[1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let at = text.len() - from_dollar.len();
            let fail = |kind| {
                let (line, column) = position(text, at);
                EnvError { line, column, kind }
            };
            let (placeholder, tail) =
                split_placeholder(body).map_err(|reason| fail(EnvErrorKind::Malformed { reason }))?;
            let value = env(placeholder.name).filter(|v| !v.is_empty());
            match (value, placeholder.default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    let var = placeholder.name.to_owned();
                    return Err(fail(if env(placeholder.name).is_some() {
                        EnvErrorKind::Empty { var }
                    } else {
                        EnvErrorKind::Unset { var }
                    }));
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The parts of one `${...}` placeholder.
struct Placeholder<'a> {
    name: &'a str,
    default: Option<&'a str>,
}

/// Splits `NAME}` or `NAME:default}` (the text after `${`) from what follows it.
fn split_placeholder(body: &str) -> Result<(Placeholder<'_>, &str), &'static str> {
    const EXPECTED: &str = "expected ${NAME} or ${NAME:default} with NAME made of letters, digits and _";
    let name_len = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
    let name = &body[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(EXPECTED);
    }
    let after_name = &body[name_len..];
    if let Some(tail) = after_name.strip_prefix('}') {
        return Ok((Placeholder { name, default: None }, tail));
    }
    let Some(default_and_tail) = after_name.strip_prefix(':') else {
        return Err(EXPECTED);
    };
    match default_and_tail.find(['}', '\n']) {
        Some(end) if default_and_tail[end..].starts_with('}') => {
            Ok((Placeholder { name, default: Some(&default_and_tail[..end]) }, &default_and_tail[end + 1..]))
        }
        _ => Err("unterminated ${NAME:default}: expected } before the end of the line"),
    }
}

/// 1-based line and character column of byte offset `at` in `text`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("broker-1".into()),
            "EMPTY" => Some(String::new()),
            "DOLLAR" => Some("p$${x}".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, EnvError> {
        expand(text, &env)
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(run("a: b\nc: [1, 2]\n").unwrap(), "a: b\nc: [1, 2]\n");
    }

    #[test]
    fn required_and_default() {
        assert_eq!(run("x: ${HOST}:9092").unwrap(), "x: broker-1:9092");
        assert_eq!(run("x: ${NOPE:localhost}").unwrap(), "x: localhost");
        assert_eq!(run("x: ${HOST:localhost}").unwrap(), "x: broker-1");
        assert_eq!(run("x: ${EMPTY:fallback}").unwrap(), "x: fallback", "empty counts as unset");
        assert_eq!(run("x: '${NOPE:}'").unwrap(), "x: ''");
        assert_eq!(run("x: ${NOPE:a:b c}").unwrap(), "x: a:b c", "default runs to the first closing brace");
    }

    #[test]
    fn values_are_not_expanded_again() {
        assert_eq!(run("x: ${DOLLAR}").unwrap(), "x: p$${x}");
    }

    #[test]
    fn dollar_escapes() {
        assert_eq!(run("a: $$").unwrap(), "a: $");
        assert_eq!(run("a: $${HOST}").unwrap(), "a: ${HOST}");
        assert_eq!(run("m: $anonymous=svc").unwrap(), "m: $anonymous=svc");
        assert_eq!(run("t: b<$id>.x <$1>").unwrap(), "t: b<$id>.x <$1>");
        assert_eq!(run("end $").unwrap(), "end $");
        assert_eq!(run("$$$").unwrap(), "$$");
    }

    #[test]
    fn missing_variable_names_line_and_column() {
        let err = run("a: 1\nb: x${NOPE}\n").unwrap_err();
        assert_eq!(err, EnvError { line: 2, column: 5, kind: EnvErrorKind::Unset { var: "NOPE".into() } });
        let err = run("é: ${EMPTY}").unwrap_err();
        assert_eq!(err, EnvError { line: 1, column: 4, kind: EnvErrorKind::Empty { var: "EMPTY".into() } });
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        for text in ["${}", "${1A}", "${A-b}", "${A", "${A:x\n}", "${ A}"] {
            let err = run(text).unwrap_err();
            assert!(matches!(err.kind, EnvErrorKind::Malformed { .. }), "{text}: {err:?}");
            assert_eq!((err.line, err.column), (1, 1), "{text}");
        }
    }
}
