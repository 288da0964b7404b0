//! SASL: the proxy as server towards clients and as client towards brokers.
pub mod messages;
pub mod random;
pub mod scram;
pub mod secret;
