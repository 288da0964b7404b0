//! Policy: which APIs each principal may use, how fast it may move bytes,
//! and how many connections it (each client address, the whole process)
//! may hold.
//!
//! * `config`: the `policy` section as plain data ([`PolicyConfig`]).
//! * `refusal`: a forbidden request answered the way Kafka answers an
//!   unauthorized principal (that API's own response, the authorization
//!   error in every entity).
//! * `quota`: byte rates measured over sampled windows, and the throttle
//!   time Kafka computes from them.
//! * `throttle`: where Produce and Fetch responses carry `throttle_time_ms`.
//! * `state`: what every session of a proxy shares across reloads
//!   (connection counts, quota windows, the refusal log, counters).

mod api_set;
mod config;
mod quota;
pub(crate) mod refusal;
pub(crate) mod state;
pub(crate) mod throttle;

pub use api_set::ApiSet;
pub use config::{PolicyConfig, PrincipalLimits, PrincipalPolicy, QuotaWindow, Resolved};
pub use refusal::{MAX_REFUSAL_BYTES, RefusalError};
pub use state::ConnectionLimit;

use crate::api::ApiKey;

/// The versions at which the proxy refuses `key` with that API's own
/// authorization error (`None`: a client sending a forbidden `key` is
/// disconnected instead). A policy forbidding `key` advertises it only at
/// these versions.
pub fn refusable_versions(key: ApiKey) -> Option<(i16, i16)> {
    refusal::spec(key).map(|s| (s.min, s.max))
}
