//! What every address rewriter shares: looking an endpoint up in the
//! [`AddressMap`], re-encoding one endpoint entry, and building an array whose
//! element count is known only once every entry has been looked up.

use bytes::{BufMut, BytesMut};

use crate::api::ApiKey;
use crate::wire;

use super::reader::{Read, Reader};
use super::{AddressMap, Advertised, Broker};

/// One endpoint entry as it appears in an array: `NodeId`, `Host`, `Port`,
/// then fields the rewrite keeps byte for byte (rack, flags, tagged fields).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint<'a> {
    pub node_id: i32,
    pub host: &'a [u8],
    pub port: i32,
    /// The encoded fields after `Port`, up to the end of the entry.
    pub trailer: &'a [u8],
}

impl<'a> Endpoint<'a> {
    /// Reads `NodeId`, `Host`, `Port`, then lets `rest` skip the fields after
    /// the port, which become the entry's [`trailer`](Self::trailer).
    pub(super) fn read(
        r: &mut Reader<'a>,
        flexible: bool,
        rest: impl FnOnce(&mut Reader<'a>) -> Read<()>,
    ) -> Read<Self> {
        let node_id = r.i32("node id")?;
        let host = r.string(flexible, "host")?;
        let port = r.i32("port")?;
        let trailer_at = r.offset();
        rest(r)?;
        Ok(Endpoint { node_id, host, port, trailer: r.since(trailer_at) })
    }

    /// The endpoint as the cluster advertised it.
    pub(super) fn observed(&self) -> Broker {
        Broker {
            node_id: self.node_id,
            host: String::from_utf8_lossy(self.host).into_owned(),
            port: self.port,
        }
    }

    /// Writes the entry with the advertised host and port and the original trailer.
    pub(super) fn put_advertised(&self, out: &mut BytesMut, flexible: bool, to: &Advertised<'_>) {
        out.put_i32(self.node_id);
        wire::put_string(out, flexible, to.host.as_bytes());
        out.put_i32(to.port);
        out.put_slice(self.trailer);
    }
}

/// The address clients must use for an endpoint, or `None` (logged) when the
/// map refuses it or its host cannot be encoded in a classic `STRING`.
pub(crate) fn advertise<'m>(
    map: &'m dyn AddressMap,
    api: ApiKey,
    node_id: i32,
    host: &[u8],
    port: i32,
) -> Option<Advertised<'m>> {
    let upstream = String::from_utf8_lossy(host);
    let found = map.advertised(node_id, &upstream, port);
    match found {
        Some(a) if a.host.len() <= i16::MAX as usize => Some(a),
        Some(_) => {
            tracing::warn!(%api, node_id, "advertised host name is too long to encode; broker hidden from the client");
            None
        }
        None => {
            tracing::warn!(
                %api,
                node_id,
                upstream_host = %upstream,
                upstream_port = port,
                "broker cannot be exposed through the proxy; hidden from the client"
            );
            None
        }
    }
}

/// Entries of an array being re-encoded, counted as they are written, so
/// entries can be dropped without knowing in advance how many remain.
#[derive(Debug)]
pub(crate) struct ArrayOut {
    items: BytesMut,
    count: usize,
}

impl ArrayOut {
    /// An empty array with room for `bytes` of entries.
    pub(super) fn with_capacity(bytes: usize) -> Self {
        ArrayOut { items: BytesMut::with_capacity(bytes), count: 0 }
    }

    /// Appends one entry written by `write`.
    pub(super) fn push(&mut self, write: impl FnOnce(&mut BytesMut)) {
        write(&mut self.items);
        self.count += 1;
    }

    /// Number of entries written.
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// Encoded size of the array (count prefix and entries).
    pub(super) fn encoded_len(&self, flexible: bool) -> usize {
        let prefix = match u32::try_from(self.count) {
            Ok(n) if flexible => wire::uvarint_len(n.saturating_add(1)),
            _ if flexible => 5,
            _ => 4,
        };
        prefix + self.items.len()
    }

    /// Writes the count prefix and the entries to `out`.
    pub(super) fn put_into(&self, out: &mut BytesMut, flexible: bool) {
        wire::put_array_len(out, flexible, Some(self.count));
        out.put_slice(&self.items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    struct Only(i32);
    impl AddressMap for Only {
        fn advertised(&self, node_id: i32, _host: &str, port: i32) -> Option<Advertised<'_>> {
            (node_id == self.0).then(|| Advertised { host: Cow::Borrowed("proxy"), port: port + 1 })
        }
    }

    #[test]
    fn endpoint_entry_round_trip_keeps_the_trailer() {
        let mut body = BytesMut::new();
        body.put_i32(7);
        wire::put_string(&mut body, true, b"kafka-7");
        body.put_i32(9092);
        wire::put_nullable_string(&mut body, true, Some(b"rack-a"));
        body.put_u8(0);
        let mut r = Reader::new(&body);
        let e = Endpoint::read(&mut r, true, |r| {
            r.nullable_string(true, "rack")?;
            r.skip_tagged_fields_if(true, "tags")
        })
        .expect("valid entry");
        assert!(r.rest().is_empty());
        assert_eq!(e.observed(), Broker { node_id: 7, host: "kafka-7".into(), port: 9092 });
        let to = advertise(&Only(7), ApiKey::METADATA, e.node_id, e.host, e.port).expect("mapped");
        let mut out = BytesMut::new();
        e.put_advertised(&mut out, true, &to);
        let mut expected = BytesMut::new();
        expected.put_i32(7);
        wire::put_string(&mut expected, true, b"proxy");
        expected.put_i32(9093);
        expected.put_slice(e.trailer);
        assert_eq!(out, expected);
        assert!(advertise(&Only(7), ApiKey::METADATA, 8, b"h", 1).is_none());
    }

    #[test]
    fn array_out_counts_and_sizes() {
        for flexible in [false, true] {
            let mut a = ArrayOut::with_capacity(0);
            for i in 0..130u8 {
                a.push(|b| b.put_u8(i));
            }
            let mut out = BytesMut::new();
            a.put_into(&mut out, flexible);
            assert_eq!(out.len(), a.encoded_len(flexible));
            assert_eq!(a.count(), 130);
        }
    }
}
