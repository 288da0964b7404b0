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

/// Rewrites broker addresses to their SNI names on the one proxy port. The
/// routes themselves are learned by the [`crate::proxy::Proxy`] from what
/// sessions observe; rewriting only computes names.
impl crate::rewrite::AddressMap for SniRouter {
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

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort { host: host.into(), port }
    }

    fn router() -> SniRouter {
        SniRouter::new(r"(.*)\.region\.example\.cloud", "<$1>-b<$id>.proxy.example.com", 9092).unwrap()
    }

    #[test]
    fn advertise_and_route_back() {
        let mut sni = router();
        let upstream = hp("pkc-123.region.example.cloud", 9092);
        let advertised = sni.advertise(3, &upstream).unwrap();
        assert_eq!(advertised, hp("pkc-123-b3.proxy.example.com", 9092));
        assert_eq!(
            sni.route(Some("pkc-123-b3.proxy.example.com")),
            SniRoute::Broker { node_id: 3, upstream: &upstream }
        );
        assert_eq!(
            sni.route(Some("PKC-123-B3.Proxy.Example.Com.")),
            SniRoute::Broker { node_id: 3, upstream: &upstream },
            "DNS names compare case-insensitively, trailing dot ignored"
        );
        assert_eq!(sni.route(Some("pkc-123-b4.proxy.example.com")), SniRoute::Bootstrap);
        assert_eq!(sni.route(Some("bootstrap.proxy.example.com")), SniRoute::Bootstrap);
        assert_eq!(sni.route(None), SniRoute::Bootstrap);
        // Advertising again is idempotent.
        assert_eq!(sni.advertise(3, &upstream).unwrap(), advertised);
        assert_eq!(sni.learned(), 1);
    }

    #[test]
    fn seed_style_id_template() {
        let mut sni =
            SniRouter::new(r"(.*)\.region\.example\.cloud", "b<$id>.proxy.example.com", 443).unwrap();
        let a = hp("b0-pkc.region.example.cloud", 9092);
        let b = hp("b1-pkc.region.example.cloud", 9092);
        assert_eq!(sni.advertise(0, &a).unwrap(), hp("b0.proxy.example.com", 443));
        assert_eq!(sni.advertise(1, &b).unwrap(), hp("b1.proxy.example.com", 443));
        assert_eq!(sni.route(Some("b1.proxy.example.com")), SniRoute::Broker { node_id: 1, upstream: &b });
        // Broker 1 moves to a new host: same id, same name, new upstream.
        let moved = hp("b1-new.region.example.cloud", 9093);
        assert_eq!(sni.advertise(1, &moved).unwrap(), hp("b1.proxy.example.com", 443));
        assert_eq!(
            sni.route(Some("b1.proxy.example.com")),
            SniRoute::Broker { node_id: 1, upstream: &moved }
        );
    }

    #[test]
    fn collisions_are_refused() {
        let mut sni =
            SniRouter::new(r"[^.]+\.(zone-[a-z])\.example\.cloud", "<$1>.proxy.test", 9092).unwrap();
        let first = hp("b0.zone-a.example.cloud", 9092);
        let second = hp("b1.zone-a.example.cloud", 9092);
        sni.advertise(0, &first).unwrap();
        let error = sni.advertise(1, &second).unwrap_err();
        assert_eq!(
            error,
            NotAdvertised::Collision {
                name: "zone-a.proxy.test".into(),
                existing: (0, first.clone()),
                refused: (1, second)
            }
        );
        let text = error.to_string();
        assert!(
            text.contains("zone-a.proxy.test") && text.contains("b0.zone-a") && text.contains("b1.zone-a"),
            "{text}"
        );
        // The first broker keeps its route.
        assert_eq!(sni.route(Some("zone-a.proxy.test")), SniRoute::Broker { node_id: 0, upstream: &first });
    }

    #[test]
    fn unmatched_or_invalid_hosts_are_not_advertised() {
        let mut sni = router();
        assert_eq!(
            sni.advertise(1, &hp("broker.elsewhere.net", 9092)),
            Err(NotAdvertised::NoMatch {
                host: "broker.elsewhere.net".into(),
                pattern: r"(.*)\.region\.example\.cloud".into()
            })
        );
        // The regex must match the whole host name.
        assert!(matches!(
            sni.advertise(1, &hp("x.region.example.cloud.evil.net", 9092)),
            Err(NotAdvertised::NoMatch { .. })
        ));
        assert!(matches!(
            sni.advertise(1, &hp("bad..name.region.example.cloud", 9092)),
            Err(NotAdvertised::InvalidName { .. })
        ));
        assert_eq!(sni.learned(), 0);
        // Matching is case-insensitive, output lower-case.
        assert_eq!(
            sni.advertise(2, &hp("PKC.Region.Example.Cloud", 9092)).unwrap(),
            hp("pkc-b2.proxy.example.com", 9092)
        );
    }

    #[test]
    fn configuration_errors() {
        assert!(matches!(SniRouter::new("(", "b<$id>.x", 1), Err(SniConfigError::Regex { .. })));
        assert!(matches!(SniRouter::new("(a)|b)", "b<$id>.x", 1), Err(SniConfigError::Regex { .. })));
        assert!(matches!(
            SniRouter::new("(.*)", "<$2>.x", 1),
            Err(SniConfigError::NoSuchGroup { group: 2, groups: 1, .. })
        ));
        assert!(matches!(SniRouter::new("(.*)", "<$x>.x", 1), Err(SniConfigError::BadPlaceholder { .. })));
        assert!(matches!(SniRouter::new("(.*)", "<$10>.x", 1), Err(SniConfigError::BadPlaceholder { .. })));
        assert!(matches!(SniRouter::new("(.*)", "b<$id.x", 1), Err(SniConfigError::BadPlaceholder { .. })));
        assert!(matches!(
            SniRouter::new("(.*)", "broker.x", 1),
            Err(SniConfigError::ConstantTemplate { .. })
        ));
        let text = SniRouter::new("(.*)", "<$3>.x", 1).unwrap_err().to_string();
        assert!(text.contains("<$3>") && text.contains("1 capture group"), "{text}");
    }

    #[test]
    fn downstream_name_does_not_learn() {
        let sni = router();
        assert_eq!(sni.downstream_name(5, "a.region.example.cloud").unwrap(), "a-b5.proxy.example.com");
        assert_eq!(sni.learned(), 0);
        assert_eq!(sni.advertised_port(), 9092);
    }
}
