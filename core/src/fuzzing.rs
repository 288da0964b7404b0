//! The internals the fuzz targets (`fuzz/fuzz_targets`) drive directly:
//! framing, the response rewriters, the Fetch stream walker, the SASL server
//! and the ClientHello peek. Compiled only under `cfg(fuzzing)`, which
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
