//! The forward proxy handshakes (SOCKS5, HTTP CONNECT) against arbitrary
//! replies split at arbitrary points: never panics, never grows without
//! bound, and once open (or failed) takes nothing more; the bytes left after
//! an open tunnel are a suffix of what the proxy sent.
#![no_main]
use bytes::BytesMut;
use kafka_proxy_core::egress::{ForwardProxy, ForwardProxyKind, ProxyCredentials, Tunnel, TunnelStep};
use kafka_proxy_core::sasl::SecretString;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((&split, reply)) = rest.split_first() else { return };
    let kind = if mode & 1 == 0 { ForwardProxyKind::Socks5 } else { ForwardProxyKind::HttpConnect };
    let credentials = (mode & 2 != 0).then(|| ProxyCredentials {
        username: "user".into(),
        password: SecretString::new("password".into()),
    });
    let host = if mode & 4 == 0 { "kafka-1.internal" } else { "10.0.0.1" };
    let proxy = ForwardProxy { kind, host: "127.0.0.1".into(), port: 1080, credentials };
    let Ok((mut tunnel, _first)) = Tunnel::start(&proxy, host, 9092) else { return };
    let step = usize::from(split).max(1);
    let mut rx = BytesMut::new();
    let mut fed = 0;
    for chunk in reply.chunks(step) {
        rx.extend_from_slice(chunk);
        fed += chunk.len();
        match tunnel.on_bytes(&mut rx) {
            Ok(TunnelStep::NeedMore | TunnelStep::Send(_)) => {}
            Ok(TunnelStep::Open) => {
                assert!(reply[..fed].ends_with(&rx), "the broker's bytes are what followed the reply");
                assert!(tunnel.on_bytes(&mut BytesMut::from(&b"x"[..])).is_err(), "done means done");
                return;
            }
            Err(_) => return,
        }
        assert!(rx.len() <= 17 * 1024, "a reply never buffers without bound");
    }
});
