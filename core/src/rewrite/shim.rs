//! Temporary stand-ins until the rewriters land (replaced at merge).
use bytes::{BufMut, Bytes, BytesMut};

use super::{AddressMap, Rewrite, RewriteError};
use crate::api::ApiKey;

pub fn needs_rewrite(_api: ApiKey, _version: i16) -> bool {
    false
}

pub fn rewrite_response(
    _api: ApiKey,
    _version: i16,
    _body: &Bytes,
    _map: &dyn AddressMap,
) -> Result<Rewrite, RewriteError> {
    Ok(Rewrite::UNCHANGED)
}

pub mod api_versions {
    use super::*;

    #[derive(Debug, Clone, Default)]
    pub struct ApiVersionsPolicy {
        pub local: Vec<(ApiKey, i16, i16)>,
    }

    pub fn rewrite_api_versions(
        _version: i16,
        body: &[u8],
        _policy: &ApiVersionsPolicy,
    ) -> Result<Bytes, RewriteError> {
        Ok(Bytes::copy_from_slice(body))
    }

    pub fn unsupported_version_body() -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(35);
        b.put_i32(1);
        b.put_i16(18);
        b.put_i16(0);
        b.put_i16(4);
        b.freeze()
    }
}
