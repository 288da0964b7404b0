//! `auth_swap`: per-principal upstream credentials (the seed proxy's semantics).

use std::collections::BTreeMap;

use super::{Checker, Protocol};
use crate::model::{ANONYMOUS, AuthSwap, ClientAuth, Downstream, Upstream, UpstreamAuth};
use crate::raw::RawAuthSwap;
use crate::scalar::UserPassword;

impl Checker<'_> {
    /// Parses `auth_swap` when it is enabled and will be used. Returns the upstream side and
    /// the downstream credentials it contributes.
    pub(super) fn auth_swap(
        &mut self,
        raw: Option<RawAuthSwap>,
        up: Protocol,
        down: Protocol,
    ) -> Option<SwapParts> {
        let raw = raw?;
        if !raw.enabled {
            let lists = [&raw.downstream_credentials, &raw.upstream_credentials];
            if lists.iter().any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
                || raw.mapping.as_ref().is_some_and(|m| !m.is_empty())
            {
                self.report.warn("auth_swap", "ignored: auth_swap.enabled is false");
            }
            return None;
        }
        if !up.value.uses_sasl() {
            self.report.warn(
                "auth_swap",
                format!(
                    "ignored: upstream.security_protocol {} has no SASL, so there is no upstream login to swap",
                    up.shown()
                ),
            );
            return None;
        }

        let mut upstream_credentials = BTreeMap::new();
        for (i, entry) in raw.upstream_credentials.unwrap_or_default().into_iter().enumerate() {
            let UserPassword { user, password } = entry.0;
            if upstream_credentials.insert(user.clone(), password).is_some() {
                self.report.warn(
                    format!("auth_swap.upstream_credentials[{i}]"),
                    format!("user {user} is listed again; the last entry wins"),
                );
            }
        }
        if upstream_credentials.is_empty() {
            self.report.error("auth_swap.upstream_credentials", "expected at least one user=password entry");
        }

        let mut mapping = BTreeMap::new();
        for (i, entry) in raw.mapping.unwrap_or_default().into_iter().enumerate() {
            let entry = entry.0;
            if !upstream_credentials.contains_key(&entry.to) {
                let known: Vec<&str> = upstream_credentials.keys().map(String::as_str).collect();
                self.report.error(
                    format!("auth_swap.mapping[{i}]"),
                    format!(
                        "expected an upstream user listed in auth_swap.upstream_credentials ({}), got {:?}",
                        known.join(", "),
                        entry.to
                    ),
                );
            }
            if mapping.insert(entry.from.clone(), entry.to).is_some() {
                self.report.warn(
                    format!("auth_swap.mapping[{i}]"),
                    format!("principal {} is mapped again; the last entry wins", entry.from),
                );
            }
        }

        let mut downstream = Vec::new();
        for (i, entry) in raw.downstream_credentials.unwrap_or_default().into_iter().enumerate() {
            let path = format!("auth_swap.downstream_credentials[{i}]");
            if !down.value.uses_sasl() {
                self.report.warn(
                    &path,
                    format!("ignored: downstream.security_protocol {} does not use SASL", down.shown()),
                );
                continue;
            }
            downstream.push((path, entry.0));
        }
        Some(SwapParts { swap: AuthSwap { upstream_credentials, mapping }, downstream })
    }

    /// Checks that every client principal the proxy can know has an upstream login.
    pub(super) fn swap_routes(&mut self, upstream: &Upstream, downstream: &Downstream) {
        let UpstreamAuth::Swap { swap, .. } = &upstream.auth else { return };
        let mtls = downstream.tls.as_ref().is_some_and(|t| t.client_auth != ClientAuth::None);
        match &downstream.sasl {
            None if !mtls && swap.upstream_for(ANONYMOUS).is_none() => self.report.error(
                "auth_swap.mapping",
                format!(
                    "clients are not authenticated (principal {ANONYMOUS}): expected a mapping \
                     {ANONYMOUS}=<upstream user> or an upstream credential named {ANONYMOUS}"
                ),
            ),
            None => {}
            Some(sasl) => {
                let unmapped: Vec<&str> = sasl
                    .credentials
                    .user_names()
                    .into_iter()
                    .filter(|u| swap.upstream_for(u).is_none())
                    .collect();
                if !unmapped.is_empty() {
                    self.report.warn(
                        "auth_swap.mapping",
                        format!("no mapping for {}: these users are refused upstream", unmapped.join(", ")),
                    );
                }
            }
        }
    }
}

/// What an enabled `auth_swap` contributes: the upstream login and client credentials.
pub(super) struct SwapParts {
    pub(super) swap: AuthSwap,
    /// `auth_swap.downstream_credentials` entries with their key paths.
    pub(super) downstream: Vec<(String, UserPassword)>,
}
