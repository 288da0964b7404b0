//! TEMPORARY stand-in for the configuration loader (replaced at merge).
use std::net::IpAddr;
use std::path::Path;

use kafka_proxy_core::config::{HostPort, Limits, Mapping, PortOffset, ProxyConfig};

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
pub struct Config {
    core: ProxyConfig,
}

pub fn load(path: &Path, _env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    let v: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| ConfigError(e.to_string()))?;
    let bind: IpAddr =
        v["bind_address"].as_str().unwrap_or("0.0.0.0").parse().map_err(|_| ConfigError("bind".into()))?;
    let bootstrap = v["upstream"]["bootstrap_servers"]
        .as_sequence()
        .ok_or(ConfigError("bootstrap".into()))?
        .iter()
        .filter_map(|s| s.as_str())
        .map(|s| {
            let (h, p) = s.rsplit_once(':').unwrap_or((s, "9092"));
            HostPort { host: h.into(), port: p.parse().unwrap_or(9092) }
        })
        .collect();
    let po = &v["broker_mapping"]["port_offset"];
    Ok(Config {
        core: ProxyConfig {
            bind_ip: bind,
            mapping: Mapping::PortOffset(PortOffset {
                advertised_host: po["hostname"].as_str().unwrap_or("localhost").into(),
                base: po["base"].as_u64().unwrap_or(9092) as u16,
                max_broker_id: po["max_broker_id"].as_i64().unwrap_or(400) as i32,
            }),
            bootstrap,
            resolve: vec![],
            limits: Limits::default(),
        },
    })
}

impl Config {
    pub fn to_core(&self) -> Result<ProxyConfig, ConfigError> {
        Ok(self.core.clone())
    }
    pub fn describe(&self) -> String {
        format!("{:?}", self.core)
    }
}
