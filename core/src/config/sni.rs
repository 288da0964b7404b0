//! The `sni` naming rule, as configured: `upstream` is a regex over
//! upstream broker host names (it must match the whole name), `downstream`
//! a template for the name clients are told, with `<$1>`…`<$9>` for the
//! regex's capture groups and `<$id>` for the broker id.
//!
//! This is configuration data: it never changes while the proxy runs, and
//! the address rewriters use it to name brokers. The names actually learned
//! (to route connections back) are the proxy's state, in
//! [`SniRoutes`](crate::route::sni::SniRoutes).

use std::fmt;

use regex::Regex;
use rustls::pki_types::ServerName;

/// Why the SNI mapping configuration is refused.
#[derive(Debug, Clone)]
pub enum SniConfigError {
    /// `upstream` is not a valid regex.
    Regex {
        /// The regex as written.
        pattern: String,
        /// The regex error.
        error: regex::Error,
    },
    /// `downstream` has a placeholder other than `<$1>`…`<$9>` or `<$id>`.
    BadPlaceholder {
        /// The template.
        template: String,
        /// The placeholder found.
        placeholder: String,
    },
    /// `downstream` uses a capture group the regex does not have.
    NoSuchGroup {
        /// The template.
        template: String,
        /// The group number.
        group: usize,
        /// How many groups the regex has.
        groups: usize,
    },
    /// `downstream` has nothing that differs between brokers (neither `<$id>`
    /// nor a capture group): every broker would get the same name.
    ConstantTemplate {
        /// The template.
        template: String,
    },
}

impl fmt::Display for SniConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SniConfigError::Regex { pattern, error } => {
                write!(f, "sni.upstream {pattern:?} is not a valid regex: {error}")
            }
            SniConfigError::BadPlaceholder { template, placeholder } => write!(
                f,
                "sni.downstream {template:?}: unknown placeholder {placeholder:?} (use <$1>..<$9> or <$id>)"
            ),
            SniConfigError::NoSuchGroup { template, group, groups } => write!(
                f,
                "sni.downstream {template:?} uses <${group}> but sni.upstream has {groups} capture group(s)"
            ),
            SniConfigError::ConstantTemplate { template } => write!(
                f,
                "sni.downstream {template:?} has no <$id> or capture group: all brokers would share one name"
            ),
        }
    }
}

impl std::error::Error for SniConfigError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Group(usize),
    NodeId,
}

/// Why a broker's upstream host yields no client-visible name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The upstream host does not match `sni.upstream`.
    NoMatch {
        /// The upstream host.
        host: String,
        /// The regex.
        pattern: String,
    },
    /// The template produced something that is not a DNS name.
    InvalidName {
        /// The upstream host.
        host: String,
        /// What the template produced.
        name: String,
    },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::NoMatch { host, pattern } => {
                write!(f, "upstream host {host:?} does not match sni.upstream {pattern:?}")
            }
            NameError::InvalidName { host, name } => {
                write!(f, "upstream host {host:?} maps to {name:?}, which is not a valid DNS name")
            }
        }
    }
}

impl std::error::Error for NameError {}

/// Upstream host → client-visible name, from `sni.upstream` and `sni.downstream`.
#[derive(Debug, Clone)]
pub struct SniNames {
    pattern_text: String,
    pattern: Regex,
    template: Vec<Part>,
    advertised_port: u16,
}

impl SniNames {
    /// Builds the mapping from `sni.upstream`, `sni.downstream` and the port
    /// clients are told (the SNI listener's port, or its advertised override).
    pub fn new(upstream: &str, downstream: &str, advertised_port: u16) -> Result<Self, SniConfigError> {
        let regex_error = |error| SniConfigError::Regex { pattern: upstream.to_owned(), error };
        Regex::new(upstream).map_err(regex_error)?;
        // Compiled alone above, so the wrapper cannot change its meaning; the
        // whole host name must match, case-insensitively as DNS is.
        let pattern = Regex::new(&format!(r"(?i)\A(?:{upstream})\z")).map_err(regex_error)?;
        let groups = pattern.captures_len().saturating_sub(1);
        let template = parse_template(downstream, groups)?;
        Ok(SniNames { pattern_text: upstream.to_owned(), pattern, template, advertised_port })
    }

    /// The name clients are told for broker `node_id` at `upstream_host`.
    pub fn downstream_name(&self, node_id: i32, upstream_host: &str) -> Result<String, NameError> {
        let captures = self.pattern.captures(upstream_host).ok_or_else(|| NameError::NoMatch {
            host: upstream_host.to_owned(),
            pattern: self.pattern_text.clone(),
        })?;
        let mut name = String::new();
        for part in &self.template {
            match part {
                Part::Text(text) => name.push_str(text),
                Part::Group(index) => name.push_str(captures.get(*index).map_or("", |m| m.as_str())),
                Part::NodeId => name.push_str(&node_id.to_string()),
            }
        }
        let name = name.to_ascii_lowercase();
        match ServerName::try_from(name.as_str()) {
            Ok(ServerName::DnsName(_)) => Ok(name),
            _ => Err(NameError::InvalidName { host: upstream_host.to_owned(), name }),
        }
    }

    /// The port clients are told.
    pub fn advertised_port(&self) -> u16 {
        self.advertised_port
    }
}

/// Splits `downstream` into text and placeholders, checking each against
/// the regex's `groups`; a template that names every broker alike is refused.
fn parse_template(template: &str, groups: usize) -> Result<Vec<Part>, SniConfigError> {
    let mut parts = Vec::new();
    let mut rest = template;
    let mut varies = false;
    while !rest.is_empty() {
        match rest.find("<$") {
            None => {
                parts.push(Part::Text(rest.to_owned()));
                break;
            }
            Some(start) => {
                if start > 0 {
                    parts.push(Part::Text(rest.get(..start).unwrap_or("").to_owned()));
                }
                let after = rest.get(start + 2..).unwrap_or("");
                let end = after.find('>').ok_or_else(|| SniConfigError::BadPlaceholder {
                    template: template.to_owned(),
                    placeholder: rest.get(start..).unwrap_or("").to_owned(),
                })?;
                let inner = after.get(..end).unwrap_or("");
                let part = match inner.as_bytes() {
                    b"id" => Part::NodeId,
                    [digit @ b'1'..=b'9'] => {
                        let group = usize::from(digit - b'0');
                        if group > groups {
                            return Err(SniConfigError::NoSuchGroup {
                                template: template.to_owned(),
                                group,
                                groups,
                            });
                        }
                        Part::Group(group)
                    }
                    _ => {
                        return Err(SniConfigError::BadPlaceholder {
                            template: template.to_owned(),
                            placeholder: format!("<${inner}>"),
                        });
                    }
                };
                varies = true;
                parts.push(part);
                rest = after.get(end + 1..).unwrap_or("");
            }
        }
    }
    if !varies {
        return Err(SniConfigError::ConstantTemplate { template: template.to_owned() });
    }
    Ok(parts)
}

/// Rewrites broker addresses to their SNI names on the one proxy port. The
/// routes themselves are learned by the [`crate::proxy::Proxy`] from what
/// sessions observe; rewriting only computes names.
impl crate::rewrite::AddressMap for SniNames {
    fn advertised(&self, node_id: i32, host: &str, _port: i32) -> Option<crate::rewrite::Advertised<'_>> {
        let name = self.downstream_name(node_id, host).ok()?;
        Some(crate::rewrite::Advertised {
            host: std::borrow::Cow::Owned(name),
            port: i32::from(self.advertised_port()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors() {
        assert!(matches!(SniNames::new("(", "b<$id>.x", 1), Err(SniConfigError::Regex { .. })));
        assert!(matches!(SniNames::new("(a)|b)", "b<$id>.x", 1), Err(SniConfigError::Regex { .. })));
        assert!(matches!(
            SniNames::new("(.*)", "<$2>.x", 1),
            Err(SniConfigError::NoSuchGroup { group: 2, groups: 1, .. })
        ));
        assert!(matches!(SniNames::new("(.*)", "<$x>.x", 1), Err(SniConfigError::BadPlaceholder { .. })));
        assert!(matches!(SniNames::new("(.*)", "<$10>.x", 1), Err(SniConfigError::BadPlaceholder { .. })));
        assert!(matches!(SniNames::new("(.*)", "b<$id.x", 1), Err(SniConfigError::BadPlaceholder { .. })));
        assert!(matches!(SniNames::new("(.*)", "broker.x", 1), Err(SniConfigError::ConstantTemplate { .. })));
        let text = SniNames::new("(.*)", "<$3>.x", 1).unwrap_err().to_string();
        assert!(text.contains("<$3>") && text.contains("1 capture group"), "{text}");
    }

    #[test]
    fn names_are_derived_not_learned() {
        let names =
            SniNames::new(r"(.*)\.region\.example\.cloud", "<$1>-b<$id>.proxy.example.com", 9092).unwrap();
        assert_eq!(names.downstream_name(5, "a.region.example.cloud").unwrap(), "a-b5.proxy.example.com");
        assert_eq!(names.advertised_port(), 9092);
        // The regex must match the whole host name.
        assert!(matches!(
            names.downstream_name(1, "x.region.example.cloud.evil.net"),
            Err(NameError::NoMatch { .. })
        ));
        assert!(matches!(
            names.downstream_name(1, "bad..name.region.example.cloud"),
            Err(NameError::InvalidName { .. })
        ));
    }
}
