//! The internals the fuzz targets (`fuzz/fuzz_targets`) drive directly:
//! framing, the response rewriters, the Fetch stream walker, the SASL server,
//! JWT validation, the ClientHello peek and the policy's refusals and throttle
//! field. Compiled only under `cfg(fuzzing)`, which
//! cargo-fuzz sets; not part of the API.

pub use crate::frame::FrameDecoder;
pub use crate::rewrite::api_versions::{ApiVersionsPolicy, ApiVersionsView, rewrite_api_versions};
pub use crate::rewrite::fetch_stream::FetchStream;
pub use crate::rewrite::{
    AddressMap, Advertised, Body, Broker, Observed, Rewrite, needs_rewrite, rewrite_response,
};
pub use crate::sasl::messages::RequestRef;
pub use crate::sasl::server::{Admission, Authentication, SaslServer, ServerStep};
pub use crate::tls::client_hello::{NotClientHello, SniPeek, peek_sni};

use crate::api::{self, ApiKey};

/// The highest version of `api` the proxy parses (ApiVersions is clamped to
/// it), `None` for an API it does not decode.
pub fn max_version(api: ApiKey) -> Option<i16> {
    api::decoded(api).map(|d| d.max_version)
}

/// Checks `token` with `validator` at wall-clock time `wall`: true when accepted.
pub fn validate_token(
    validator: &crate::sasl::oauthbearer::JwtValidator,
    token: &str,
    wall: std::time::SystemTime,
) -> bool {
    validator.validate(token, wall).is_ok()
}

/// Every API the policy refuses with its own response, with the versions.
pub fn refusable() -> Vec<(ApiKey, i16, i16)> {
    crate::policy::refusal::SPECS.iter().map(|s| (s.key, s.min, s.max)).collect()
}

/// Refuses a forbidden request of `api` at `version` (`body`: the request
/// after its header) as a session would: `Ok(Some(n))` is a response body of
/// `n` bytes, `Ok(None)` no response (Produce with acks=0).
pub fn refuse(api: ApiKey, version: i16, body: &[u8]) -> Result<Option<usize>, crate::policy::RefusalError> {
    use crate::policy::refusal::{Refusal, refuse};
    refuse(api, version, body).map(|r| match r {
        Refusal::Respond(bytes) => Some(bytes.len()),
        Refusal::Silent => None,
    })
}

/// Raises the `throttle_time_ms` of a Produce or Fetch response body to
/// `ms` where it has one: true when it did.
pub fn raise_throttle(api: ApiKey, version: i16, body: &mut [u8], ms: u32) -> bool {
    use crate::policy::throttle;
    match throttle::offset(api, version, body) {
        Ok(Some(at)) => throttle::raise(body, at, std::time::Duration::from_millis(u64::from(ms))),
        _ => false,
    }
}
