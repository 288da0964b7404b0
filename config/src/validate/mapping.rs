//! `broker_mapping`: port_offset and sni.

use std::net::IpAddr;

use kafka_proxy_core::config::PortOffset;
use regex::Regex;

use super::{Checker, DEFAULT_MAX_BROKER_ID};
use crate::model::{BrokerMapping, Downstream, MappingMode, SniMapping, SniTemplate, TemplatePart};
use crate::raw::{RawBrokerMapping, RawSni};

impl Checker<'_> {
    pub(super) fn mapping(
        &mut self,
        raw: Option<RawBrokerMapping>,
        bind_address: IpAddr,
        downstream: &Downstream,
    ) -> BrokerMapping {
        let raw = raw.unwrap_or(RawBrokerMapping { mode: None, port_offset: None, sni: None });
        let (mode, mode_shown) = match raw.mode {
            Some(mode) => (mode.0, ""),
            None => (MappingMode::Sni, " (the default mode)"),
        };
        match mode {
            MappingMode::PortOffset => {
                if raw.sni.is_some() {
                    self.report.warn("broker_mapping.sni", "ignored: broker_mapping.mode is port_offset");
                }
                let Some(po) = raw.port_offset else {
                    self.report.error(
                        "broker_mapping.port_offset",
                        "required when broker_mapping.mode is port_offset",
                    );
                    return placeholder_mapping();
                };
                let advertised_host = match po.hostname {
                    Some(host) => host.0.0,
                    None if bind_address.is_unspecified() => "localhost".to_owned(),
                    None => bind_address.to_string(),
                };
                let max_broker_id = po.max_broker_id.unwrap_or(DEFAULT_MAX_BROKER_ID);
                let Some(base) = po.base else {
                    self.report.error("broker_mapping.port_offset.base", "required: the first bootstrap port (bootstrap slots are base..base+19, broker N is base+20+N)");
                    return placeholder_mapping();
                };
                let last =
                    u32::from(base.0) + u32::from(PortOffset::BOOTSTRAP_SLOTS) + u32::from(max_broker_id);
                if last > u32::from(u16::MAX) {
                    let key = if po.max_broker_id.is_some() { "max_broker_id" } else { "base" };
                    self.report.error(
                        format!("broker_mapping.port_offset.{key}"),
                        format!(
                            "expected base + 20 + max_broker_id <= 65535, got {} + 20 + {max_broker_id} = {last}",
                            base.0
                        ),
                    );
                }
                BrokerMapping::PortOffset(PortOffset {
                    advertised_host,
                    base: base.0,
                    max_broker_id: i32::from(max_broker_id),
                })
            }
            MappingMode::Sni => {
                if raw.port_offset.is_some() {
                    self.report.warn("broker_mapping.port_offset", "ignored: broker_mapping.mode is sni");
                }
                if !downstream.security_protocol.uses_tls() {
                    self.report.error(
                        "broker_mapping.mode",
                        format!(
                            "sni{mode_shown} routes by TLS server name: expected downstream.security_protocol \
                             SSL or SASL_SSL, got {}",
                            downstream.security_protocol
                        ),
                    );
                }
                let Some(sni) = raw.sni else {
                    self.report.error(
                        "broker_mapping.sni",
                        format!("required when broker_mapping.mode is sni{mode_shown}"),
                    );
                    return placeholder_mapping();
                };
                self.sni(sni).map_or_else(placeholder_mapping, BrokerMapping::Sni)
            }
        }
    }

    fn sni(&mut self, raw: RawSni) -> Option<SniMapping> {
        let RawSni { bind_port, upstream, downstream } = raw;
        for (key, set) in [
            ("bind_port", bind_port.is_some()),
            ("upstream", upstream.is_some()),
            ("downstream", downstream.is_some()),
        ] {
            if !set {
                self.report
                    .error(format!("broker_mapping.sni.{key}"), "required when broker_mapping.mode is sni");
            }
        }
        let (Some(bind_port), Some(upstream), Some(downstream)) = (bind_port, upstream, downstream) else {
            return None;
        };
        let upstream = upstream.0;
        match parse_template(&downstream, &upstream) {
            Ok(template) => Some(SniMapping { bind_port: bind_port.0, upstream, downstream: template }),
            Err(message) => {
                self.report.error("broker_mapping.sni.downstream", message);
                None
            }
        }
    }
}

/// Stands in for a mapping that failed validation (the caller never sees it: problems were recorded).
fn placeholder_mapping() -> BrokerMapping {
    BrokerMapping::PortOffset(PortOffset { advertised_host: String::new(), base: 0, max_broker_id: 0 })
}

/// Parses an SNI host template: literal text, `<$N>` (a capture group of `regex`) and
/// `<$id>` (the broker id), using at least one of them.
pub(crate) fn parse_template(text: &str, regex: &Regex) -> Result<SniTemplate, String> {
    let groups = regex.captures_len() - 1;
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<$") {
        if start > 0 {
            parts.push(TemplatePart::Literal(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find('>') else {
            return Err(format!("expected <$N> or <$id>, got an unterminated <$ in {text:?}"));
        };
        let name = &after[..end];
        let part = if name == "id" {
            TemplatePart::BrokerId
        } else {
            match name.parse::<usize>() {
                Ok(n) if (1..=groups).contains(&n) => TemplatePart::Group(n),
                Ok(n) => {
                    return Err(format!(
                        "expected capture groups <$1>..<$N> of broker_mapping.sni.upstream (which has {groups}), got <${n}>"
                    ));
                }
                Err(_) => return Err(format!("expected <$N> or <$id>, got <${name}> in {text:?}")),
            }
        };
        parts.push(part);
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_owned()));
    }
    if !parts.iter().any(|p| !matches!(p, TemplatePart::Literal(_))) {
        return Err(format!(
            "expected a template using <$id> or a capture group <$N>, got {text:?} (every broker would get the same name)"
        ));
    }
    for part in &parts {
        if let TemplatePart::Literal(literal) = part
            && !literal.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(format!("expected host name characters around the placeholders, got {text:?}"));
        }
    }
    Ok(SniTemplate { text: text.to_owned(), parts })
}
