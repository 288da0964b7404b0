//! What sessions share about the cluster beyond its broker addresses: the
//! broker's ApiVersions answer, so a proxy that authenticates clients
//! itself can answer their ApiVersions before it opens any broker
//! connection for them.
//!
//! Owned by the [`crate::proxy::Proxy`] (kept across reloads) and handed to
//! every session. Learned from the proxy's own probe and from any session
//! that forwarded an ApiVersions request.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

use crate::rewrite::ApiVersionsView;

/// A broker's successful ApiVersions response body and the request version
/// it answers.
#[derive(Debug, Clone)]
pub(crate) struct LearnedApiVersions {
    pub(crate) version: i16,
    pub(crate) body: Bytes,
}

/// The shared view.
#[derive(Debug, Default)]
pub(crate) struct ClusterView {
    api_versions: Mutex<Option<LearnedApiVersions>>,
}

impl ClusterView {
    /// A broker answered ApiVersions `version` with `body` (after the
    /// correlation id): kept when it is a success that decodes, preferring
    /// the highest request version (it carries the most).
    pub(crate) fn learn_api_versions(&self, version: i16, body: Bytes) {
        let usable = ApiVersionsView::parse(version, &body).is_ok_and(|v| v.is_success_at(version));
        if !usable {
            return;
        }
        let mut learned = self.api_versions.lock().unwrap_or_else(PoisonError::into_inner);
        if learned.as_ref().is_none_or(|l| l.version <= version) {
            *learned = Some(LearnedApiVersions { version, body });
        }
    }

    /// The broker's ApiVersions answer, once learned.
    pub(crate) fn api_versions(&self) -> Option<LearnedApiVersions> {
        self.api_versions.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_successes_at_the_highest_version() {
        let view = ClusterView::default();
        // v0: ErrorCode 0, ApiKeys [{18, 0, 3}].
        let v0 = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3]);
        // v0 UNSUPPORTED_VERSION: ignored.
        let error = Bytes::from_static(&[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 3]);
        view.learn_api_versions(0, error);
        assert!(view.api_versions().is_none());
        view.learn_api_versions(0, v0.clone());
        assert_eq!(view.api_versions().map(|l| l.version), Some(0));
        view.learn_api_versions(2, Bytes::from_static(b"garbage"));
        assert_eq!(view.api_versions().map(|l| l.body), Some(v0));
    }
}
