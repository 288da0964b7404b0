//! Carrying out the proxy's actions: the same decisions in every runtime,
//! only the registration of sockets and sessions differs (the [`Host`]).

use std::net::{SocketAddr, TcpListener};

use kafka_proxy_core::proxy::{Proxy, ProxyAction};
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::Session;
use tracing::{error, info};

use crate::RunError;
use crate::net;

/// What a runtime does with the proxy's actions.
pub trait Host {
    /// Start accepting on `listener` (bound, non-blocking) for `id`.
    fn listen(&mut self, id: ListenerId, addr: SocketAddr, listener: TcpListener);
    /// Stop accepting for `id` (connections already accepted continue).
    fn unlisten(&mut self, id: ListenerId);
    /// Drive `session` like an accepted one, without a client socket.
    fn spawn(&mut self, session: Session);
}

/// Carries out every pending action of `proxy`. A listener that cannot be
/// bound is logged and reported to the proxy (which may ask again later).
pub fn apply(proxy: &mut Proxy, host: &mut impl Host, reuse_port: bool) {
    while let Some(action) = proxy.poll_action() {
        match action {
            ProxyAction::Listen { id, addr } => match net::bind(addr, reuse_port) {
                Ok(listener) => {
                    info!(listener = %id, %addr, "listening");
                    host.listen(id, addr, listener);
                }
                Err(error) => {
                    error!(listener = %id, %addr, %error, "cannot listen");
                    proxy.handle_listen_failed(id, &error);
                }
            },
            ProxyAction::Unlisten { id } => {
                info!(listener = %id, "stopped listening");
                host.unlisten(id);
            }
            ProxyAction::Spawn(session) => host.spawn(*session),
        }
    }
}

/// Carries out the actions of a new proxy: its first listeners must all
/// bind, or the proxy cannot serve.
pub fn apply_initial(proxy: &mut Proxy, host: &mut impl Host, reuse_port: bool) -> Result<(), RunError> {
    while let Some(action) = proxy.poll_action() {
        match action {
            ProxyAction::Listen { id, addr } => {
                let listener =
                    net::bind(addr, reuse_port).map_err(|error| RunError::Bind { id, addr, error })?;
                info!(listener = %id, %addr, "listening");
                host.listen(id, addr, listener);
            }
            ProxyAction::Unlisten { id } => host.unlisten(id),
            ProxyAction::Spawn(session) => host.spawn(*session),
        }
    }
    Ok(())
}
