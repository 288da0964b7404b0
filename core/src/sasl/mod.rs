//! SASL: the proxy as server towards clients and as client towards brokers.
//!
//! Everything here is a self-contained state machine that the session
//! drives: requests and tokens in, frames and outcomes out, time passed in
//! (`Instant` for timers, `SystemTime` for token claims), randomness through
//! [`random::Random`].
//!
//! * [`server::SaslServer`]: Kafka's broker-side semantics for one client
//!   connection (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER; KIP-368).
//! * [`client::SaslClient`]: login to a broker (PLAIN, SCRAM-SHA-256/512),
//!   with re-authentication before the broker's session lifetime ends.
//! * [`messages`]: SaslHandshake / SaslAuthenticate codecs.
//! * [`plain`], [`scram`], [`oauthbearer`]: the mechanisms, usable alone.
//! * [`credentials::CredentialStore`]: users, hashed at load.
//!
//! No secret reaches a `Debug` output or a log line: passwords, tokens, keys
//! and proofs are held in [`secret::Secret`].

pub mod client;
pub mod credentials;
mod exchange;
pub mod mechanism;
pub mod messages;
pub mod oauthbearer;
pub mod plain;
pub mod random;
pub mod scram;
pub mod secret;
pub mod server;

#[cfg(test)]
pub(crate) mod test_support;

pub use client::{ClientAuthentication, ClientConfig, ClientError, ClientStep, Pending, SaslClient};
pub use credentials::{CredentialError, CredentialStore, CredentialStoreBuilder};
pub use mechanism::{AuthFailure, Mechanism};
pub use messages::RequestRef;
pub use random::{Random, RandomError, SystemRandom};
pub use scram::{ScramCredential, ScramMechanism};
pub use secret::{Secret, SecretBytes, SecretString};
pub use server::{
    Admission, Authentication, FailureReason, Principal, SaslServer, ServerConfig, ServerConfigError,
    ServerStep,
};
