//! A certificate subject as RFC 2253 text, rendered the way Java's
//! `X500Principal.getName(RFC2253)` renders it, which is what Kafka's mapping
//! rules are written against. Apart from the rules because it is X.509 and
//! DER work, not pattern matching.

use x509_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use super::PrincipalError;

/// The subject of a DER certificate as Java's `X500Principal.getName(RFC2253)`
/// renders it.
pub fn subject_rfc2253(cert: &[u8]) -> Result<String, PrincipalError> {
    let (_, parsed) =
        X509Certificate::from_der(cert).map_err(|e| PrincipalError::Certificate { reason: e.to_string() })?;
    Ok(name_rfc2253(parsed.subject()))
}

/// An X.500 name as RFC 2253 text, Java style: most specific RDN first, the
/// attributes of a multi-valued RDN joined by `+` in encoded order, well-known
/// types by keyword, others as `OID=#hex-of-DER`.
fn name_rfc2253(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = attribute.attr_type().to_id_string();
            let value = attribute.attr_value();
            match (keyword(&oid), string_value(value)) {
                (Some(keyword), Some(text)) => {
                    out.push_str(keyword);
                    out.push('=');
                    escape_value(&text, &mut out);
                }
                (keyword, _) => {
                    out.push_str(keyword.unwrap_or(&oid));
                    out.push_str("=#");
                    push_der_hex(value, &mut out);
                }
            }
        }
    }
    out
}

/// The RFC 2253 keywords Java emits (`AVAKeyword` entries marked RFC 2253).
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The text of a directory string value, for the string types Java renders as
/// text (UTF8, Printable, T61, IA5, General, BMP); `None` for the others.
///
/// Like Java 17's `AVA.toRFC2253String`, the content bytes are decoded as UTF-8
/// whatever the type, so a BMPString comes out with `\00` escapes: rules
/// written against Kafka's output see the same text.
fn string_value(value: &Any<'_>) -> Option<String> {
    if value.header.class() != Class::Universal {
        return None;
    }
    match value.header.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::T61String
        | Tag::Ia5String
        | Tag::GeneralString
        | Tag::BmpString => Some(String::from_utf8_lossy(value.data).into_owned()),
        _ => None,
    }
}

/// Java's RFC 2253 escaping: `,=+<>#;"\` get a backslash, NUL becomes `\00`,
/// leading and trailing spaces (and CRs) get a backslash.
fn escape_value(text: &str, out: &mut String) {
    let chars: Vec<char> = text.chars().collect();
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = chars.iter().take_while(|c| blank(c)).count();
    let trail = chars.iter().rev().take_while(|c| blank(c)).count();
    let trail_start = chars.len().saturating_sub(trail).max(lead);
    for (i, c) in chars.iter().enumerate() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                out.push('\\');
                out.push(*c);
            }
            '\0' => out.push_str("\\00"),
            c if i < lead || i >= trail_start => {
                out.push('\\');
                out.push(*c);
            }
            c => out.push(*c),
        }
    }
}

/// Lower-case hex of the value's DER encoding (identifier, length, contents).
fn push_der_hex(value: &Any<'_>, out: &mut String) {
    let mut push = |b: u8| {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    };
    match value.header.raw_tag() {
        Some(raw) => raw.iter().copied().for_each(&mut push),
        None => {
            let class = (value.header.class() as u8) << 6;
            let constructed = if value.header.is_constructed() { 0x20 } else { 0 };
            let number = value.header.tag().0;
            if number < 31 {
                push(class | constructed | number as u8);
            } else {
                push(class | constructed | 0x1f);
                let mut groups = Vec::new();
                let mut n = number;
                loop {
                    groups.push((n & 0x7f) as u8);
                    n >>= 7;
                    if n == 0 {
                        break;
                    }
                }
                let last = groups.len() - 1;
                for (i, g) in groups.iter().rev().enumerate() {
                    push(if i < last { g | 0x80 } else { *g });
                }
            }
        }
    }
    let len = value.data.len();
    if len < 0x80 {
        push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        push(0x80 | significant.len() as u8);
        significant.into_iter().for_each(&mut push);
    }
    value.data.iter().copied().for_each(push);
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;

    use super::*;
    use crate::tls::config::{PemItem, certificates_from_pem};

    fn cert(pem: &[u8]) -> CertificateDer<'static> {
        certificates_from_pem(pem, PemItem::ClientCertificate).unwrap().remove(0)
    }

    /// Subjects rendered as OpenJDK 17 renders them (see tls/testdata/README.md).
    #[test]
    fn subjects_match_java_rfc2253() {
        assert_eq!(
            subject_rfc2253(&cert(include_bytes!("../testdata/rich.pem"))).unwrap(),
            r"2.5.4.5=#13023432,1.2.840.113549.1.9.1=#161064756b65406578616d706c652e636f6d,CN=Duke\=\#1+UID=duke,OU=Java\+Soft,O=Sun\, Inc.,L=Fulton,ST=MD,C=US,DC=example,DC=com"
        );
        assert_eq!(
            subject_rfc2253(&cert(include_bytes!("../testdata/odd.pem"))).unwrap(),
            "CN=\\ \\ Lead\\;trail\\<\\> \\\"q\\\" \u{e9}\\\\\\ ,2.5.4.12=#0c024472,OU=T61 value,\
             O=\\00S\\00\u{fffd}\\00n\\00\\+\\00C\\00o,L=#1c10000000550000006e0000006900000076,\
             ST=\\#hash,DC=x\\00y,C=US"
        );
        assert_eq!(subject_rfc2253(&cert(crate::tls::test_util::CLIENT1)).unwrap(), "CN=client1");
        assert!(matches!(subject_rfc2253(b"not a certificate"), Err(PrincipalError::Certificate { .. })));
    }

    #[test]
    fn value_escaping() {
        let escaped = |text: &str| {
            let mut out = String::new();
            escape_value(text, &mut out);
            out
        };
        assert_eq!(escaped("plain"), "plain");
        assert_eq!(escaped(" a b "), "\\ a b\\ ");
        assert_eq!(escaped("   "), "\\ \\ \\ ");
        assert_eq!(escaped("\r x"), "\\\r\\ x");
        assert_eq!(escaped("a,b=c+d<e>f#g;h\"i\\j"), "a\\,b\\=c\\+d\\<e\\>f\\#g\\;h\\\"i\\\\j");
        assert_eq!(escaped("nul\0"), "nul\\00");
        assert_eq!(escaped(""), "");
    }
}
