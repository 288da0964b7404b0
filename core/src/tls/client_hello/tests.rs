//! Tests of the ClientHello SNI peek: real rustls ClientHellos split across
//! records and reads, synthetic and truncated ones, and random bytes (proptest).

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::tls::config::{ClientAuth, TlsVersions};
use crate::tls::driver::{RustlsSession, TlsDriver};
use crate::tls::test_util::*;

/// The first flight of a rustls client (its ClientHello, one record).
fn hello_from(config: Arc<rustls::ClientConfig>, server: ServerName<'static>) -> Vec<u8> {
    let mut client = End::new(RustlsSession::client(config, server).unwrap());
    client.process().unwrap();
    client.outgoing.to_vec()
}

fn hello_with_sni(host: &str) -> Vec<u8> {
    hello_from(client_cfg(CA, None, TlsVersions::Tls12And13), name(host))
}

fn hello_without_sni() -> Vec<u8> {
    let mut config = (*client_cfg(CA, None, TlsVersions::Tls12And13)).clone();
    config.enable_sni = false;
    hello_from(Arc::new(config), name("broker-1.proxy.test"))
}

/// Re-frames a single-record handshake flight into records of `size` bytes.
fn refragment(flight: &[u8], size: usize) -> Vec<u8> {
    let payload = &flight[5..];
    let mut out = Vec::new();
    for chunk in payload.chunks(size) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[test]
fn real_client_hellos() {
    assert_eq!(peek_sni(&hello_with_sni("Broker-1.Proxy.Test")), SniPeek::Sni("broker-1.proxy.test".into()));
    assert_eq!(peek_sni(&hello_without_sni()), SniPeek::NoSni);
    // rustls sends no SNI for an IP address.
    let by_ip = hello_from(
        client_cfg(CA, None, TlsVersions::Tls12Only),
        ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    );
    assert_eq!(peek_sni(&by_ip), SniPeek::NoSni);
}

#[test]
fn split_across_records_and_reads() {
    let hello = hello_with_sni("broker-7.proxy.test");
    for size in [1, 2, 3, 4, 5, 17, 100, 511] {
        let framed = refragment(&hello, size);
        assert_eq!(peek_sni(&framed), SniPeek::Sni("broker-7.proxy.test".into()), "records of {size}");
        // Every proper prefix asks for more.
        for cut in 0..framed.len() {
            assert_eq!(peek_sni(&framed[..cut]), SniPeek::NeedMore, "records of {size}, cut at {cut}");
        }
    }
    // The re-framed hello is still a ClientHello rustls accepts: the server
    // built after the peek completes the handshake from the same bytes.
    let mut pair = Pair::new(
        client_cfg(CA, None, TlsVersions::Tls12And13),
        "broker-7.proxy.test",
        server_cfg(ClientAuth::None, TlsVersions::Tls12And13),
    );
    pair.client.process().unwrap();
    let flight = pair.client.outgoing.split();
    let framed = refragment(&flight, 64);
    for chunk in framed.chunks(10) {
        pair.server.incoming.extend_from_slice(chunk);
        pair.server.process().unwrap();
    }
    assert_eq!(peek_sni(&framed), SniPeek::Sni("broker-7.proxy.test".into()));
    pair.handshake();
    assert!(pair.server.tls.status().handshake_complete);
}

#[test]
fn trailing_records_are_ignored() {
    let mut bytes = hello_with_sni("a.proxy.test");
    bytes.extend_from_slice(&[20, 3, 3, 0, 1, 1]); // a ChangeCipherSpec after the hello
    assert_eq!(peek_sni(&bytes), SniPeek::Sni("a.proxy.test".into()));
}

#[test]
fn truncations_never_claim_a_name_they_do_not_have() {
    let hello = hello_with_sni("broker-1.proxy.test");
    for cut in 0..hello.len() {
        assert_eq!(peek_sni(&hello[..cut]), SniPeek::NeedMore, "cut at {cut}");
    }
    // Shrinking the announced lengths instead of the bytes: never a panic,
    // never a wrong name.
    for cut in 1..hello.len() - 9 {
        let mut shrunk = hello.clone();
        let record_len = (hello.len() - 5 - cut) as u16;
        shrunk[3..5].copy_from_slice(&record_len.to_be_bytes());
        let hs_len = (hello.len() - 9 - cut) as u32;
        shrunk[6..9].copy_from_slice(&hs_len.to_be_bytes()[1..]);
        shrunk.truncate(hello.len() - cut);
        match peek_sni(&shrunk) {
            SniPeek::Sni(name) => assert_eq!(name, "broker-1.proxy.test"),
            SniPeek::NeedMore => panic!("complete message reported incomplete (cut {cut})"),
            SniPeek::NoSni | SniPeek::NotClientHello(_) => {}
        }
    }
}

#[test]
fn not_client_hellos() {
    use NotClientHello::*;
    assert_eq!(
        peek_sni(&[0, 0, 0, 0x1f, 0, 18]),
        SniPeek::NotClientHello(NotHandshakeRecord { content_type: 0 })
    );
    assert_eq!(
        peek_sni(b"GET / HTTP/1.1\r\n"),
        SniPeek::NotClientHello(NotHandshakeRecord { content_type: b'G' })
    );
    assert_eq!(peek_sni(&[22, 2]), SniPeek::NotClientHello(BadRecordVersion { major: 2 }));
    assert_eq!(peek_sni(&[22, 3, 1, 0, 0]), SniPeek::NotClientHello(BadRecordLength { len: 0 }));
    assert_eq!(peek_sni(&[22, 3, 1, 0x48, 0x01]), SniPeek::NotClientHello(BadRecordLength { len: 0x4801 }));
    // A ServerHello, detected from the first byte of the body.
    assert_eq!(
        peek_sni(&[22, 3, 3, 0, 80, 2]),
        SniPeek::NotClientHello(OtherHandshakeMessage { handshake_type: 2 })
    );
    // Announcing more than 16 KiB is refused before it is buffered.
    assert_eq!(
        peek_sni(&[22, 3, 1, 0x40, 0x00, 1, 0, 0x40, 0x01]),
        SniPeek::NotClientHello(TooLarge { len: 0x4001 })
    );
    // A record of another type in the middle of a split ClientHello.
    let hello = refragment(&hello_with_sni("a.proxy.test"), 10);
    let mut interleaved = hello[..15].to_vec();
    interleaved.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
    assert_eq!(peek_sni(&interleaved), SniPeek::NotClientHello(Interleaved { content_type: 21 }));
}

/// A minimal TLS 1.2 ClientHello around the given extensions block.
fn synthetic(extensions: Option<&[u8]>) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0xc0, 0x2f]); // one suite
    body.extend_from_slice(&[1, 0]); // null compression
    if let Some(ext) = extensions {
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(ext);
    }
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    let mut record = vec![22, 3, 1];
    record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    record.extend_from_slice(&msg);
    record
}

fn server_name_ext(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, name) in entries {
        list.push(*kind);
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name);
    }
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
    ext.extend_from_slice(&list);
    ext
}

#[test]
fn synthetic_hellos() {
    use NotClientHello::*;
    assert_eq!(peek_sni(&synthetic(None)), SniPeek::NoSni, "no extensions block at all");
    assert_eq!(peek_sni(&synthetic(Some(&[]))), SniPeek::NoSni);
    let sni = server_name_ext(&[(0, b"kafka.example.com.")]);
    assert_eq!(peek_sni(&synthetic(Some(&sni))), SniPeek::Sni("kafka.example.com".into()));
    let ip = server_name_ext(&[(0, b"10.0.0.1")]);
    assert_eq!(peek_sni(&synthetic(Some(&ip))), SniPeek::NoSni, "an IP literal is ignored, as rustls does");
    let bad = server_name_ext(&[(0, b"under_score..example")]);
    assert_eq!(peek_sni(&synthetic(Some(&bad))), SniPeek::NotClientHello(InvalidServerName));
    let two = server_name_ext(&[(0, b"a.example"), (0, b"b.example")]);
    assert_eq!(peek_sni(&synthetic(Some(&two))), SniPeek::NotClientHello(DuplicateServerName));
    let mut twice = sni.clone();
    twice.extend_from_slice(&sni);
    assert_eq!(peek_sni(&synthetic(Some(&twice))), SniPeek::NotClientHello(DuplicateServerName));
    let unknown_type_first = server_name_ext(&[(7, b"x"), (0, b"a.example")]);
    assert_eq!(peek_sni(&synthetic(Some(&unknown_type_first))), SniPeek::NoSni);
    // Another extension before server_name is skipped.
    let mut both = vec![0, 23, 0, 0]; // extended_master_secret, empty
    both.extend_from_slice(&sni);
    assert_eq!(peek_sni(&synthetic(Some(&both))), SniPeek::Sni("kafka.example.com".into()));
    // An extension whose length overruns the block.
    assert_eq!(
        peek_sni(&synthetic(Some(&[0, 0, 0, 9, 0]))),
        SniPeek::NotClientHello(Malformed { field: "extension" })
    );
}

/// Found by the `client_hello` fuzz target: a 3-byte first record whose
/// first byte is not ClientHello must be refused whatever follows.
#[test]
fn decided_prefix_is_final() {
    let input = [0x16, 0x03, 0x00, 0x00, 0x03, 0x3b, 0x16, 0xff, 0x03, 0x00, 0x2f, 0x0a, 0x0a];
    let expected = SniPeek::NotClientHello(NotClientHello::OtherHandshakeMessage { handshake_type: 0x3b });
    assert_eq!(peek_sni(&input[..6]), expected);
    assert_eq!(peek_sni(&input), expected);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Once a prefix is decided, more bytes never change the answer.
    #[test]
    fn answers_do_not_depend_on_read_splits(
        records in proptest::collection::vec(
            (prop_oneof![Just(22u8), any::<u8>()], 0u16..40, proptest::collection::vec(any::<u8>(), 0..40)),
            1..5,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        for (kind, len, payload) in &records {
            bytes.extend_from_slice(&[*kind, 3, 1]);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(payload);
        }
        let whole = peek_sni(&bytes);
        let early = peek_sni(&bytes[..cut.index(bytes.len() + 1)]);
        if early != SniPeek::NeedMore {
            prop_assert_eq!(early, whole);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let SniPeek::Sni(name) = peek_sni(&bytes) {
            prop_assert!(ServerName::try_from(name.as_str()).is_ok());
        }
    }

    #[test]
    fn random_handshake_records_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        claimed in 0u32..600,
    ) {
        let mut msg = vec![1];
        msg.extend_from_slice(&claimed.to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        let mut record = vec![22, 3, 1];
        record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        record.extend_from_slice(&msg);
        if let SniPeek::Sni(name) = peek_sni(&record) {
            prop_assert!(matches!(ServerName::try_from(name.as_str()), Ok(ServerName::DnsName(_))));
        }
    }

    #[test]
    fn mutated_real_hello(index in 0usize..400, value in any::<u8>(), split in 1usize..300) {
        let mut hello = hello_with_sni("broker-3.proxy.test");
        let at = index % hello.len();
        hello[at] = value;
        let whole = peek_sni(&hello);
        if let SniPeek::Sni(name) = &whole {
            prop_assert!(ServerName::try_from(name.as_str()).is_ok());
        }
        if hello[0] == 22 && hello[1] == 3 {
            let reframed = refragment(&hello, split);
            let again = peek_sni(&reframed);
            if let (SniPeek::Sni(a), SniPeek::Sni(b)) = (&whole, &again) {
                prop_assert_eq!(a, b);
            }
        }
    }
}
