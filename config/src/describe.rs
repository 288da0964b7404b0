//! The effective routing, in words: what `kafka-proxy check` prints. Never prints secrets.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::config::{HostPattern, PortOffset};

use crate::model::{
    BrokerMapping, ClientAuth, Config, Downstream, OAuthKeys, Policy, PrincipalMapping, PrincipalRule,
    Quotas, Upstream, UpstreamAuth, UpstreamVerify, UserCredential,
};

impl Config {
    /// A human-readable summary: bind address, mapping mode and the listeners it implies,
    /// both sides' protocols and mechanisms, resolve overrides, limits, and warnings.
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        out.push(format!("configuration: {}", self.path.display()));
        out.push(format!("bind address: {}", self.bind_address));
        self.describe_mapping(&mut out);
        describe_upstream(&self.upstream, &mut out);
        describe_downstream(&self.downstream, &mut out);
        if self.resolve.is_empty() {
            out.push("resolve: system DNS".to_owned());
        } else {
            out.push("resolve (instead of DNS):".to_owned());
            for entry in &self.resolve {
                let ips: Vec<String> = entry
                    .ipv4
                    .map(|ip| ip.to_string())
                    .into_iter()
                    .chain(entry.ipv6.map(|ip| ip.to_string()))
                    .collect();
                out.push(format!("  {} -> {}", pattern(&entry.host), ips.join(", ")));
            }
        }
        let l = &self.limits;
        out.push(format!(
            "limits: max frame {} bytes, connect timeout {}, handshake timeout {}, idle timeout {}, \
             {} bytes buffered per side, {} requests in flight",
            l.max_frame_bytes,
            duration(l.connect_timeout),
            duration(l.handshake_timeout),
            l.idle_timeout.map_or_else(|| "none".to_owned(), duration),
            l.max_buffered_bytes,
            l.max_in_flight
        ));
        if l.max_connections.is_some() || l.max_connections_per_ip.is_some() {
            out.push(format!(
                "connections: {} in all, {} per client address",
                l.max_connections.map_or_else(|| "unlimited".to_owned(), |n| format!("at most {n}")),
                l.max_connections_per_ip.map_or_else(|| "unlimited".to_owned(), |n| format!("at most {n}")),
            ));
        }
        out.push(format!(
            "timeouts: request {} (longer when a request asks the broker to wait), request read {}, drain {}",
            duration(l.request_timeout),
            l.request_read_timeout.map_or_else(|| "none".to_owned(), duration),
            duration(l.drain_timeout)
        ));
        let t = &l.login_throttle;
        out.push(format!(
            "login throttle: after 2 failures from an address or name {}, doubling up to {}; one step forgiven per {} without a failure",
            duration(t.base_delay),
            duration(t.max_delay),
            duration(t.decay)
        ));
        let s = &self.socket;
        let buffer =
            |b: Option<usize>| b.map_or_else(|| "system default".to_owned(), |b| format!("{b} bytes"));
        out.push(format!(
            "socket: keepalive {}, send buffer {}, receive buffer {}, SO_REUSEPORT {}",
            s.keepalive.map_or_else(|| "off".to_owned(), duration),
            buffer(s.send_buffer_bytes),
            buffer(s.receive_buffer_bytes),
            if s.reuse_port { "on" } else { "off" }
        ));
        match &self.admin {
            Some(admin) => out.push(format!("admin: http://{}/ (/metrics, /health, /ready)", admin.bind)),
            None => out.push("admin: off".to_owned()),
        }
        describe_policy(&self.policy, &mut out);
        out.push(format!("logging: {} ({})", self.logging.level, self.logging.format.name()));
        out.push(format!("runtime: {}", self.runtime.name()));
        if !self.warnings.is_empty() {
            out.push("warnings:".to_owned());
            out.extend(self.warnings.iter().map(|w| format!("  {w}")));
        }
        let mut text = out.join("\n");
        text.push('\n');
        text
    }

    fn describe_mapping(&self, out: &mut Vec<String>) {
        match &self.mapping {
            BrokerMapping::PortOffset(po) => {
                out.push(format!("mapping: port_offset, advertised host {}", po.advertised_host));
                for (slot, server) in self.upstream.bootstrap_servers.iter().enumerate() {
                    let port = u16::try_from(slot).ok().and_then(|s| po.bootstrap_port(s));
                    if let Some(port) = port {
                        out.push(format!(
                            "  listener {} -> bootstrap {server}",
                            socket(self.bind_address, port)
                        ));
                    }
                }
                let first = po.broker_port(0).map_or_else(|| "?".to_owned(), |p| p.to_string());
                let last = po.broker_port(po.max_broker_id).map_or_else(|| "?".to_owned(), |p| p.to_string());
                out.push(format!(
                    "  broker N -> port {}+N (N = 0..={}, ports {first}..={last}), learned at run time",
                    u32::from(po.base) + u32::from(PortOffset::BOOTSTRAP_SLOTS),
                    po.max_broker_id
                ));
            }
            BrokerMapping::Sni(sni) => {
                out.push(format!(
                    "mapping: sni, one TLS listener {}",
                    socket(self.bind_address, sni.bind_port)
                ));
                out.push(format!(
                    "  upstream broker hosts matching {:?} are advertised as {:?} (port {})",
                    sni.upstream.as_str(),
                    sni.downstream.text,
                    sni.bind_port
                ));
                if let Some(first) = self.upstream.bootstrap_servers.first() {
                    out.push(format!("  other server names -> bootstrap {first}"));
                }
            }
        }
    }
}

fn describe_upstream(up: &Upstream, out: &mut Vec<String>) {
    out.push(format!("upstream: {}", up.security_protocol));
    let servers: Vec<String> = up.bootstrap_servers.iter().map(ToString::to_string).collect();
    out.push(format!("  bootstrap servers: {}", servers.join(", ")));
    out.push(format!("  client id of the proxy's own requests: {}", up.client_id));
    if let Some(tls) = &up.tls {
        let verify = match &tls.verify {
            UpstreamVerify::SystemRoots => "system trust roots".to_owned(),
            UpstreamVerify::CaFile(path) => format!("CA file {}", path.display()),
            UpstreamVerify::TrustAll => {
                "NOTHING (trust_server_certs: any certificate is accepted)".to_owned()
            }
        };
        out.push(format!("  tls: broker certificates verified with {verify}"));
        if let Some(ck) = &tls.client_cert {
            let encrypted = if ck.key_password.is_some() { ", encrypted" } else { "" };
            out.push(format!(
                "  tls: client certificate {} (key {}{encrypted})",
                ck.cert.display(),
                ck.key.display()
            ));
        }
        out.push(format!("  tls policy: {}", tls.policy.describe()));
    }
    let auth = match &up.auth {
        UpstreamAuth::None => "none".to_owned(),
        UpstreamAuth::PassThrough => "clients' own SASL exchange is forwarded".to_owned(),
        UpstreamAuth::Service { mechanism, username, .. } => format!("SASL {mechanism} as {username}"),
        UpstreamAuth::Swap { mechanism, swap } => {
            let users: Vec<&str> = swap.upstream_credentials.keys().map(String::as_str).collect();
            let mut text = format!("SASL {mechanism}, auth swap to {}", users.join(", "));
            if !swap.mapping.is_empty() {
                let pairs: Vec<String> =
                    swap.mapping.iter().map(|(from, to)| format!("{from} -> {to}")).collect();
                text.push_str(&format!(" (mapping: {})", pairs.join(", ")));
            }
            text
        }
    };
    out.push(format!("  auth: {auth}"));
    if let Some(oauth) = &up.oauthbearer {
        let scope = oauth.scope.as_ref().map_or_else(String::new, |s| format!(", scope {s:?}"));
        let trust =
            oauth.ca_certs.as_ref().map_or_else(|| "system roots".to_owned(), |c| c.display().to_string());
        out.push(format!(
            "  oauthbearer: tokens from {} (client credentials{scope}, trusting {trust}), refreshed at 80% of their lifetime",
            oauth.token_endpoint_url
        ));
    }
}

fn describe_downstream(down: &Downstream, out: &mut Vec<String>) {
    out.push(format!("downstream: {}", down.security_protocol));
    if let Some(tls) = &down.tls {
        out.push(format!(
            "  tls: certificate {} (key {})",
            tls.cert_key.cert.display(),
            tls.cert_key.key.display()
        ));
        if tls.cert_key.key_password.is_some() {
            out.push("  tls: the private key is encrypted (password configured)".to_owned());
        }
        out.push(format!("  tls policy: {}", tls.policy.describe()));
        match &tls.client_auth {
            ClientAuth::None => out.push("  tls: one-way (no client certificate)".to_owned()),
            ClientAuth::Required { ca_certs } | ClientAuth::Requested { ca_certs } => {
                let principal = match &tls.principal_mapping {
                    PrincipalMapping::CommonName => "the certificate CN".to_owned(),
                    PrincipalMapping::Rules(rules) => format!("{} mapping rule(s)", rules.len()),
                };
                let mode = match &tls.client_auth {
                    ClientAuth::Requested { .. } => {
                        "client certificate requested (clients without one are $anonymous)"
                    }
                    _ => "mTLS (client certificate required)",
                };
                out.push(format!(
                    "  tls: {mode}, client CA {}, principal from {principal}",
                    ca_certs.display()
                ));
                for crl in &tls.crl_files {
                    out.push(format!("  tls: revoked client certificates from CRL {}", crl.display()));
                }
                if let PrincipalMapping::Rules(rules) = &tls.principal_mapping {
                    for rule in rules {
                        out.push(format!("    {}", rule_text(rule)));
                    }
                }
            }
        }
    }
    match &down.sasl {
        None if down.sasl_pass_through => {
            out.push(
                "  auth: SASL passed through to the brokers (the proxy holds no credentials)".to_owned(),
            );
        }
        None => {
            let mtls = down.tls.as_ref().is_some_and(|t| t.client_auth != ClientAuth::None);
            let who = if mtls { "principal from the client certificate" } else { "principal $anonymous" };
            out.push(format!("  auth: no SASL ({who})"));
        }
        Some(sasl) => {
            let names: Vec<&str> = sasl.mechanisms.iter().map(|m| m.name()).collect();
            out.push(format!("  auth: SASL {}", names.join(", ")));
            let inline: Vec<String> = sasl
                .credentials
                .users
                .iter()
                .map(|(name, c)| match c {
                    UserCredential::Password { .. } => name.clone(),
                    UserCredential::Scram(s) => format!("{name} ({} only)", s.mechanism),
                })
                .collect();
            if !inline.is_empty() {
                out.push(format!("  users: {}", inline.join(", ")));
            }
            if let Some(file) = &sasl.credentials.file {
                out.push(format!("  users from {}: {} user(s)", file.path.display(), file.users.len()));
            }
            if let Some(oauth) = &sasl.oauthbearer {
                let keys = match &oauth.keys {
                    OAuthKeys::JwksFile(path) => format!("JWKS {}", path.display()),
                    OAuthKeys::PublicKey(path) => format!("public key {}", path.display()),
                    OAuthKeys::JwksUrl(jwks) => format!(
                        "JWKS {} (trusting {}, refreshed every {}, on unknown kid at most every {})",
                        jwks.url,
                        jwks.ca_certs
                            .as_ref()
                            .map_or_else(|| "system roots".to_owned(), |c| c.display().to_string()),
                        duration(jwks.refresh),
                        duration(jwks.min_refresh_interval)
                    ),
                };
                let mut text = format!("  oauthbearer: keys from {keys}");
                if let Some(iss) = &oauth.issuer {
                    text.push_str(&format!(", issuer {iss}"));
                }
                if !oauth.audience.is_empty() {
                    text.push_str(&format!(", audience {}", oauth.audience.join(" or ")));
                }
                if let Some(claim) = &oauth.sub_claim_name {
                    text.push_str(&format!(", principal from claim {claim}"));
                }
                if let Some(claim) = &oauth.scope_claim_name {
                    text.push_str(&format!(", scopes from claim {claim}"));
                }
                if !oauth.required_scopes.is_empty() {
                    text.push_str(&format!(", scopes {}", oauth.required_scopes.join(" ")));
                }
                text.push_str(&format!(", clock skew {}", duration(oauth.clock_skew)));
                out.push(text);
            }
            match sasl.session_lifetime {
                Some(lifetime) => out.push(format!("  session lifetime: {} (KIP-368)", duration(lifetime))),
                None => out.push("  session lifetime: unlimited".to_owned()),
            }
        }
    }
}

fn rule_text(rule: &PrincipalRule) -> String {
    rule.0.clone()
}

fn pattern(p: &HostPattern) -> String {
    p.to_string()
}

fn socket(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

fn duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// The effective policy: what everyone is refused, the quota windows, and
/// for the default and each listed principal the forbidden APIs and limits
/// that apply (a limit inherited from `policy.default` says so).
fn describe_policy(policy: &Policy, out: &mut Vec<String>) {
    if policy.is_empty() {
        out.push("policy: every API allowed".to_owned());
        return;
    }
    out.push("policy:".to_owned());
    let keys = |set: &BTreeSet<ApiKey>| -> String {
        if set.is_empty() {
            "none".to_owned()
        } else {
            set.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    out.push(format!("  forbidden for everyone: {}", keys(&policy.forbidden_api_keys)));
    let span = policy.quota_window_size.saturating_mul(policy.quota_window_num);
    out.push(format!(
        "  byte rates measured over {} windows of {} (throttles of at most {})",
        policy.quota_window_num,
        duration(policy.quota_window_size),
        duration(span)
    ));
    out.push(format!("  every other principal: {}", limits(&policy.default, &Quotas::default())));
    for (name, p) in &policy.principals {
        let forbidden: BTreeSet<ApiKey> =
            policy.forbidden_api_keys.union(&p.forbidden_api_keys).copied().collect();
        out.push(format!(
            "  principal {name}: forbidden {}; {}",
            keys(&forbidden),
            limits(&p.quotas, &policy.default)
        ));
    }
}

/// `own`'s limits, each falling back to `default`'s (marked as such).
fn limits(own: &Quotas, default: &Quotas) -> String {
    let one = |own: Option<String>, default: Option<String>| match (own, default) {
        (Some(v), _) => v,
        (None, Some(v)) => format!("{v} (default)"),
        (None, None) => "unlimited".to_owned(),
    };
    let rate = |v: Option<u64>| v.map(|v| format!("{v} B/s"));
    let connections = |v: Option<u32>| v.map(|v| format!("at most {v}"));
    format!(
        "produce {}, fetch {}, connections {}",
        one(rate(own.producer_byte_rate), rate(default.producer_byte_rate)),
        one(rate(own.consumer_byte_rate), rate(default.consumer_byte_rate)),
        one(connections(own.max_connections), connections(default.max_connections)),
    )
}
