//! Kafka's `ssl.principal.mapping.rules`: parsing `DEFAULT` and
//! `RULE:pattern/replacement/[LU]` and applying one rule to a distinguished
//! name with Java's `replaceAll` semantics. Apart from the mapper because the
//! Java regex and replacement emulation is a concern of its own.

use std::fmt;

use regex::{Captures, Regex};

/// One mapping rule.
#[derive(Debug, Clone)]
pub(super) enum Rule {
    Default,
    Replace(Box<ReplaceRule>),
}

/// A `RULE:pattern/replacement/[LU]` entry, compiled.
#[derive(Debug, Clone)]
pub(super) struct ReplaceRule {
    /// The pattern as written, for display.
    source: String,
    /// The replacement as written, for display.
    replacement_source: String,
    /// The pattern, for Java `find()`-style iteration.
    pattern: Regex,
    /// The pattern anchored at both ends, for Java `matches()`.
    whole: Regex,
    replacement: Vec<Piece>,
    case: Case,
}

/// The `L`/`U` flag of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Case {
    Keep,
    Lower,
    Upper,
}

/// A replacement, pre-parsed with Java's `Matcher.appendReplacement` rules.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
    Named(String),
}

/// Why a mapping rule is refused.
#[derive(Debug, Clone)]
pub enum RuleError {
    /// The text is not `DEFAULT` or `RULE:pattern/replacement/[LU]`.
    Syntax {
        /// The offending rule text.
        rule: String,
        /// What is wrong.
        reason: SyntaxReason,
    },
    /// The pattern is not a valid regular expression (for Rust's `regex` crate:
    /// no look-around or back-references).
    Pattern {
        /// The pattern.
        pattern: String,
        /// The regex error.
        error: regex::Error,
    },
    /// The replacement refers to something the pattern does not have, or uses
    /// `$` or `\` in a way Java refuses.
    Replacement {
        /// The replacement text.
        replacement: String,
        /// What is wrong.
        reason: ReplacementReason,
    },
    /// The list holds no rule at all (every DN would be refused).
    NoRules,
}

/// What is wrong with a rule's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxReason {
    /// Neither `DEFAULT` nor `RULE:` (both are case-sensitive).
    UnknownRule,
    /// The pattern or the replacement is not closed by an unescaped `/`.
    MissingSlash,
    /// A `\` at the very end escapes nothing.
    TrailingBackslash,
    /// Text after the rule that is neither a flag (`L`, `U`) nor `,`.
    Unexpected {
        /// The unexpected text.
        rest: String,
    },
}

/// What is wrong with a replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplacementReason {
    /// `$` not followed by a digit or `{name}`.
    IllegalGroupReference,
    /// `$n` while the pattern has no capturing group.
    NoSuchGroup(usize),
    /// `${name}` while the pattern has no group of that name.
    NoSuchName(String),
    /// A `\` at the very end escapes nothing.
    TrailingBackslash,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Syntax { rule, reason } => {
                write!(f, "invalid principal mapping rule {rule:?}: ")?;
                match reason {
                    SyntaxReason::UnknownRule => {
                        f.write_str("expected DEFAULT or RULE:pattern/replacement/[LU]")
                    }
                    SyntaxReason::MissingSlash => {
                        f.write_str("pattern and replacement must each end with '/'")
                    }
                    SyntaxReason::TrailingBackslash => f.write_str("a trailing '\\' escapes nothing"),
                    SyntaxReason::Unexpected { rest } => write!(f, "unexpected {rest:?} after the rule"),
                }
            }
            RuleError::Pattern { pattern, error } => {
                write!(f, "invalid principal mapping pattern {pattern:?}: {error}")
            }
            RuleError::Replacement { replacement, reason } => {
                write!(f, "invalid principal mapping replacement {replacement:?}: ")?;
                match reason {
                    ReplacementReason::IllegalGroupReference => {
                        f.write_str("'$' must be followed by a group number or {name}")
                    }
                    ReplacementReason::NoSuchGroup(n) => write!(f, "the pattern has no group {n}"),
                    ReplacementReason::NoSuchName(name) => {
                        write!(f, "the pattern has no group named {name:?}")
                    }
                    ReplacementReason::TrailingBackslash => f.write_str("a trailing '\\' escapes nothing"),
                }
            }
            RuleError::NoRules => f.write_str("no principal mapping rule given"),
        }
    }
}

impl std::error::Error for RuleError {}

impl Rule {
    /// The principal this rule gives `dn`, or `None` when it does not apply.
    pub(super) fn apply(&self, dn: &str) -> Option<String> {
        match self {
            Rule::Default => Some(dn.to_owned()),
            Rule::Replace(rule) => rule.apply(dn),
        }
    }
}

/// The rule as Kafka writes it.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Default => f.write_str("DEFAULT"),
            Rule::Replace(rule) => {
                let flag = match rule.case {
                    Case::Keep => "",
                    Case::Lower => "L",
                    Case::Upper => "U",
                };
                write!(f, "RULE:{}/{}/{flag}", rule.source, rule.replacement_source)
            }
        }
    }
}

/// Scans `text` for rules, appending them to `out`.
pub(super) fn parse_rule_list(text: &str, out: &mut Vec<Rule>) -> Result<(), RuleError> {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(());
        }
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
            continue;
        }
        let start = rest;
        let rule = if let Some(after) = rest.strip_prefix("DEFAULT") {
            rest = after;
            Rule::Default
        } else if let Some(after) = rest.strip_prefix("RULE:") {
            let syntax = |reason| RuleError::Syntax { rule: rule_text(start), reason };
            let (pattern, after) = until_slash(after).map_err(syntax)?;
            let (replacement, after) = until_slash(after).map_err(syntax)?;
            let (case, after) = match after.as_bytes().first() {
                Some(b'L') => (Case::Lower, after.get(1..).unwrap_or("")),
                Some(b'U') => (Case::Upper, after.get(1..).unwrap_or("")),
                _ => (Case::Keep, after),
            };
            rest = after;
            Rule::Replace(Box::new(ReplaceRule::new(pattern, replacement, case)?))
        } else {
            return Err(RuleError::Syntax { rule: rule_text(start), reason: SyntaxReason::UnknownRule });
        };
        let after = rest.trim_start();
        if !after.is_empty() && !after.starts_with(',') {
            let unexpected = rule_text(after).to_owned();
            return Err(RuleError::Syntax {
                rule: rule_text(start),
                reason: SyntaxReason::Unexpected { rest: unexpected },
            });
        }
        out.push(rule);
        rest = after;
    }
}

/// The rule starting at `text`, up to the next comma (for error messages).
fn rule_text(text: &str) -> String {
    text.split(',').next().unwrap_or(text).trim().to_owned()
}

/// Splits at the first `/` not escaped by `\`; escapes are kept verbatim.
fn until_slash(text: &str) -> Result<(&str, &str), SyntaxReason> {
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            // The guard consumes the escaped character, so an escaped '/' never ends the part.
            '\\' if chars.next().is_none() => return Err(SyntaxReason::TrailingBackslash),
            '/' => return Ok((text.get(..i).unwrap_or(""), text.get(i + 1..).unwrap_or(""))),
            _ => {}
        }
    }
    Err(SyntaxReason::MissingSlash)
}

impl ReplaceRule {
    pub(super) fn new(pattern: &str, replacement: &str, case: Case) -> Result<Self, RuleError> {
        let compile = |text: &str| {
            Regex::new(text).map_err(|error| RuleError::Pattern { pattern: pattern.to_owned(), error })
        };
        // Compiling the pattern alone first proves it balanced, so wrapping it
        // cannot change its meaning.
        let compiled = compile(pattern)?;
        let whole = compile(&format!(r"\A(?:{pattern})\z"))?;
        let pieces = parse_replacement(replacement, &compiled)
            .map_err(|reason| RuleError::Replacement { replacement: replacement.to_owned(), reason })?;
        Ok(ReplaceRule {
            source: pattern.to_owned(),
            replacement_source: replacement.to_owned(),
            pattern: compiled,
            whole,
            replacement: pieces,
            case,
        })
    }

    fn apply(&self, dn: &str) -> Option<String> {
        if !self.whole.is_match(dn) {
            return None;
        }
        let replaced = java_replace_all(&self.pattern, dn, &self.replacement);
        Some(match self.case {
            Case::Keep => replaced,
            Case::Lower => replaced.to_lowercase(),
            Case::Upper => replaced.to_uppercase(),
        })
    }
}

/// Parses a Java replacement string, with Kafka's treatment of `$n` beyond
/// the group count (kept literally) applied first.
fn parse_replacement(text: &str, pattern: &Regex) -> Result<Vec<Piece>, ReplacementReason> {
    let groups = pattern.captures_len().saturating_sub(1);
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.push(chars.next().ok_or(ReplacementReason::TrailingBackslash)?),
            '$' => match chars.peek().copied() {
                Some('{') => {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() => name.push(c),
                            _ => return Err(ReplacementReason::IllegalGroupReference),
                        }
                    }
                    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                        return Err(ReplacementReason::IllegalGroupReference);
                    }
                    if !pattern.capture_names().flatten().any(|n| n == name) {
                        return Err(ReplacementReason::NoSuchName(name));
                    }
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Named(name));
                }
                Some(d) if d.is_ascii_digit() => {
                    let mut digits = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        digits.push(d);
                        chars.next();
                    }
                    match group_reference(&digits, groups) {
                        Reference::Group(index, used) => {
                            flush(&mut literal, &mut pieces);
                            pieces.push(Piece::Group(index));
                            literal.push_str(digits.get(used..).unwrap_or(""));
                        }
                        Reference::Literal => {
                            literal.push('$');
                            literal.push_str(&digits);
                        }
                        Reference::Missing(index) => return Err(ReplacementReason::NoSuchGroup(index)),
                    }
                }
                _ => return Err(ReplacementReason::IllegalGroupReference),
            },
            c => literal.push(c),
        }
    }
    flush(&mut literal, &mut pieces);
    Ok(pieces)
}

enum Reference {
    /// Group `index`, spelled by the first `used` digits; later digits are text.
    Group(usize, usize),
    /// Kafka escapes a reference beyond the group count: `$` and digits as text.
    Literal,
    /// Java would fail at match time; refused up front.
    Missing(usize),
}

/// Resolves `$digits` the way Kafka's `SslPrincipalMapper` then Java's
/// `appendReplacement` do: Kafka keeps `$n` literal when even its leading
/// digits name no group (unless the pattern has no groups at all, where Java
/// fails); Java takes the longest digit prefix that names a group.
fn group_reference(digits: &str, groups: usize) -> Reference {
    let values: Vec<usize> = digits.bytes().map(|b| usize::from(b - b'0')).collect();
    let Some(&first) = values.first() else {
        return Reference::Literal;
    };
    if first != 0 && groups > 0 {
        // Kafka: shorten from the right while above the group count and >= 10.
        let mut value = digits.parse::<usize>().unwrap_or(usize::MAX);
        while value > groups && value >= 10 {
            value /= 10;
        }
        if value > groups {
            return Reference::Literal;
        }
    }
    if first > groups {
        return Reference::Missing(first);
    }
    let mut index = first;
    let mut used = 1;
    for &digit in values.iter().skip(1) {
        let next = index.saturating_mul(10).saturating_add(digit);
        if next > groups {
            break;
        }
        index = next;
        used += 1;
    }
    Reference::Group(index, used)
}

fn flush(literal: &mut String, pieces: &mut Vec<Piece>) {
    if !literal.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(literal)));
    }
}

/// Java's `String.replaceAll`: every match, left to right; after an empty
/// match the search moves on one character, after a non-empty one it resumes
/// at its end (so an empty match may follow, as in Java).
fn java_replace_all(pattern: &Regex, text: &str, replacement: &[Piece]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    // Each turn advances `from` or ends, so text.len() + 2 turns suffice.
    for _ in 0..text.len() + 2 {
        if from > text.len() {
            break;
        }
        let Some(captures) = pattern.captures_at(text, from) else { break };
        let Some(whole) = captures.get(0) else { break };
        out.push_str(text.get(copied..whole.start()).unwrap_or(""));
        expand(&captures, replacement, &mut out);
        copied = whole.end();
        from = if whole.is_empty() {
            match text.get(whole.end()..).and_then(|tail| tail.chars().next()) {
                Some(c) => whole.end() + c.len_utf8(),
                None => text.len() + 1,
            }
        } else {
            whole.end()
        };
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    out
}

fn expand(captures: &Captures<'_>, replacement: &[Piece], out: &mut String) {
    for piece in replacement {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Group(index) => out.push_str(captures.get(*index).map_or("", |m| m.as_str())),
            Piece::Named(name) => out.push_str(captures.name(name).map_or("", |m| m.as_str())),
        }
    }
}
