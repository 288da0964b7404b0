//! SASL: the proxy as server towards clients and as client towards brokers.
//!
//! Everything here is a self-contained state machine that the session
//! drives: requests and tokens in, frames and outcomes out, time passed in
//! (`Instant` for timers, `SystemTime` for token claims), randomness through
//! [`Random`].
//!
//! * `server`: Kafka's broker-side semantics for one client connection
//!   (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER; KIP-368), configured by a
//!   [`ServerConfig`].
//! * `client`: login to a broker (PLAIN, SCRAM-SHA-256/512), with
//!   re-authentication before the broker's session lifetime ends,
//!   configured by a [`ClientConfig`].
//! * `messages`: SaslHandshake / SaslAuthenticate codecs.
//! * `plain`, `scram`, [`oauthbearer`]: the mechanisms.
//! * [`CredentialStore`]: users, hashed at load.
//!
//! An embedder builds the configurations and names the errors a session may
//! end with; the state machines themselves are the session's business.
//!
//! No secret reaches a `Debug` output or a log line: passwords, tokens, keys
//! and proofs are held in [`Secret`].

pub(crate) mod client;
pub(crate) mod credentials;
mod exchange;
pub mod external;
pub(crate) mod mechanism;
pub(crate) mod messages;
pub mod oauthbearer;
pub(crate) mod plain;
pub(crate) mod random;
pub(crate) mod scram;
pub(crate) mod secret;
pub(crate) mod server;
pub mod throttle;

#[cfg(test)]
pub(crate) mod test_support;

pub use client::{ClientConfig, ClientError};
pub(crate) use client::{ClientStep, SaslClient};
pub use credentials::{
    CredentialError, CredentialStore, CredentialStoreBuilder, DEFAULT_ITERATIONS, PasswordMismatch,
};
pub use external::{AuthRequest, ExternalFailure, ExternalPlain, Verdict};
pub use mechanism::{AuthFailure, Mechanism};
pub use messages::DecodeError;
pub(crate) use messages::RequestRef;
pub use plain::PlainError;
pub use random::{Random, RandomError, SystemRandom};
pub use scram::{Digest, ScramCredential, ScramCredentialBase64, ScramError, ScramMechanism};
pub use secret::{Secret, SecretBytes, SecretString};
pub(crate) use server::SaslServer;
pub use server::{FailureReason, Principal, ServerConfig, ServerConfigError};
