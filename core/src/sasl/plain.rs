//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`.
//!
//! Kafka's rules: exactly three fields, non-empty user and password, and an
//! authzid that is either empty or equal to the user.

use std::fmt;

use super::secret::Secret;

/// Why a PLAIN message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainError {
    /// Not three NUL-separated fields, an empty user or password, or a name that is not UTF-8.
    Malformed(&'static str),
    /// The authzid was neither empty nor the user.
    AuthzidMismatch,
}

impl fmt::Display for PlainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlainError::Malformed(what) => write!(f, "malformed PLAIN message: {what}"),
            PlainError::AuthzidMismatch => f.write_str("authorization id differs from the user name"),
        }
    }
}

impl std::error::Error for PlainError {}

/// A parsed PLAIN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlainMessage<'a> {
    /// The user (authcid), Kafka's principal name.
    pub username: &'a str,
    /// The password.
    pub password: Secret<&'a [u8]>,
}

/// Parses a client's PLAIN message.
pub(crate) fn parse(message: &[u8]) -> Result<PlainMessage<'_>, PlainError> {
    let mut fields = message.split(|&b| b == 0);
    let (Some(authzid), Some(username), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(PlainError::Malformed("expected 3 NUL-separated fields"));
    };
    let username =
        std::str::from_utf8(username).map_err(|_| PlainError::Malformed("user name is not UTF-8"))?;
    if username.is_empty() {
        return Err(PlainError::Malformed("empty user name"));
    }
    if password.is_empty() {
        return Err(PlainError::Malformed("empty password"));
    }
    if !authzid.is_empty() && authzid != username.as_bytes() {
        return Err(PlainError::AuthzidMismatch);
    }
    Ok(PlainMessage { username, password: Secret::new(password) })
}

/// Builds the client's PLAIN message (`NUL user NUL password`, no authzid).
pub(crate) fn client_message(
    username: &str,
    password: &Secret<String>,
) -> Result<Secret<Vec<u8>>, PlainError> {
    if username.is_empty() || username.contains('\0') {
        return Err(PlainError::Malformed("user name empty or holding NUL"));
    }
    let password = password.expose();
    if password.is_empty() || password.contains('\0') {
        return Err(PlainError::Malformed("password empty or holding NUL"));
    }
    let mut out = Vec::with_capacity(2 + username.len() + password.len());
    out.push(0);
    out.extend_from_slice(username.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    Ok(Secret::new(out))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn edge_cases() {
        let m = parse(b"\0alice\0secret").expect("no authzid");
        assert_eq!((m.username, *m.password.expose()), ("alice", &b"secret"[..]));
        assert_eq!(parse(b"alice\0alice\0secret").map(|m| m.username), Ok("alice"), "authzid = user");
        assert_eq!(parse(b"admin\0alice\0secret").map(|m| m.username), Err(PlainError::AuthzidMismatch));
        assert_eq!(
            parse(b"\0alice\0pass\0word").map(|_| ()),
            Err(PlainError::Malformed("expected 3 NUL-separated fields"))
        );
        assert!(matches!(parse(b"\0alice"), Err(PlainError::Malformed(_))));
        assert!(matches!(parse(b""), Err(PlainError::Malformed(_))));
        assert!(matches!(parse(b"\0\0secret"), Err(PlainError::Malformed("empty user name"))));
        assert!(matches!(parse(b"\0alice\0"), Err(PlainError::Malformed("empty password"))));
        assert!(matches!(parse(b"\0\xff\0secret"), Err(PlainError::Malformed(_))));
        let m = parse("\0élise\0mot de passe\u{e9}".as_bytes()).expect("UTF-8 names and passwords");
        assert_eq!(m.username, "élise");
        assert_eq!(format!("{m:?}"), "PlainMessage { username: \"élise\", password: *** }");
    }

    #[test]
    fn client_message_round_trips() {
        let msg = client_message("bob", &Secret::new("pw".into())).expect("build");
        assert_eq!(msg.expose(), b"\0bob\0pw");
        assert_eq!(parse(msg.expose()).map(|m| m.username), Ok("bob"));
        assert!(client_message("b\0b", &Secret::new("pw".into())).is_err());
        assert!(client_message("bob", &Secret::new(String::new())).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&data);
        }
    }
}
