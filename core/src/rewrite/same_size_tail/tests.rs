//! Tests of the same-size tail rewriter: the layout search, then whole tails.

use super::*;
use std::borrow::Cow;

use crate::rewrite::Advertised;

/// The tails in these tests are Fetch v16 tails.
const API: ApiKey = ApiKey::FETCH;

#[test]
fn wide_varints_read_back() {
    for value in [0u32, 1, 127, 128, 16_383, 16_384, 1 << 21, u32::MAX] {
        for width in wire::uvarint_len(value)..=5 {
            let mut buf = BytesMut::new();
            put_uvarint_wide(&mut buf, Varint { value, width });
            assert_eq!(buf.len(), width, "{value} in {width}");
            assert_eq!(wire::uvarint(&buf).map(|(r, v)| (r.len(), v)), Ok((0, value)));
        }
    }
}

/// The lengths a configuration (endpoints kept or not, pad or not) can
/// take: every varint may widen to 5 bytes, and a pad's data is unbounded.
fn reachable(shape: &Shape, endpoints: Option<usize>, pad: bool) -> Option<(usize, Option<usize>)> {
    let pad_tag = if pad { Some(shape.pad_tag?) } else { None };
    let count = (shape.others_count + usize::from(endpoints.is_some()) + usize::from(pad)) as u32;
    let mut varints = vec![count];
    if let Some(e) = endpoints {
        varints.extend([0, e as u32]);
    }
    varints.extend(pad_tag.into_iter().chain(pad.then_some(0)));
    let min: usize = varints.iter().map(|&v| wire::uvarint_len(v)).sum::<usize>()
        + shape.others_len
        + endpoints.unwrap_or(0);
    let slack: usize = varints.iter().map(|&v| 5 - wire::uvarint_len(v)).sum();
    Some((min, (!pad).then_some(min + slack)))
}

#[test]
fn a_layout_is_found_whenever_one_exists() {
    let shapes = [
        Shape { others_count: 0, others_len: 0, pad_tag: Some(1) },
        Shape { others_count: 2, others_len: 9, pad_tag: Some(200) },
        Shape { others_count: 1, others_len: 3, pad_tag: Some(1 << 28) },
        Shape { others_count: 130, others_len: 300, pad_tag: Some(1 << 14) },
        Shape { others_count: 0, others_len: 0, pad_tag: None },
    ];
    for shape in shapes {
        for endpoints in [None, Some(1), Some(20), Some(130)] {
            let configs: Vec<_> = [(endpoints, false), (endpoints, true), (None, false), (None, true)]
                .into_iter()
                .filter_map(|(e, pad)| reachable(&shape, e, pad).map(|r| (e.is_some(), r)))
                .collect();
            let fits = |t: usize, (min, max): (usize, Option<usize>)| t >= min && max.is_none_or(|m| t <= m);
            for target in 0..700 {
                let keepable = configs.iter().any(|&(keep, r)| keep && fits(target, r));
                let possible = configs.iter().any(|&(_, r)| fits(target, r));
                let layout = shape.plan(target, endpoints);
                assert_eq!(layout.is_some(), possible, "{shape:?} {endpoints:?} {target}");
                if let Some(layout) = layout {
                    assert_eq!(layout.endpoints.is_some(), keepable, "{shape:?} {endpoints:?} {target}");
                    let fixed = shape.others_len + layout.endpoints.map_or(0, |_| endpoints.unwrap_or(0));
                    assert_eq!(layout.len(fixed), target, "{shape:?} {endpoints:?} {target}");
                    let out = layout.write(&ArrayOut::with_capacity(0), &[]);
                    let written = out.len() + fixed - layout.endpoints.map_or(0, |_| 1);
                    assert_eq!(written, target, "{shape:?} {endpoints:?} {target}: written");
                }
            }
        }
    }
}

#[test]
fn one_byte_short_widens_instead_of_padding() {
    let shape = Shape { others_count: 0, others_len: 0, pad_tag: Some(1) };
    // count 1, tag 0, size 20, 20 bytes = 23; one more byte must widen.
    let layout = shape.plan(24, Some(20)).expect("layout");
    assert_eq!(layout.pad, None);
    assert_eq!(layout.endpoints.map(|(_, size)| size.width), Some(2));
    // Two more bytes: an empty pad field instead.
    let layout = shape.plan(25, Some(20)).expect("layout");
    assert_eq!(layout.pad, Some((Varint::minimal(1), Varint::minimal(0))));
}

/// Advertises every broker as one host, keeping its port.
pub(crate) struct Renamed(pub(crate) &'static str);
impl AddressMap for Renamed {
    fn advertised(&self, _node_id: i32, _host: &str, port: i32) -> Option<Advertised<'_>> {
        Some(Advertised { host: Cow::Borrowed(self.0), port })
    }
}

/// A tail with tag 0 holding one endpoint (node 1, `host`, port 9092, no rack).
pub(crate) fn tail_with(host: &str, extra: &[(u32, &[u8])]) -> Vec<u8> {
    let mut endpoints = BytesMut::new();
    wire::put_array_len(&mut endpoints, true, Some(1));
    endpoints.put_i32(1);
    wire::put_string(&mut endpoints, true, host.as_bytes());
    endpoints.put_i32(9092);
    wire::put_nullable_string(&mut endpoints, true, None);
    endpoints.put_u8(0);
    let mut fields = vec![wire::TaggedField { tag: 0, data: &endpoints }];
    fields.extend(extra.iter().map(|&(tag, data)| wire::TaggedField { tag, data }));
    let mut out = Vec::new();
    wire::put_tagged_fields(&mut out, fields.into_iter());
    out
}

fn rewritten(tail: &[u8], map: &dyn AddressMap) -> (Vec<u8>, Observed) {
    let rewrite = rewrite_tail_same_size(API, 16, 50, tail, map).expect("rewrite");
    let Body::Spliced { front, new, back } = rewrite.body else { panic!("spliced") };
    assert!(front.is_empty() && back.is_empty());
    assert_eq!(new.len(), tail.len());
    (new.to_vec(), rewrite.observed)
}

#[test]
fn same_size_tails() {
    let tail = tail_with("kafka-1", &[(5, b"xy")]);
    // Same length host: only the host changes.
    let (new, _) = rewritten(&tail, &Renamed("proxy-1"));
    assert_eq!(new, tail_with("proxy-1", &[(5, b"xy")]));
    // One byte shorter: a non-minimal size varint, no pad.
    let (new, _) = rewritten(&tail, &Renamed("proxy1"));
    let fields = wire::tagged_fields(&new).expect("valid").1;
    assert_eq!(fields.len(), 2);
    assert_eq!(new.get(2..4), Some(&[0x80 | 18, 0x00][..]), "size 18 in two bytes");
    // Several bytes shorter: a pad field with tag 6, after tag 5.
    let (new, _) = rewritten(&tail, &Renamed("p"));
    let tags: Vec<_> = wire::tagged_fields(&new).expect("valid").1.iter().map(|f| f.tag).collect();
    assert_eq!(tags, vec![0, 5, 6]);
    // Longer: NodeEndpoints left out, tag 5 kept, padded.
    let (new, observed) = rewritten(&tail, &Renamed("a-much-longer-proxy-host"));
    let fields: Vec<_> = wire::tagged_fields(&new).expect("valid").1.iter().collect();
    assert_eq!(fields.first().map(|f| (f.tag, f.data)), Some((5, &b"xy"[..])));
    assert_eq!(fields.get(1).map(|f| f.tag), Some(6));
    assert!(fields.get(1).is_some_and(|f| f.data.iter().all(|&b| b == 0)));
    let Observed::Some(seen) = observed else { panic!("observed") };
    assert_eq!(seen.first().map(|b| (b.node_id, b.host.as_str(), b.port)), Some((1, "kafka-1", 9092)));
}

#[test]
fn tails_without_endpoints_are_unchanged_and_bad_tails_refused() {
    let none = [1u8, 3, 1, 7];
    assert_eq!(rewrite_tail_same_size(API, 16, 0, &none, &Renamed("p")), Ok(Rewrite::UNCHANGED));
    assert_eq!(rewrite_tail_same_size(API, 16, 0, &[0], &Renamed("p")), Ok(Rewrite::UNCHANGED));
    let empty_endpoints = [1u8, 0, 1, 1];
    assert_eq!(rewrite_tail_same_size(API, 16, 0, &empty_endpoints, &Renamed("p")), Ok(Rewrite::UNCHANGED));
    let bad = |tail: &[u8]| rewrite_tail_same_size(API, 16, 10, tail, &Renamed("p"));
    assert!(matches!(bad(&[]), Err(RewriteError::Malformed { offset: 10, .. })));
    assert!(matches!(bad(&[0, 9]), Err(RewriteError::Malformed { offset: 11, .. })), "trailing byte");
    assert!(matches!(bad(&[1, 0, 1, 0]), Err(RewriteError::Malformed { offset: 13, .. })), "null array");
}
