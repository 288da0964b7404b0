//! Private keys from PEM, encrypted or not.
//!
//! Plain PKCS#8, PKCS#1 and SEC1 keys go to rustls as they are. An encrypted
//! PKCS#8 key (`ENCRYPTED PRIVATE KEY`: PBES2 with PBKDF2 or scrypt and
//! AES-CBC/GCM, what `openssl pkcs8 -topk8` and Java's keytool write) is
//! decrypted here with the RustCrypto `pkcs8` crate; the decrypted bytes are
//! zeroized once rustls holds its copy. OpenSSL's legacy encryption of
//! PKCS#1/SEC1 keys (`Proc-Type: 4,ENCRYPTED`, MD5-derived keys) is refused
//! with the command that converts it: no maintained Rust crate reads it.

use std::fmt;

use pkcs8::EncryptedPrivateKeyInfoRef;
use pkcs8::der::SecretDocument;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

/// The PEM label of an encrypted PKCS#8 key.
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Why a private key could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyReadError {
    /// The PEM holds no private key.
    Missing,
    /// The PEM text is malformed.
    Pem(String),
    /// The key is encrypted and no password was given.
    PasswordRequired,
    /// The password does not decrypt the key (or the decrypted key is corrupt).
    WrongPassword,
    /// The key is encrypted with a scheme the proxy does not read.
    UnsupportedEncryption(String),
    /// OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` form.
    LegacyEncryption,
}

impl fmt::Display for KeyReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyReadError::Missing => f.write_str("contains no private key"),
            KeyReadError::Pem(e) => write!(f, "cannot read the PEM: {e}"),
            KeyReadError::PasswordRequired => {
                f.write_str("is encrypted: set key_password (or key_password_file)")
            }
            KeyReadError::WrongPassword => f.write_str("cannot be decrypted with the given password"),
            KeyReadError::UnsupportedEncryption(e) => write!(
                f,
                "is encrypted with an unsupported scheme ({e}); re-encrypt it with \
                 `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`"
            ),
            KeyReadError::LegacyEncryption => f.write_str(
                "uses OpenSSL's legacy encryption (Proc-Type: 4,ENCRYPTED), which is not supported; \
                 convert it to encrypted PKCS#8 with \
                 `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`",
            ),
        }
    }
}

impl std::error::Error for KeyReadError {}

/// The first private key in `pem`, decrypted with `password` when it is an
/// encrypted PKCS#8 key. A password given for a plain key is not needed and
/// not used.
pub(super) fn private_key_from_pem(
    pem: &[u8],
    password: Option<&[u8]>,
) -> Result<PrivateKeyDer<'static>, KeyReadError> {
    if contains(pem, b"Proc-Type: 4,ENCRYPTED") {
        return Err(KeyReadError::LegacyEncryption);
    }
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => match encrypted_block(pem) {
            Some(block) => decrypt(block, password),
            None => Err(KeyReadError::Missing),
        },
        Err(e) => Err(KeyReadError::Pem(e.to_string())),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The text of the first `ENCRYPTED PRIVATE KEY` block, armour included.
fn encrypted_block(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let begin = format!("-----BEGIN {ENCRYPTED_LABEL}-----");
    let end = format!("-----END {ENCRYPTED_LABEL}-----");
    let start = text.find(&begin)?;
    let stop = text.get(start..)?.find(&end)? + start + end.len();
    text.get(start..stop)
}

fn decrypt(block: &str, password: Option<&[u8]>) -> Result<PrivateKeyDer<'static>, KeyReadError> {
    let password = password.ok_or(KeyReadError::PasswordRequired)?;
    let (_, document) = SecretDocument::from_pem(block).map_err(|e| KeyReadError::Pem(e.to_string()))?;
    let info = EncryptedPrivateKeyInfoRef::try_from(document.as_bytes())
        .map_err(|e| KeyReadError::Pem(e.to_string()))?;
    let plain = info.decrypt(password).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed) | pkcs8::Error::Asn1(_) => {
            KeyReadError::WrongPassword
        }
        other => KeyReadError::UnsupportedEncryption(other.to_string()),
    })?;
    // rustls keeps its own copy; this one is wiped when dropped.
    let der = Zeroizing::new(plain.as_bytes().to_vec());
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] = include_bytes!("testdata/server_key.pem");
    /// `server_key.pem` encrypted by `openssl pkcs8 -topk8 -v2 aes-256-cbc` (PBKDF2-SHA256).
    const ENCRYPTED_PBKDF2: &[u8] = include_bytes!("testdata/server_key_pbkdf2.p8.pem");
    /// The same key encrypted with scrypt (`-scrypt`).
    const ENCRYPTED_SCRYPT: &[u8] = include_bytes!("testdata/server_key_scrypt.p8.pem");
    /// The same key in OpenSSL's legacy encrypted form (`openssl rsa -aes256` / `ec -aes256`).
    const LEGACY: &[u8] = include_bytes!("testdata/server_key_legacy.pem");
    const PASSWORD: &[u8] = b"kafka-proxy-test";

    fn plain_der() -> Vec<u8> {
        let PrivateKeyDer::Pkcs8(key) = private_key_from_pem(PLAIN, None).unwrap() else {
            panic!("the test key is PKCS#8")
        };
        key.secret_pkcs8_der().to_vec()
    }

    #[test]
    fn decrypts_pbes2_keys() {
        for pem in [ENCRYPTED_PBKDF2, ENCRYPTED_SCRYPT] {
            let PrivateKeyDer::Pkcs8(key) = private_key_from_pem(pem, Some(PASSWORD)).unwrap() else {
                panic!("decrypted keys are PKCS#8")
            };
            assert_eq!(key.secret_pkcs8_der(), plain_der());
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(private_key_from_pem(ENCRYPTED_PBKDF2, None), Err(KeyReadError::PasswordRequired));
        assert_eq!(private_key_from_pem(ENCRYPTED_PBKDF2, Some(b"wrong")), Err(KeyReadError::WrongPassword));
        let legacy = private_key_from_pem(LEGACY, Some(PASSWORD)).unwrap_err();
        assert_eq!(legacy, KeyReadError::LegacyEncryption);
        assert!(legacy.to_string().contains("openssl pkcs8 -topk8"), "{legacy}");
        assert_eq!(private_key_from_pem(b"no pem here", None), Err(KeyReadError::Missing));
    }

    #[test]
    fn a_password_for_a_plain_key_is_ignored() {
        assert!(private_key_from_pem(PLAIN, Some(PASSWORD)).is_ok());
    }
}
