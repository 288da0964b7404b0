//! What a plain scalar means: YAML 1.2's core schema, read as serde_yaml 0.9 did, so a
//! configuration keeps its meaning. `true`/`false` (three spellings each) are booleans and
//! `yes`/`no`/`on`/`off` are strings; `~`, `null` and an empty value are null; integers are
//! decimal (a redundant leading zero makes a string: `007`) or `0x`/`0o`/`0b` prefixed, with
//! an optional sign; `_` separators are not digits; floats include `.inf` and `.nan`.

use std::num::ParseIntError;

/// `str::from_str_radix` of an integer type.
type FromRadix<T> = fn(&str, u32) -> Result<T, ParseIntError>;

const PREFIXES: [(&str, u32); 3] = [("0x", 16), ("0o", 8), ("0b", 2)];

/// True for the spellings of null other than the empty value.
pub(crate) fn is_null_word(text: &str) -> bool {
    matches!(text, "~" | "null" | "Null" | "NULL")
}

/// True for an empty value or a spelling of null.
pub(crate) fn is_null(text: &str) -> bool {
    text.is_empty() || is_null_word(text)
}

pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Digits with a redundant leading zero (`007`, `-01`): a string, not a number.
pub(crate) fn leading_zero_digits(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A non-negative integer: decimal, or prefixed with `0x`, `0o` or `0b`; one optional `+`.
pub(crate) fn parse_unsigned<T>(text: &str, from_radix: FromRadix<T>) -> Option<T> {
    let body = text.strip_prefix('+').unwrap_or(text);
    for (prefix, radix) in PREFIXES {
        if let Some(digits) = body.strip_prefix(prefix) {
            if digits.starts_with(['+', '-']) {
                return None;
            }
            return from_radix(digits, radix).ok();
        }
    }
    if body.starts_with(['+', '-']) || leading_zero_digits(text) {
        return None;
    }
    from_radix(body, 10).ok()
}

/// A negative integer (`-5`, `-0x1F`); also any decimal the type can hold.
pub(crate) fn parse_negative<T>(text: &str, from_radix: FromRadix<T>) -> Option<T> {
    for (prefix, radix) in PREFIXES {
        if let Some(digits) = text.strip_prefix('-').and_then(|t| t.strip_prefix(prefix)) {
            return from_radix(&format!("-{digits}"), radix).ok();
        }
    }
    if leading_zero_digits(text) {
        return None;
    }
    from_radix(text, 10).ok()
}

/// An integer of either sign, for signed targets.
pub(crate) fn parse_signed<T>(text: &str, from_radix: FromRadix<T>) -> Option<T> {
    let body = match text.strip_prefix('+') {
        Some(body) if body.starts_with(['+', '-']) => return None,
        Some(body) => body,
        None => text,
    };
    for (prefix, radix) in PREFIXES {
        if let Some(digits) = body.strip_prefix(prefix) {
            if digits.starts_with(['+', '-']) {
                return None;
            }
            return from_radix(digits, radix).ok();
        }
    }
    if text.starts_with('-') && !leading_zero_digits(text) {
        return parse_negative(text, from_radix);
    }
    if leading_zero_digits(text) {
        return None;
    }
    from_radix(body, 10).ok()
}

/// A float: decimal with optional fraction and exponent, `.inf` (signed) or `.nan`.
pub(crate) fn parse_f64(text: &str) -> Option<f64> {
    let body = match text.strip_prefix('+') {
        Some(body) if body.starts_with(['+', '-']) => return None,
        Some(body) => body,
        None => text,
    };
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return Some(f64::INFINITY);
    }
    if matches!(text, "-.inf" | "-.Inf" | "-.INF") {
        return Some(f64::NEG_INFINITY);
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    body.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// What an untagged plain scalar resolves to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    F64(f64),
    Str,
}

/// Resolves an integer, trying the narrowest representation first.
pub(crate) fn resolve_int(text: &str) -> Option<Resolved> {
    if let Some(v) = parse_unsigned(text, u64::from_str_radix) {
        return Some(Resolved::U64(v));
    }
    if let Some(v) = parse_negative(text, i64::from_str_radix) {
        return Some(Resolved::I64(v));
    }
    if let Some(v) = parse_unsigned(text, u128::from_str_radix) {
        return Some(Resolved::U128(v));
    }
    parse_negative(text, i128::from_str_radix).map(Resolved::I128)
}

/// Resolves an untagged plain scalar.
pub(crate) fn resolve_plain(text: &str) -> Resolved {
    if is_null(text) {
        return Resolved::Null;
    }
    if let Some(b) = parse_bool(text) {
        return Resolved::Bool(b);
    }
    if let Some(int) = resolve_int(text) {
        return int;
    }
    if !leading_zero_digits(text)
        && let Some(f) = parse_f64(text)
    {
        return Resolved::F64(f);
    }
    Resolved::Str
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_2_core_schema() {
        for (text, want) in [
            ("", Resolved::Null),
            ("~", Resolved::Null),
            ("NULL", Resolved::Null),
            ("true", Resolved::Bool(true)),
            ("False", Resolved::Bool(false)),
            ("yes", Resolved::Str),
            ("no", Resolved::Str),
            ("on", Resolved::Str),
            ("off", Resolved::Str),
            ("y", Resolved::Str),
            ("tRuE", Resolved::Str),
            ("9092", Resolved::U64(9092)),
            ("+5", Resolved::U64(5)),
            ("-5", Resolved::I64(-5)),
            ("-0", Resolved::I64(0)),
            ("0x1F", Resolved::U64(31)),
            ("0o17", Resolved::U64(15)),
            ("0b101", Resolved::U64(5)),
            ("-0x10", Resolved::I64(-16)),
            ("0X1F", Resolved::Str),
            ("0x-1", Resolved::Str),
            ("+-5", Resolved::Str),
            ("007", Resolved::Str),
            ("017", Resolved::Str),
            ("1_000", Resolved::Str),
            ("1:30", Resolved::Str),
            ("99999999999999999999", Resolved::U128(99_999_999_999_999_999_999)),
            ("-99999999999999999999", Resolved::I128(-99_999_999_999_999_999_999)),
            ("1.5", Resolved::F64(1.5)),
            ("1e3", Resolved::F64(1000.0)),
            (".5", Resolved::F64(0.5)),
            (".inf", Resolved::F64(f64::INFINITY)),
            ("-.Inf", Resolved::F64(f64::NEG_INFINITY)),
            ("+.inf", Resolved::F64(f64::INFINITY)),
            ("inf", Resolved::Str),
            ("infinity", Resolved::Str),
            ("1e999", Resolved::Str),
            ("2001-12-14", Resolved::Str),
            ("127.0.0.1", Resolved::Str),
        ] {
            assert_eq!(resolve_plain(text), want, "{text:?}");
        }
        assert!(matches!(resolve_plain(".nan"), Resolved::F64(f) if f.is_nan()));
        assert_eq!(resolve_plain("+.nan"), Resolved::Str);
    }

    #[test]
    fn typed_integers() {
        assert_eq!(parse_unsigned("+8192", u64::from_str_radix), Some(8192));
        assert_eq!(parse_unsigned("-1", u64::from_str_radix), None);
        assert_eq!(parse_unsigned("08192", u64::from_str_radix), None);
        assert_eq!(parse_unsigned("0x2000", u64::from_str_radix), Some(8192));
        assert_eq!(parse_signed("-0x10", i64::from_str_radix), Some(-16));
        assert_eq!(parse_signed("+7", i64::from_str_radix), Some(7));
        assert_eq!(parse_signed("-07", i64::from_str_radix), None);
        assert_eq!(parse_signed("++7", i64::from_str_radix), None);
    }
}
