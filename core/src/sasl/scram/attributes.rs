//! SCRAM message grammar (RFC 5802 §7): parsing and building the four
//! messages, and the `saslname` escaping of `,` (`=2C`) and `=` (`=3D`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::ScramError;

fn malformed(message: &'static str, detail: &'static str) -> ScramError {
    ScramError::Malformed { message, detail }
}

/// Escapes a user name for `n=` / `a=`: `=` → `=3D`, `,` → `=2C`.
pub(crate) fn escape_username(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '=' => out.push_str("=3D"),
            ',' => out.push_str("=2C"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes a `saslname`: UTF-8 without NUL or `,`, where `=` only starts
/// `=2C` or `=3D`. `None` when the escaping is invalid or the name is empty.
pub(crate) fn unescape_username(saslname: &str) -> Option<String> {
    if saslname.is_empty() || saslname.contains(['\0', ',']) {
        return None;
    }
    let mut out = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(i) = rest.find('=') {
        out.push_str(rest.get(..i)?);
        let escape = rest.get(i..i + 3)?;
        match escape {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = rest.get(i + 3..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// A nonce: printable ASCII except `,`, at least one character.
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// An extension attribute: `key=value`, key ASCII letters, value non-empty.
fn valid_extension(attr: &str) -> bool {
    match attr.split_once('=') {
        Some((key, value)) => {
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic()) && !value.is_empty()
        }
        None => false,
    }
}

fn decode_base64(message: &'static str, value: &str) -> Result<Vec<u8>, ScramError> {
    STANDARD.decode(value).map_err(|_| malformed(message, "invalid base64"))
}

/// A parsed `client-first-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientFirst<'a> {
    /// `n,,` or `n,a=...,`, exactly as received (repeated in `c=`).
    pub gs2_header: &'a str,
    /// The decoded authzid, when present.
    pub authzid: Option<String>,
    /// The decoded user name.
    pub username: String,
    /// The client nonce.
    pub nonce: &'a str,
    /// `client-first-message-bare`, as received (part of the AuthMessage).
    pub bare: &'a str,
    /// Kafka's `tokenauth` extension was present.
    pub tokenauth: bool,
}

pub(super) fn parse_client_first(message: &[u8]) -> Result<ClientFirst<'_>, ScramError> {
    const WHAT: &str = "client-first-message";
    let text = std::str::from_utf8(message).map_err(|_| malformed(WHAT, "not UTF-8"))?;
    let after_flag = match text.split_once(',') {
        Some(("n", rest)) => rest,
        Some(("y", _)) => return Err(ScramError::ChannelBindingUnsupported),
        Some((flag, _)) if flag.starts_with("p=") => return Err(ScramError::ChannelBindingUnsupported),
        _ => return Err(malformed(WHAT, "bad GS2 channel binding flag")),
    };
    let (authzid_attr, bare) = after_flag.split_once(',').ok_or(malformed(WHAT, "truncated GS2 header"))?;
    let authzid = match authzid_attr {
        "" => None,
        a => {
            let name = a.strip_prefix("a=").ok_or(malformed(WHAT, "bad authzid"))?;
            Some(unescape_username(name).ok_or(malformed(WHAT, "bad authzid"))?)
        }
    };
    let gs2_len = text.len() - bare.len();
    let gs2_header = text.get(..gs2_len).ok_or(malformed(WHAT, "bad GS2 header"))?;

    let mut attrs = bare.split(',');
    let first = attrs.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(ScramError::MandatoryExtension);
    }
    let name = first.strip_prefix("n=").ok_or(malformed(WHAT, "missing n="))?;
    let username = unescape_username(name).ok_or(malformed(WHAT, "bad user name"))?;
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(malformed(WHAT, "missing r="))?;
    if !valid_nonce(nonce) {
        return Err(malformed(WHAT, "bad nonce"));
    }
    let mut tokenauth = false;
    for ext in attrs {
        if !valid_extension(ext) {
            return Err(malformed(WHAT, "bad extension"));
        }
        // Other extensions are ignored, as Kafka does.
        tokenauth |= ext.starts_with("tokenauth=");
    }
    Ok(ClientFirst { gs2_header, authzid, username, nonce, bare, tokenauth })
}

/// `client-first-message-bare` for `username` and `nonce`.
pub(super) fn client_first_bare(username: &str, nonce: &str) -> String {
    format!("n={},r={nonce}", escape_username(username))
}

/// A parsed `server-first-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerFirst<'a> {
    /// Client nonce followed by the server nonce.
    pub nonce: &'a str,
    /// The user's salt.
    pub salt: Vec<u8>,
    /// The iteration count.
    pub iterations: u32,
}

pub(super) fn parse_server_first(message: &[u8]) -> Result<ServerFirst<'_>, ScramError> {
    const WHAT: &str = "server-first-message";
    let text = std::str::from_utf8(message).map_err(|_| malformed(WHAT, "not UTF-8"))?;
    let mut attrs = text.split(',');
    let first = attrs.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(ScramError::MandatoryExtension);
    }
    let nonce = first.strip_prefix("r=").ok_or(malformed(WHAT, "missing r="))?;
    if !valid_nonce(nonce) {
        return Err(malformed(WHAT, "bad nonce"));
    }
    let salt = attrs.next().and_then(|a| a.strip_prefix("s=")).ok_or(malformed(WHAT, "missing s="))?;
    let salt = decode_base64(WHAT, salt)?;
    if salt.is_empty() {
        return Err(malformed(WHAT, "empty salt"));
    }
    let iterations = attrs.next().and_then(|a| a.strip_prefix("i=")).ok_or(malformed(WHAT, "missing i="))?;
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(WHAT, "bad iteration count"));
    }
    let iterations: u32 = iterations.parse().map_err(|_| malformed(WHAT, "bad iteration count"))?;
    if !attrs.all(valid_extension) {
        return Err(malformed(WHAT, "bad extension"));
    }
    Ok(ServerFirst { nonce, salt, iterations })
}

/// `server-first-message` text.
pub(super) fn server_first(nonce: &str, salt: &[u8], iterations: u32) -> String {
    format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt))
}

/// A parsed `client-final-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientFinal<'a> {
    /// The `c=` value (base64 of the GS2 header, as no channel binding is used).
    pub channel_binding: &'a str,
    /// The combined nonce.
    pub nonce: &'a str,
    /// The decoded `ClientProof`.
    pub proof: Vec<u8>,
    /// `client-final-message-without-proof`, as received (part of the AuthMessage).
    pub without_proof: &'a str,
}

pub(super) fn parse_client_final(message: &[u8]) -> Result<ClientFinal<'_>, ScramError> {
    const WHAT: &str = "client-final-message";
    let text = std::str::from_utf8(message).map_err(|_| malformed(WHAT, "not UTF-8"))?;
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or(malformed(WHAT, "missing p="))?;
    if proof.contains(',') {
        return Err(malformed(WHAT, "p= must be last"));
    }
    let proof = decode_base64(WHAT, proof)?;
    let mut attrs = without_proof.split(',');
    let channel_binding =
        attrs.next().and_then(|a| a.strip_prefix("c=")).ok_or(malformed(WHAT, "missing c="))?;
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(malformed(WHAT, "missing r="))?;
    if !valid_nonce(nonce) {
        return Err(malformed(WHAT, "bad nonce"));
    }
    if !attrs.all(valid_extension) {
        return Err(malformed(WHAT, "bad extension"));
    }
    Ok(ClientFinal { channel_binding, nonce, proof, without_proof })
}

/// `client-final-message-without-proof` for a GS2 header and the combined nonce.
pub(super) fn client_final_without_proof(gs2_header: &str, nonce: &str) -> String {
    format!("c={},r={nonce}", STANDARD.encode(gs2_header))
}

/// A parsed `server-final-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ServerFinal {
    /// `v=`: the decoded `ServerSignature`.
    Verifier(Vec<u8>),
    /// `e=`: the server's error value.
    Error(String),
}

pub(super) fn parse_server_final(message: &[u8]) -> Result<ServerFinal, ScramError> {
    const WHAT: &str = "server-final-message";
    let text = std::str::from_utf8(message).map_err(|_| malformed(WHAT, "not UTF-8"))?;
    let mut attrs = text.split(',');
    let first = attrs.next().unwrap_or_default();
    if let Some(error) = first.strip_prefix("e=") {
        return Ok(ServerFinal::Error(error.to_owned()));
    }
    let verifier = first.strip_prefix("v=").ok_or(malformed(WHAT, "missing v="))?;
    let verifier = decode_base64(WHAT, verifier)?;
    if !attrs.all(valid_extension) {
        return Err(malformed(WHAT, "bad extension"));
    }
    Ok(ServerFinal::Verifier(verifier))
}

/// `server-final-message` text for a signature.
pub(super) fn server_final(signature: &[u8]) -> String {
    format!("v={}", STANDARD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_escaping_round_trips() {
        assert_eq!(escape_username("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(unescape_username("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape_username("=3D=2C").as_deref(), Some("=,"));
        assert_eq!(unescape_username("élise").as_deref(), Some("élise"));
        for bad in ["", "a=", "a=2", "a=41", "a=2c", "a,b", "a\0b", "="] {
            assert_eq!(unescape_username(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn client_first_grammar() {
        let m = parse_client_first(b"n,,n=user,r=abc").expect("minimal");
        assert_eq!(
            (m.gs2_header, m.username.as_str(), m.nonce, m.bare),
            ("n,,", "user", "abc", "n=user,r=abc")
        );
        assert_eq!(m.authzid, None);
        assert!(!m.tokenauth);

        let m = parse_client_first(b"n,a=us=2Cer,n=us=2Cer,r=abc,ext=1").expect("authzid");
        assert_eq!(m.gs2_header, "n,a=us=2Cer,");
        assert_eq!(m.authzid.as_deref(), Some("us,er"));
        assert_eq!(m.username, "us,er");

        assert!(parse_client_first(b"n,,n=u,r=abc,tokenauth=true").expect("token").tokenauth);
        assert_eq!(parse_client_first(b"y,,n=u,r=abc"), Err(ScramError::ChannelBindingUnsupported));
        assert_eq!(
            parse_client_first(b"p=tls-unique,,n=u,r=abc"),
            Err(ScramError::ChannelBindingUnsupported)
        );
        assert_eq!(parse_client_first(b"n,,m=x,n=u,r=abc"), Err(ScramError::MandatoryExtension));
        for bad in [
            &b"n,,n=u"[..],
            b"n,,r=abc,n=u",
            b"n,,n=,r=abc",
            b"n,,n=u,r=",
            b"n,,n=u,r=a b",
            b"n,,n=u,r=abc,=x",
            b"n,,n=u,r=abc,k=",
            b"n,x,n=u,r=abc",
            b"n",
            b"",
            b"\xff",
        ] {
            assert!(matches!(parse_client_first(bad), Err(ScramError::Malformed { .. })), "{bad:?}");
        }
    }

    #[test]
    fn server_first_grammar() {
        let m = parse_server_first(b"r=abcdef,s=c2FsdA==,i=4096").expect("valid");
        assert_eq!((m.nonce, &m.salt[..], m.iterations), ("abcdef", &b"salt"[..], 4096));
        for bad in [
            &b"r=abc,s=,i=4096"[..],
            b"r=abc,s=c2FsdA==",
            b"r=abc,s=c2FsdA==,i=-1",
            b"r=abc,s=c2FsdA==,i=+5",
            b"r=abc,s=c2FsdA==,i=99999999999",
            b"r=abc,s=!!,i=4096",
            b"s=c2FsdA==,r=abc,i=4096",
        ] {
            assert!(matches!(parse_server_first(bad), Err(ScramError::Malformed { .. })), "{bad:?}");
        }
        assert_eq!(parse_server_first(b"m=1,r=a,s=c2FsdA==,i=1"), Err(ScramError::MandatoryExtension));
    }

    #[test]
    fn client_and_server_final_grammar() {
        let m = parse_client_final(b"c=biws,r=abc,p=AAEC").expect("valid");
        assert_eq!(
            (m.channel_binding, m.nonce, &m.proof[..], m.without_proof),
            ("biws", "abc", &[0u8, 1, 2][..], "c=biws,r=abc")
        );
        assert!(parse_client_final(b"c=biws,r=abc,x=1,p=AAEC").is_ok(), "extension before the proof");
        for bad in
            [&b"c=biws,r=abc"[..], b"c=biws,r=abc,p=AAEC,x=1", b"r=abc,c=biws,p=AAEC", b"c=biws,r=abc,p=!"]
        {
            assert!(matches!(parse_client_final(bad), Err(ScramError::Malformed { .. })), "{bad:?}");
        }
        assert_eq!(parse_server_final(b"v=AAEC"), Ok(ServerFinal::Verifier(vec![0, 1, 2])));
        assert_eq!(parse_server_final(b"e=invalid-proof"), Ok(ServerFinal::Error("invalid-proof".into())));
        assert!(parse_server_final(b"x=1").is_err());
    }
}
