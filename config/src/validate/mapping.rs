//! `broker_mapping`: port_offset, sni and static, and the external brokers of every mode.

use std::collections::BTreeMap;
use std::net::IpAddr;

use kafka_proxy_core::config::{
    DynamicListeners, ExternalBroker, HostPort, PortOffset, StaticBroker, StaticMapping,
};
use regex::Regex;

use super::{Checker, DEFAULT_MAX_BROKER_ID};
use crate::model::{BrokerMapping, Downstream, MappingMode, SniMapping, SniTemplate, TemplatePart};
use crate::raw::{RawBrokerMapping, RawDynamicListeners, RawExternal, RawSni, RawStatic};

impl Checker<'_> {
    /// The mapping and the external brokers.
    pub(super) fn mapping(
        &mut self,
        raw: Option<RawBrokerMapping>,
        bind_address: IpAddr,
        downstream: &Downstream,
    ) -> (BrokerMapping, Vec<ExternalBroker>) {
        let mut raw = raw.unwrap_or(RawBrokerMapping {
            mode: None,
            port_offset: None,
            sni: None,
            static_: None,
            external: None,
        });
        let external = self.external(raw.external.take().unwrap_or_default());
        let mapping = self.mode(raw, bind_address, downstream);
        if let BrokerMapping::Static(s) = &mapping {
            for (i, e) in external.iter().enumerate() {
                if let Some((j, _)) = s.broker(&e.upstream.host, i32::from(e.upstream.port)) {
                    self.report.error(
                        format!("broker_mapping.external[{i}].upstream"),
                        format!(
                            "expected a broker not in broker_mapping.static.brokers, got {} (already \
                             broker_mapping.static.brokers[{j}]): a broker is either served here or elsewhere",
                            e.upstream
                        ),
                    );
                }
            }
        }
        (mapping, external)
    }

    fn mode(
        &mut self,
        raw: RawBrokerMapping,
        bind_address: IpAddr,
        downstream: &Downstream,
    ) -> BrokerMapping {
        let (mode, mode_shown) = match raw.mode {
            Some(mode) => (mode.0, ""),
            None => (MappingMode::Sni, " (the default mode)"),
        };
        let name = match mode {
            MappingMode::PortOffset => "port_offset",
            MappingMode::Sni => "sni",
            MappingMode::Static => "static",
        };
        for (key, set, this) in [
            ("port_offset", raw.port_offset.is_some(), MappingMode::PortOffset),
            ("sni", raw.sni.is_some(), MappingMode::Sni),
            ("static", raw.static_.is_some(), MappingMode::Static),
        ] {
            if set && this != mode {
                self.report
                    .warn(format!("broker_mapping.{key}"), format!("ignored: broker_mapping.mode is {name}"));
            }
        }
        match mode {
            MappingMode::Static => {
                let Some(raw_static) = raw.static_ else {
                    self.report.error("broker_mapping.static", "required when broker_mapping.mode is static");
                    return placeholder_mapping();
                };
                BrokerMapping::Static(self.static_mapping(raw_static, bind_address))
            }
            MappingMode::PortOffset => {
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
                let advertised_base = po.advertised_base.map_or(base.0, |p| p.0);
                let advertised_last = u32::from(advertised_base)
                    + u32::from(PortOffset::BOOTSTRAP_SLOTS)
                    + u32::from(max_broker_id);
                if po.advertised_base.is_some() && advertised_last > u32::from(u16::MAX) {
                    self.report.error(
                        "broker_mapping.port_offset.advertised_base",
                        format!(
                            "expected advertised_base + 20 + max_broker_id <= 65535, got {advertised_base} + 20 + \
                             {max_broker_id} = {advertised_last}"
                        ),
                    );
                }
                BrokerMapping::PortOffset(PortOffset {
                    advertised_host,
                    base: base.0,
                    max_broker_id: i32::from(max_broker_id),
                    advertised_base,
                })
            }
            MappingMode::Sni => {
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
        let RawSni { bind_port, upstream, downstream, advertised_port } = raw;
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
            Ok(template) => Some(SniMapping {
                bind_port: bind_port.0,
                upstream,
                downstream: template,
                advertised_port: advertised_port.map_or(bind_port.0, |p| p.0),
            }),
            Err(message) => {
                self.report.error("broker_mapping.sni.downstream", message);
                None
            }
        }
    }
}

impl Checker<'_> {
    fn static_mapping(&mut self, raw: RawStatic, bind_address: IpAddr) -> StaticMapping {
        const KEY: &str = "broker_mapping.static";
        let raw_brokers = raw.brokers.unwrap_or_default();
        if raw_brokers.is_empty() {
            self.report.error(
                format!("{KEY}.brokers"),
                "expected at least one entry {upstream: host:port, listen: ip:port[, advertised: host:port]}: \
                 clients need a listener to start from",
            );
        }
        let mut brokers: Vec<StaticBroker> = Vec::with_capacity(raw_brokers.len());
        let mut ports: BTreeMap<u16, String> = BTreeMap::new();
        for (i, entry) in raw_brokers.into_iter().enumerate() {
            let path = format!("{KEY}.brokers[{i}]");
            let (upstream, listen) = (entry.upstream.0, entry.listen.0);
            if let Some(j) =
                brokers.iter().position(|b| b.upstream.matches(&upstream.host, i32::from(upstream.port)))
            {
                self.report.error(
                    format!("{path}.upstream"),
                    format!("expected distinct upstream brokers, got {upstream} again (already at [{j}])"),
                );
            }
            if let Some(first) = ports.get(&listen.port()) {
                self.report.error(
                    format!("{path}.listen"),
                    format!("expected distinct listen ports, got {} again (already {first})", listen.port()),
                );
            } else {
                ports.insert(listen.port(), format!("{path}.listen"));
            }
            let advertised = match entry.advertised {
                Some(a) => a.0,
                None => {
                    if listen.ip().is_unspecified() {
                        self.report.warn(
                            format!("{path}.advertised"),
                            format!(
                                "clients are told {listen} (the listen address), which only reaches the proxy \
                                 from its own host: set advertised to a reachable host:port"
                            ),
                        );
                    }
                    HostPort { host: listen.ip().to_string(), port: listen.port() }
                }
            };
            brokers.push(StaticBroker { upstream, listen, advertised });
        }
        let dynamic = raw.dynamic_listeners.and_then(|d| self.dynamic_listeners(d, bind_address, &ports));
        StaticMapping { brokers, dynamic }
    }

    fn dynamic_listeners(
        &mut self,
        raw: RawDynamicListeners,
        bind_address: IpAddr,
        static_ports: &BTreeMap<u16, String>,
    ) -> Option<DynamicListeners> {
        const KEY: &str = "broker_mapping.static.dynamic_listeners";
        if raw.enabled == Some(false) {
            return None;
        }
        let Some(first_port) = raw.first_port else {
            self.report.error(
                format!("{KEY}.first_port"),
                "required: broker N listens on first_port + N (or set enabled: false)",
            );
            return None;
        };
        let first_port = first_port.0;
        let bind_ip = raw.bind.map_or(bind_address, |b| b.0);
        let advertised_host = match raw.advertised_host {
            Some(host) => host.0.0,
            None if bind_ip.is_unspecified() => "localhost".to_owned(),
            None => bind_ip.to_string(),
        };
        let advertised_first_port = raw.advertised_first_port.map_or(first_port, |p| p.0);
        let max_broker_id = raw.max_broker_id.unwrap_or(DEFAULT_MAX_BROKER_ID);
        for (key, start) in [("first_port", first_port), ("advertised_first_port", advertised_first_port)] {
            let last = u32::from(start) + u32::from(max_broker_id);
            if last > u32::from(u16::MAX) {
                self.report.error(
                    format!("{KEY}.{key}"),
                    format!(
                        "expected {key} + max_broker_id <= 65535, got {start} + {max_broker_id} = {last}"
                    ),
                );
            }
        }
        let last = first_port.saturating_add(max_broker_id);
        if let Some((port, path)) = static_ports.range(first_port..=last).next() {
            self.report.error(
                format!("{KEY}.first_port"),
                format!(
                    "expected ports {first_port}..={last} (first_port + 0..=max_broker_id) clear of the static \
                     listeners, got {path} on {port} inside them"
                ),
            );
        }
        Some(DynamicListeners {
            bind_ip,
            first_port,
            advertised_host,
            advertised_first_port,
            max_broker_id: i32::from(max_broker_id),
        })
    }

    fn external(&mut self, raw: Vec<RawExternal>) -> Vec<ExternalBroker> {
        let mut out: Vec<ExternalBroker> = Vec::with_capacity(raw.len());
        for (i, entry) in raw.into_iter().enumerate() {
            let upstream = entry.upstream.0;
            if let Some(j) =
                out.iter().position(|e| e.upstream.matches(&upstream.host, i32::from(upstream.port)))
            {
                self.report.error(
                    format!("broker_mapping.external[{i}].upstream"),
                    format!("expected distinct upstream brokers, got {upstream} again (already at [{j}])"),
                );
                continue;
            }
            out.push(ExternalBroker { upstream, advertised: entry.advertised.0 });
        }
        out
    }
}

/// Stands in for a mapping that failed validation (the caller never sees it: problems were recorded).
fn placeholder_mapping() -> BrokerMapping {
    BrokerMapping::PortOffset(PortOffset {
        advertised_host: String::new(),
        base: 0,
        max_broker_id: 0,
        advertised_base: 0,
    })
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
