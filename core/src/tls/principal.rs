//! The Kafka principal of a TLS client, from its certificate's subject.
//!
//! Kafka's `ssl.principal.mapping.rules`: a list of `DEFAULT` and
//! `RULE:pattern/replacement/[LU]` entries, tried in order, first match wins.
//! A rule matches when its pattern matches the *whole* distinguished name;
//! the result is then Java's `replaceAll(pattern, replacement)`, optionally
//! lower- or upper-cased. The name is rendered the way Java's
//! `X500Principal.getName(RFC2253)` renders it, which is what the rules were
//! written against. A client without a certificate (one-way TLS) is
//! [`ANONYMOUS`].

use std::fmt;

use regex::{Captures, Regex};
use rustls::pki_types::CertificateDer;
use x509_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

/// The identity of a TLS client that presented no certificate (seed 000).
pub const ANONYMOUS: &str = "$anonymous";

/// The rules used when none are configured: seed 000's "mTLS => certificate CN".
pub const DEFAULT_RULES: &str = "RULE:^CN=([^,]+).*$/$1/,DEFAULT";

/// Maps subject distinguished names to principals.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace(Box<ReplaceRule>),
}

#[derive(Debug, Clone)]
struct ReplaceRule {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
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

/// Why no principal could be derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalError {
    /// The client certificate could not be parsed.
    Certificate {
        /// x509-parser's reason.
        reason: String,
    },
    /// No rule matched the subject (possible when `DEFAULT` is not the last rule).
    NoMatchingRule {
        /// The subject, RFC 2253.
        dn: String,
    },
}

impl fmt::Display for PrincipalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalError::Certificate { reason } => {
                write!(f, "cannot read the client certificate: {reason}")
            }
            PrincipalError::NoMatchingRule { dn } => write!(f, "no principal mapping rule applies to {dn:?}"),
        }
    }
}

impl std::error::Error for PrincipalError {}

impl Default for PrincipalMapper {
    /// Seed 000's rules, [`DEFAULT_RULES`].
    fn default() -> Self {
        let default_rule = ReplaceRule::new(r"^CN=([^,]+).*$", "$1", Case::Keep);
        match default_rule {
            Ok(rule) => PrincipalMapper { rules: vec![Rule::Replace(Box::new(rule)), Rule::Default] },
            // Unreachable with a constant, valid pattern; DEFAULT alone is still sound.
            Err(_) => PrincipalMapper { rules: vec![Rule::Default] },
        }
    }
}

impl PrincipalMapper {
    /// Parses Kafka's single-string form: rules separated by commas (commas
    /// inside a pattern or replacement are part of it), blanks around rules
    /// ignored, empty entries skipped.
    pub fn parse(rules: &str) -> Result<Self, RuleError> {
        Self::from_rules([rules])
    }

    /// Parses a list of rules, as in the YAML configuration. Each entry may
    /// itself hold several comma-separated rules.
    pub fn from_rules<I, S>(entries: I) -> Result<Self, RuleError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut rules = Vec::new();
        for entry in entries {
            parse_rule_list(entry.as_ref(), &mut rules)?;
        }
        if rules.is_empty() {
            return Err(RuleError::NoRules);
        }
        Ok(PrincipalMapper { rules })
    }

    /// The principal for a subject DN (RFC 2253 form): the first rule that applies.
    pub fn map(&self, dn: &str) -> Result<String, PrincipalError> {
        self.rules
            .iter()
            .find_map(|rule| match rule {
                Rule::Default => Some(dn.to_owned()),
                Rule::Replace(rule) => rule.apply(dn),
            })
            .ok_or_else(|| PrincipalError::NoMatchingRule { dn: dn.to_owned() })
    }

    /// The principal of a TLS client: [`ANONYMOUS`] without a certificate,
    /// else its end-entity certificate's subject through the rules.
    pub fn principal(
        &self,
        peer_certificates: Option<&[CertificateDer<'_>]>,
    ) -> Result<String, PrincipalError> {
        match peer_certificates.and_then(|chain| chain.first()) {
            None => Ok(ANONYMOUS.to_owned()),
            Some(cert) => self.map(&subject_rfc2253(cert)?),
        }
    }
}

/// The rules in Kafka's single-string form.
impl fmt::Display for PrincipalMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match rule {
                Rule::Default => f.write_str("DEFAULT")?,
                Rule::Replace(rule) => {
                    let flag = match rule.case {
                        Case::Keep => "",
                        Case::Lower => "L",
                        Case::Upper => "U",
                    };
                    write!(f, "RULE:{}/{}/{flag}", rule.source, rule.replacement_source)?;
                }
            }
        }
        Ok(())
    }
}

/// Scans `text` for rules, appending them to `out`.
fn parse_rule_list(text: &str, out: &mut Vec<Rule>) -> Result<(), RuleError> {
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
    fn new(pattern: &str, replacement: &str, case: Case) -> Result<Self, RuleError> {
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

/// The subject of a DER certificate as Java's `X500Principal.getName(RFC2253)`
/// renders it.
pub fn subject_rfc2253(cert: &[u8]) -> Result<String, PrincipalError> {
    let (_, parsed) =
        X509Certificate::from_der(cert).map_err(|e| PrincipalError::Certificate { reason: e.to_string() })?;
    Ok(name_rfc2253(parsed.subject()))
}

/// An X.500 name as RFC 2253 text, Java style: most specific RDN first, the
/// attributes of a multi-valued RDN joined by `+` in encoded order, well-known
/// types by keyword, others as `OID=#hex-of-DER`.
pub fn name_rfc2253(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = attribute.attr_type().to_id_string();
            let value = attribute.attr_value();
            match (keyword(&oid), string_value(value)) {
                (Some(keyword), Some(text)) => {
                    out.push_str(keyword);
                    out.push('=');
                    escape_value(&text, &mut out);
                }
                (keyword, _) => {
                    out.push_str(keyword.unwrap_or(&oid));
                    out.push_str("=#");
                    push_der_hex(value, &mut out);
                }
            }
        }
    }
    out
}

/// The RFC 2253 keywords Java emits (`AVAKeyword` entries marked RFC 2253).
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The text of a directory string value, for the string types Java renders as
/// text (UTF8, Printable, T61, IA5, General, BMP); `None` for the others.
///
/// Like Java 17's `AVA.toRFC2253String`, the content bytes are decoded as UTF-8
/// whatever the type, so a BMPString comes out with `\00` escapes: rules
/// written against Kafka's output see the same text.
fn string_value(value: &Any<'_>) -> Option<String> {
    if value.header.class() != Class::Universal {
        return None;
    }
    match value.header.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::T61String
        | Tag::Ia5String
        | Tag::GeneralString
        | Tag::BmpString => Some(String::from_utf8_lossy(value.data).into_owned()),
        _ => None,
    }
}

/// Java's RFC 2253 escaping: `,=+<>#;"\` get a backslash, NUL becomes `\00`,
/// leading and trailing spaces (and CRs) get a backslash.
fn escape_value(text: &str, out: &mut String) {
    let chars: Vec<char> = text.chars().collect();
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = chars.iter().take_while(|c| blank(c)).count();
    let trail = chars.iter().rev().take_while(|c| blank(c)).count();
    let trail_start = chars.len().saturating_sub(trail).max(lead);
    for (i, c) in chars.iter().enumerate() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(*c);
            }
            '\0' => out.push_str("\\00"),
            c if i < lead || i >= trail_start => {
                out.push('\\');
                out.push(*c);
            }
            c => out.push(*c),
        }
    }
}

/// Lower-case hex of the value's DER encoding (identifier, length, contents).
fn push_der_hex(value: &Any<'_>, out: &mut String) {
    let mut push = |b: u8| {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    };
    match value.header.raw_tag() {
        Some(raw) => raw.iter().copied().for_each(&mut push),
        None => {
            let class = (value.header.class() as u8) << 6;
            let constructed = if value.header.is_constructed() { 0x20 } else { 0 };
            let number = value.header.tag().0;
            if number < 31 {
                push(class | constructed | number as u8);
            } else {
                push(class | constructed | 0x1f);
                let mut groups = Vec::new();
                let mut n = number;
                loop {
                    groups.push((n & 0x7f) as u8);
                    n >>= 7;
                    if n == 0 {
                        break;
                    }
                }
                let last = groups.len() - 1;
                for (i, g) in groups.iter().rev().enumerate() {
                    push(if i < last { g | 0x80 } else { *g });
                }
            }
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        push(0x80 | significant.len() as u8);
        significant.into_iter().for_each(&mut push);
    }
    value.data.iter().copied().for_each(push);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::config::{PemItem, certificates_from_pem};

    fn cert(pem: &[u8]) -> CertificateDer<'static> {
        certificates_from_pem(pem, PemItem::ClientCertificate).unwrap().remove(0)
    }

    fn mapped(rules: &str, dn: &str) -> String {
        PrincipalMapper::parse(rules).unwrap().map(dn).unwrap()
    }

    /// Kafka's `SslPrincipalMapperTest.testValidRules`.
    #[test]
    fn kafka_valid_rules() {
        for rules in [
            "DEFAULT",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
            "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
            "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
            "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
        ] {
            PrincipalMapper::parse(rules).unwrap_or_else(|e| panic!("{rules}: {e}"));
        }
    }

    /// Kafka's `SslPrincipalMapperTest.testInvalidRules`.
    #[test]
    fn kafka_invalid_rules() {
        for rules in [
            "default",
            "DEFAUL",
            "DEFAULT/L",
            "DEFAULT/U",
            "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
            "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        ] {
            assert!(PrincipalMapper::parse(rules).is_err(), "{rules} accepted");
        }
    }

    #[test]
    fn rule_errors_say_what_is_wrong() {
        let err = |rules: &str| PrincipalMapper::parse(rules).unwrap_err();
        assert!(matches!(
            err("DEFAULT/L"),
            RuleError::Syntax { reason: SyntaxReason::Unexpected { .. }, .. }
        ));
        assert!(matches!(err("RULE:a/b"), RuleError::Syntax { reason: SyntaxReason::MissingSlash, .. }));
        assert!(matches!(err("RULE:a\\"), RuleError::Syntax { reason: SyntaxReason::TrailingBackslash, .. }));
        assert!(matches!(err("foo"), RuleError::Syntax { reason: SyntaxReason::UnknownRule, .. }));
        assert!(matches!(err("RULE:(a/$1/"), RuleError::Pattern { .. }));
        assert!(matches!(err("RULE:(?=a)b/x/"), RuleError::Pattern { .. }), "no look-around in Rust regex");
        assert!(matches!(
            err("RULE:abc/$1/"),
            RuleError::Replacement { reason: ReplacementReason::NoSuchGroup(1), .. }
        ));
        assert!(matches!(
            err("RULE:(a)/$x/"),
            RuleError::Replacement { reason: ReplacementReason::IllegalGroupReference, .. }
        ));
        assert!(matches!(
            err("RULE:(a)/${nope}/"),
            RuleError::Replacement { reason: ReplacementReason::NoSuchName(_), .. }
        ));
        assert!(matches!(err(" , ,"), RuleError::NoRules));
        let text = err("RULE:^CN=(.*?)$/$1/L/U").to_string();
        assert!(text.contains("RULE:^CN=(.*?)$/$1/L/U") && text.contains("\"/U\""), "{text}");
    }

    /// Kafka's `SslPrincipalMapperTest.testSslPrincipalMapper`.
    #[test]
    fn kafka_mapper_examples() {
        let rules = [
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
            "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
            "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
            "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
            "DEFAULT",
        ];
        let list = PrincipalMapper::from_rules(rules).unwrap();
        let joined = PrincipalMapper::parse(&rules.join(", ")).unwrap();
        for mapper in [list, joined] {
            assert_eq!(mapper.map("CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(), "duke");
            assert_eq!(mapper.map("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US").unwrap(), "duke@sme");
            assert_eq!(mapper.map("cn=duke,ou=sme,dc=mycp,dc=com").unwrap(), "DUKE@SME");
            assert_eq!(mapper.map("cN=duke,OU=JavaSoft,O=Sun Microsystems").unwrap(), "DUKE");
            assert_eq!(
                mapper.map("OU=JavaSoft,O=Sun Microsystems,C=US").unwrap(),
                "OU=JavaSoft,O=Sun Microsystems,C=US"
            );
        }
    }

    /// The example in Kafka's `ssl.principal.mapping.rules` documentation.
    #[test]
    fn kafka_documentation_example() {
        let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
                     RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
                     RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\
                     DEFAULT";
        let mapper = PrincipalMapper::parse(rules).unwrap();
        assert_eq!(
            mapper.map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").unwrap(),
            "serviceuser"
        );
        assert_eq!(
            mapper.map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").unwrap(),
            "adminuser@admin"
        );
    }

    /// Kafka's `SslPrincipalMapperTest.testRulesSplitting`, rendered our way.
    #[test]
    fn kafka_rule_splitting() {
        let rules = |text: &str| PrincipalMapper::parse(text).map(|m| m.rules.len()).unwrap_or(0);
        assert_eq!(rules("DEFAULT"), 1);
        assert_eq!(rules("RULE://"), 1);
        assert_eq!(rules("RULE:/.*/"), 1);
        assert_eq!(rules("RULE:/.*/L"), 1);
        assert_eq!(rules("RULE://,DEFAULT"), 2);
        assert_eq!(rules("  RULE:// ,  DEFAULT  "), 2);
        assert_eq!(rules("  RULE:   /     / ,  DEFAULT  "), 2);
        assert_eq!(rules("  RULE:  /     /U   ,DEFAULT  "), 2);
        assert_eq!(rules("  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  "), 3);
        assert_eq!(rules(",,RULE://,,,DEFAULT,,"), 2);
        assert_eq!(rules(",  , RULE: /   /    ,,,   DEFAULT, ,   "), 2);
        assert_eq!(rules("     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,"), 2);
        assert_eq!(rules(r"RULE:\/\\\(\)\n\t/\/\//"), 1);
        assert_eq!(rules(r"RULE:\**\/+/*/L,RULE:\/*\**/**/"), 2);
        // Commas inside patterns and replacements belong to them.
        let mapper = PrincipalMapper::parse(
            r"RULE:,RULE:,/,RULE:,\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, /DEFAULT/,DEFAULT",
        )
        .unwrap();
        assert_eq!(mapper.rules.len(), 5);
        assert_eq!(mapper.map(",RULE:,").unwrap(), ",RULE:,/");
        assert_eq!(mapper.map(",").unwrap(), "RULE:,");
        assert_eq!(mapper.map(", DEFAULT, ").unwrap(), "DEFAULT");
        assert_eq!(mapper.map("other").unwrap(), "other");
        // Escaped slashes: the pattern matches a '/', the replacement writes one.
        assert_eq!(mapped(r"RULE:^a\/(b)$/x\/$1/", "a/b"), "x/b");
    }

    /// Kafka's `SslPrincipalMapperTest.testCommaWithWhitespace`.
    #[test]
    fn kafka_comma_with_whitespace() {
        let mapper = PrincipalMapper::parse(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT").unwrap();
        assert_eq!(mapper.map(r"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz").unwrap(), r"Tkac\, Adam");
    }

    /// Replacement semantics checked against Java 17's `String.replaceAll`.
    #[test]
    fn java_replacement_semantics() {
        assert_eq!(mapped("RULE:.*/x/", "abc"), "xx", "Java also replaces the empty match at the end");
        assert_eq!(mapped("RULE:(a)(b)(c)/$12/", "abc"), "a2");
        assert_eq!(mapped("RULE:(a)(b)(c)/$4/", "abc"), "$4", "Kafka keeps an unknown group literal");
        assert_eq!(mapped(r"RULE:(a)(b)(c)/\$1/", "abc"), "$1");
        assert_eq!(mapped("RULE:(a)(b)(c)/$0-$3/", "abc"), "abc-c");
        assert_eq!(mapped("RULE:(a)(b)(c)/$01/", "abc"), "a");
        assert_eq!(mapped("RULE:(?<first>a)bc/${first}!/", "abc"), "a!");
        assert_eq!(mapped("RULE:(x)?abc/[$1]/", "abc"), "[]");
        assert_eq!(mapped("RULE:^CN=(.*)$/$1/U", "CN=straße"), "STRASSE");
        // Whole-string match: a partial match does not apply the rule.
        let mapper = PrincipalMapper::parse("RULE:CN=(\\w+)/$1/").unwrap();
        assert_eq!(mapper.map("CN=a,OU=b"), Err(PrincipalError::NoMatchingRule { dn: "CN=a,OU=b".into() }));
    }

    /// Subjects rendered as OpenJDK 17 renders them (see testdata/README.md).
    #[test]
    fn subjects_match_java_rfc2253() {
        assert_eq!(
            subject_rfc2253(&cert(include_bytes!("testdata/rich.pem"))).unwrap(),
            r"2.5.4.5=#13023432,1.2.840.113549.1.9.1=#161064756b65406578616d706c652e636f6d,CN=Duke\=\#1+UID=duke,OU=Java\+Soft,O=Sun\, Inc.,L=Fulton,ST=MD,C=US,DC=example,DC=com"
        );
        assert_eq!(
            subject_rfc2253(&cert(include_bytes!("testdata/odd.pem"))).unwrap(),
            "CN=\\ \\ Lead\\;trail\\<\\> \\\"q\\\" \u{e9}\\\\\\ ,2.5.4.12=#0c024472,OU=T61 value,\
             O=\\00S\\00\u{fffd}\\00n\\00\\+\\00C\\00o,L=#1c10000000550000006e0000006900000076,\
             ST=\\#hash,DC=x\\00y,C=US"
        );
        assert_eq!(subject_rfc2253(&cert(crate::tls::test_util::CLIENT1)).unwrap(), "CN=client1");
        assert!(matches!(subject_rfc2253(b"not a certificate"), Err(PrincipalError::Certificate { .. })));
    }

    #[test]
    fn default_rules_take_the_cn() {
        let mapper = PrincipalMapper::default();
        assert_eq!(mapper.map("CN=client1,OU=Kafka,O=Example").unwrap(), "client1");
        assert_eq!(mapper.map("OU=Kafka,O=Example").unwrap(), "OU=Kafka,O=Example");
        let parsed = PrincipalMapper::parse(DEFAULT_RULES).unwrap();
        assert_eq!(parsed.to_string(), mapper.to_string());
        assert_eq!(mapper.to_string(), "RULE:^CN=([^,]+).*$/$1/, DEFAULT");
        let rich = cert(include_bytes!("testdata/rich.pem"));
        // The most specific RDN is not CN here, so DEFAULT applies.
        assert!(mapper.principal(Some(&[rich])).unwrap().starts_with("2.5.4.5=#13023432,"));
    }

    #[test]
    fn one_way_tls_is_anonymous() {
        let mapper = PrincipalMapper::default();
        assert_eq!(mapper.principal(None).unwrap(), ANONYMOUS);
        assert_eq!(mapper.principal(Some(&[])).unwrap(), "$anonymous");
    }

    #[test]
    fn no_matching_rule() {
        let mapper = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/").unwrap();
        assert_eq!(mapper.map("OU=x"), Err(PrincipalError::NoMatchingRule { dn: "OU=x".into() }));
    }

    #[test]
    fn value_escaping() {
        let escaped = |text: &str| {
            let mut out = String::new();
            escape_value(text, &mut out);
            out
        };
        assert_eq!(escaped("plain"), "plain");
        assert_eq!(escaped(" a b "), "\\ a b\\ ");
        assert_eq!(escaped("   "), "\\ \\ \\ ");
        assert_eq!(escaped("\r x"), "\\\r\\ x");
        assert_eq!(escaped("a,b=c+d<e>f#g;h\"i\\j"), "a\\,b\\=c\\+d\\<e\\>f\\#g\\;h\\\"i\\\\j");
        assert_eq!(escaped("nul\0"), "nul\\00");
        assert_eq!(escaped(""), "");
    }
}
