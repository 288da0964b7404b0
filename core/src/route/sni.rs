//! `sni` mapping mode: one TLS port, the broker chosen by the SNI host name.
//!
//! Seed 000's `broker_mapping.sni`: `upstream` is a regex over upstream broker
//! host names (it must match the whole name), `downstream` a template for the
//! name clients are told, with `<$1>`…`<$9>` for the regex's capture groups
//! and `<$id>` for the broker id. Every advertised name is remembered, so an
//! incoming SNI name leads back to its broker's upstream address; a name not
//! (yet) learned goes to the bootstrap servers.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;
use rustls::pki_types::ServerName;

use crate::config::HostPort;

/// Upper bound on learned names; a cluster has far fewer brokers.
pub const MAX_ROUTES: usize = 100_000;

/// Where an incoming connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SniRoute<'a> {
    /// A known broker.
    Broker {
        /// Its node id.
        node_id: i32,
        /// Its upstream address.
        upstream: &'a HostPort,
    },
    /// Unknown or absent name: the configured bootstrap servers.
    Bootstrap,
}

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

/// Why a broker cannot be advertised through the SNI port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAdvertised {
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
    /// Another broker already has this name.
    Collision {
        /// The contested downstream name.
        name: String,
        /// The broker that has it.
        existing: (i32, HostPort),
        /// The broker refused.
        refused: (i32, HostPort),
    },
    /// The table of learned names is full.
    TooManyRoutes,
}

impl fmt::Display for NotAdvertised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAdvertised::NoMatch { host, pattern } => {
                write!(f, "upstream host {host:?} does not match sni.upstream {pattern:?}")
            }
            NotAdvertised::InvalidName { host, name } => {
                write!(f, "upstream host {host:?} maps to {name:?}, which is not a valid DNS name")
            }
            NotAdvertised::Collision { name, existing, refused } => write!(
                f,
                "brokers {} ({}) and {} ({}) both map to {name:?}; fix sni.downstream",
                existing.0, existing.1, refused.0, refused.1
            ),
            NotAdvertised::TooManyRoutes => write!(f, "more than {MAX_ROUTES} SNI names learned"),
        }
    }
}

impl std::error::Error for NotAdvertised {}

/// One piece of the downstream template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Group(usize),
    NodeId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Learned {
    node_id: i32,
    upstream: HostPort,
}

/// The SNI name mapping and the routes learned from it.
#[derive(Debug, Clone)]
pub struct SniRouter {
    pattern_text: String,
    pattern: Regex,
    template: Vec<Part>,
    advertised_port: u16,
    routes: HashMap<String, Learned>,
}

impl SniRouter {
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
        Ok(SniRouter {
            pattern_text: upstream.to_owned(),
            pattern,
            template,
            advertised_port,
            routes: HashMap::new(),
        })
    }

    /// The name clients are told for broker `node_id` at `upstream_host`,
    /// without learning it.
    pub fn downstream_name(&self, node_id: i32, upstream_host: &str) -> Result<String, NotAdvertised> {
        let captures = self.pattern.captures(upstream_host).ok_or_else(|| NotAdvertised::NoMatch {
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
            _ => Err(NotAdvertised::InvalidName { host: upstream_host.to_owned(), name }),
        }
    }

    /// The address to advertise for broker `node_id` at `upstream`, learning
    /// the reverse route. Refuses a name another broker already has.
    pub fn advertise(&mut self, node_id: i32, upstream: &HostPort) -> Result<HostPort, NotAdvertised> {
        let name = self.downstream_name(node_id, &upstream.host)?;
        match self.routes.get_mut(&name) {
            Some(learned) => {
                if learned.node_id != node_id && learned.upstream != *upstream {
                    return Err(NotAdvertised::Collision {
                        name,
                        existing: (learned.node_id, learned.upstream.clone()),
                        refused: (node_id, upstream.clone()),
                    });
                }
                // Same broker, or a broker that moved (same id, new address).
                if learned.node_id != node_id || learned.upstream != *upstream {
                    *learned = Learned { node_id, upstream: upstream.clone() };
                }
            }
            None => {
                if self.routes.len() >= MAX_ROUTES {
                    return Err(NotAdvertised::TooManyRoutes);
                }
                self.routes.insert(name.clone(), Learned { node_id, upstream: upstream.clone() });
            }
        }
        Ok(HostPort { host: name, port: self.advertised_port })
    }

    /// Where a connection with this SNI name goes (case-insensitive; a
    /// trailing dot is ignored).
    pub fn route(&self, sni: Option<&str>) -> SniRoute<'_> {
        let Some(name) = sni else { return SniRoute::Bootstrap };
        let name = name.strip_suffix('.').unwrap_or(name);
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.routes.get(&name.to_ascii_lowercase())
        } else {
            self.routes.get(name)
        };
        match found {
            Some(learned) => SniRoute::Broker { node_id: learned.node_id, upstream: &learned.upstream },
            None => SniRoute::Bootstrap,
        }
    }

    /// How many names have been learned.
    pub fn learned(&self) -> usize {
        self.routes.len()
    }

    /// The port clients are told.
    pub fn advertised_port(&self) -> u16 {
        self.advertised_port
    }
}

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
