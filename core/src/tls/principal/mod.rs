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
//!
//! The rules' parser and Java emulation live in `rules` (their errors,
//! [`RuleError`] and its reasons, are re-exported here), the subject rendering
//! in `dn` ([`subject_rfc2253`]).

use std::fmt;

use rustls::pki_types::CertificateDer;

mod dn;
mod rules;
#[cfg(test)]
mod tests;

pub use dn::subject_rfc2253;
use rules::{Case, ReplaceRule, Rule, parse_rule_list};
pub use rules::{ReplacementReason, RuleError, SyntaxReason};

/// The identity of a TLS client that presented no certificate (seed 000).
pub const ANONYMOUS: &str = "$anonymous";

/// The rules used when none are configured: seed 000's "mTLS => certificate CN".
pub const DEFAULT_RULES: &str = "RULE:^CN=([^,]+).*$/$1/,DEFAULT";

/// Maps subject distinguished names to principals.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

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
            .find_map(|rule| rule.apply(dn))
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
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}
