//! SASL: the proxy as server towards clients and as client towards brokers.
pub mod credentials;
pub mod mechanism;
pub mod messages;
pub mod oauthbearer;
pub mod plain;
pub mod random;
pub mod scram;
pub mod secret;
pub mod server;

#[cfg(test)]
mod test_support;
