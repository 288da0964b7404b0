//! JWT verification keys: from PEM (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`
//! or a `CERTIFICATE`) or from a JWKS document, checked with `ring`.
//!
//! Supported: RSA (2048–8192 bits) for RS256/384/512 and PS256/384/512, EC
//! P-256 for ES256, P-384 for ES384, P-521 for ES512 and Ed25519 for EdDSA.
//! ring verifies all of them but ES512, which ring lacks: that one is checked
//! with the RustCrypto `p521` crate. The CLI (or the JWKS fetcher) reads the
//! bytes; this module parses them.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::{PublicKey as SpkiKey, RSAPublicKey};
use x509_parser::x509::SubjectPublicKeyInfo;

/// A JWS signature algorithm the proxy accepts (`alg`). `none`, HMAC and
/// anything else are refused by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// ECDSA P-521 with SHA-512.
    Es512,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256).
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// EdDSA over Ed25519.
    EdDsa,
}

impl JwsAlgorithm {
    /// The algorithm for an `alg` header value (case-sensitive, RFC 7518).
    pub fn from_name(name: &str) -> Option<JwsAlgorithm> {
        match name {
            "RS256" => Some(JwsAlgorithm::Rs256),
            "RS384" => Some(JwsAlgorithm::Rs384),
            "RS512" => Some(JwsAlgorithm::Rs512),
            "ES256" => Some(JwsAlgorithm::Es256),
            "ES384" => Some(JwsAlgorithm::Es384),
            "ES512" => Some(JwsAlgorithm::Es512),
            "PS256" => Some(JwsAlgorithm::Ps256),
            "PS384" => Some(JwsAlgorithm::Ps384),
            "PS512" => Some(JwsAlgorithm::Ps512),
            "EdDSA" => Some(JwsAlgorithm::EdDsa),
            _ => None,
        }
    }

    /// The `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Rs384 => "RS384",
            JwsAlgorithm::Rs512 => "RS512",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::Es512 => "ES512",
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Ps384 => "PS384",
            JwsAlgorithm::Ps512 => "PS512",
            JwsAlgorithm::EdDsa => "EdDSA",
        }
    }
}

/// An elliptic curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256 (`crv: P-256`).
    P256,
    /// NIST P-384 (`crv: P-384`).
    P384,
    /// NIST P-521 (`crv: P-521`).
    P521,
}

impl EcCurve {
    fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }

    fn from_jwk_name(name: &str) -> Option<EcCurve> {
        match name {
            "P-256" => Some(EcCurve::P256),
            "P-384" => Some(EcCurve::P384),
            "P-521" => Some(EcCurve::P521),
            _ => None,
        }
    }
}

/// A public key that can verify JWT signatures.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// EC: the uncompressed SEC1 point (`04 || x || y`).
    Ec {
        /// The curve.
        curve: EcCurve,
        /// The point.
        point: Vec<u8>,
    },
    /// Ed25519: the 32-byte public key.
    Ed25519(Vec<u8>),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicKey::Rsa { n, .. } => write!(f, "Rsa({} bits)", n.len() * 8),
            PublicKey::Ec { curve, .. } => write!(f, "Ec({curve:?})"),
            PublicKey::Ed25519(_) => f.write_str("Ed25519"),
        }
    }
}

impl PublicKey {
    /// An RSA key; leading zero bytes are dropped, sizes are checked.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<PublicKey, KeyError> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = n.len() * 8;
        if !(2048..=8192).contains(&bits) {
            return Err(KeyError::RsaSize { bits });
        }
        if e.is_empty() || e.len() > 4 {
            return Err(KeyError::Malformed("RSA exponent"));
        }
        Ok(PublicKey::Rsa { n: n.to_vec(), e: e.to_vec() })
    }

    /// An EC key from an uncompressed point.
    pub fn ec(curve: EcCurve, point: &[u8]) -> Result<PublicKey, KeyError> {
        if point.len() != 1 + 2 * curve.coordinate_len() || point.first() != Some(&4) {
            return Err(KeyError::Malformed("EC point (only uncompressed points are supported)"));
        }
        Ok(PublicKey::Ec { curve, point: point.to_vec() })
    }

    /// An Ed25519 key from its 32 bytes.
    pub fn ed25519(key: &[u8]) -> Result<PublicKey, KeyError> {
        if key.len() != 32 {
            return Err(KeyError::Malformed("Ed25519 key length"));
        }
        Ok(PublicKey::Ed25519(key.to_vec()))
    }

    /// True when this key can check `alg` signatures.
    pub(crate) fn supports(&self, alg: JwsAlgorithm) -> bool {
        use JwsAlgorithm::*;
        matches!(
            (self, alg),
            (PublicKey::Rsa { .. }, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512)
                | (PublicKey::Ec { curve: EcCurve::P256, .. }, Es256)
                | (PublicKey::Ec { curve: EcCurve::P384, .. }, Es384)
                | (PublicKey::Ec { curve: EcCurve::P521, .. }, Es512)
                | (PublicKey::Ed25519(_), EdDsa)
        )
    }

    /// Verifies `signature` over `message` (JWS: RSA PKCS#1 v1.5 or PSS,
    /// ECDSA as fixed `r || s`, Ed25519).
    pub(crate) fn verify(&self, alg: JwsAlgorithm, message: &[u8], sig: &[u8]) -> bool {
        use JwsAlgorithm::*;
        let ring_unparsed = |params: &'static dyn signature::VerificationAlgorithm, key: &[u8]| {
            signature::UnparsedPublicKey::new(params, key).verify(message, sig).is_ok()
        };
        match (self, alg) {
            (PublicKey::Rsa { n, e }, _) => {
                let params: &signature::RsaParameters = match alg {
                    Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    Es256 | Es384 | Es512 | EdDsa => return false,
                };
                signature::RsaPublicKeyComponents { n, e }.verify(params, message, sig).is_ok()
            }
            (PublicKey::Ec { curve: EcCurve::P256, point }, Es256) => {
                ring_unparsed(&signature::ECDSA_P256_SHA256_FIXED, point)
            }
            (PublicKey::Ec { curve: EcCurve::P384, point }, Es384) => {
                ring_unparsed(&signature::ECDSA_P384_SHA384_FIXED, point)
            }
            (PublicKey::Ec { curve: EcCurve::P521, point }, Es512) => verify_es512(point, message, sig),
            (PublicKey::Ed25519(key), EdDsa) => ring_unparsed(&signature::ED25519, key),
            (PublicKey::Ec { .. } | PublicKey::Ed25519(_), _) => false,
        }
    }
}

/// ECDSA P-521 / SHA-512 with a fixed-size `r || s` signature (JWS ES512):
/// the one algorithm ring does not have.
fn verify_es512(point: &[u8], message: &[u8], sig: &[u8]) -> bool {
    use p521::ecdsa::signature::Verifier;
    let Ok(key) = p521::ecdsa::VerifyingKey::from_sec1_bytes(point) else { return false };
    let Ok(signature) = p521::ecdsa::Signature::from_slice(sig) else { return false };
    key.verify(message, &signature).is_ok()
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// Why keys could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// No PEM block, or invalid base64 in one.
    Pem,
    /// A PEM block of a kind that holds no public key.
    PemLabel(String),
    /// DER or JSON that does not describe a key.
    Malformed(&'static str),
    /// A key type or curve other than RSA, P-256, P-384, P-521, Ed25519.
    Unsupported(String),
    /// An RSA modulus outside 2048–8192 bits.
    RsaSize {
        /// The size found.
        bits: usize,
    },
    /// The JWKS held no usable signing key.
    NoUsableKey,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Pem => f.write_str("no valid PEM block"),
            KeyError::PemLabel(l) => write!(f, "PEM block {l:?} holds no public key"),
            KeyError::Malformed(what) => write!(f, "malformed key: {what}"),
            KeyError::Unsupported(what) => write!(f, "unsupported key type: {what}"),
            KeyError::RsaSize { bits } => write!(f, "RSA key of {bits} bits (2048 to 8192 supported)"),
            KeyError::NoUsableKey => f.write_str("no usable signature key"),
        }
    }
}

impl std::error::Error for KeyError {}

/// One verification key and what it may be used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    /// `kid`, when the key has one.
    pub kid: Option<String>,
    /// `alg`, when the key is bound to one algorithm.
    pub alg: Option<JwsAlgorithm>,
    /// The key.
    pub key: PublicKey,
}

/// The keys a token may be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

impl KeySet {
    /// A set from keys built elsewhere.
    pub fn new(keys: Vec<VerificationKey>) -> Result<KeySet, KeyError> {
        if keys.is_empty() { Err(KeyError::NoUsableKey) } else { Ok(KeySet { keys }) }
    }

    /// The keys.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// Every key in a PEM document (`PUBLIC KEY`, `RSA PUBLIC KEY`, `CERTIFICATE`).
    pub fn from_pem(pem: &[u8]) -> Result<KeySet, KeyError> {
        let mut keys = Vec::new();
        for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
            let block = block.map_err(|_| KeyError::Pem)?;
            let key = match block.label.as_str() {
                "PUBLIC KEY" => spki_key(&block.contents)?,
                "RSA PUBLIC KEY" => {
                    let (_, rsa) = RSAPublicKey::from_der(&block.contents)
                        .map_err(|_| KeyError::Malformed("RSA public key"))?;
                    PublicKey::rsa(rsa.modulus, rsa.exponent)?
                }
                "CERTIFICATE" => {
                    let cert = block.parse_x509().map_err(|_| KeyError::Malformed("certificate"))?;
                    spki_key(cert.public_key().raw)?
                }
                other => return Err(KeyError::PemLabel(other.to_owned())),
            };
            keys.push(VerificationKey { kid: None, alg: None, key });
        }
        if keys.is_empty() {
            return Err(KeyError::Pem);
        }
        KeySet::new(keys)
    }

    /// The signing keys of a JWKS document (RFC 7517). Keys for encryption
    /// (`use: enc`) and of unsupported types are skipped; malformed supported
    /// keys are errors, and so is a document with no usable key.
    pub fn from_jwks(json: &str) -> Result<KeySet, KeyError> {
        let doc: serde_json::Value =
            serde_json::from_str(json).map_err(|_| KeyError::Malformed("JWKS JSON"))?;
        let list =
            doc.get("keys").and_then(|k| k.as_array()).ok_or(KeyError::Malformed("JWKS without keys"))?;
        let mut keys = Vec::new();
        for jwk in list {
            if let Some(key) = jwk_key(jwk)? {
                keys.push(key);
            }
        }
        KeySet::new(keys)
    }

    /// True when a key carries this `kid` (or some key has none, which stands for any).
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref().is_none_or(|have| have == kid))
    }

    /// The keys that may have signed a token with `alg` and `kid`: by `kid`
    /// when the token names one, otherwise every compatible key.
    pub(crate) fn candidates<'a>(
        &'a self,
        alg: JwsAlgorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a PublicKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| match (kid, k.kid.as_deref()) {
                (Some(wanted), Some(have)) => wanted == have,
                // A PEM key has no kid: it is trusted for any kid.
                (Some(_), None) => true,
                (None, _) => true,
            })
            .filter(move |k| k.alg.is_none_or(|a| a == alg) && k.key.supports(alg))
            .map(|k| &k.key)
    }
}

fn spki_key(der: &[u8]) -> Result<PublicKey, KeyError> {
    use x509_parser::oid_registry::{OID_EC_P256, OID_NIST_EC_P384, OID_NIST_EC_P521, OID_SIG_ED25519};
    let (_, spki) =
        SubjectPublicKeyInfo::from_der(der).map_err(|_| KeyError::Malformed("SubjectPublicKeyInfo"))?;
    if spki.algorithm.algorithm == OID_SIG_ED25519 {
        return PublicKey::ed25519(&spki.subject_public_key.data);
    }
    match spki.parsed().map_err(|_| KeyError::Malformed("SubjectPublicKeyInfo"))? {
        SpkiKey::RSA(rsa) => PublicKey::rsa(rsa.modulus, rsa.exponent),
        SpkiKey::EC(point) => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or(KeyError::Malformed("EC key without a named curve"))?;
            let curve = if curve_oid == OID_EC_P256 {
                EcCurve::P256
            } else if curve_oid == OID_NIST_EC_P384 {
                EcCurve::P384
            } else if curve_oid == OID_NIST_EC_P521 {
                EcCurve::P521
            } else {
                return Err(KeyError::Unsupported(format!("EC curve {curve_oid}")));
            };
            PublicKey::ec(curve, point.data())
        }
        _ => Err(KeyError::Unsupported(format!("algorithm {}", spki.algorithm.algorithm))),
    }
}

fn b64_field(jwk: &serde_json::Value, name: &'static str) -> Result<Vec<u8>, KeyError> {
    let text = jwk.get(name).and_then(|v| v.as_str()).ok_or(KeyError::Malformed(name))?;
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).map_err(|_| KeyError::Malformed(name))
}

fn jwk_key(jwk: &serde_json::Value) -> Result<Option<VerificationKey>, KeyError> {
    let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    if field("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let alg = match field("alg") {
        None => None,
        Some(name) => match JwsAlgorithm::from_name(name) {
            Some(alg) => Some(alg),
            None => return Ok(None),
        },
    };
    let key = match field("kty") {
        Some("RSA") => PublicKey::rsa(&b64_field(jwk, "n")?, &b64_field(jwk, "e")?)?,
        Some("OKP") => match field("crv") {
            Some("Ed25519") => PublicKey::ed25519(&b64_field(jwk, "x")?)?,
            _ => return Ok(None),
        },
        Some("EC") => {
            let Some(curve) = field("crv").and_then(EcCurve::from_jwk_name) else { return Ok(None) };
            let x = b64_field(jwk, "x")?;
            let y = b64_field(jwk, "y")?;
            if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
                return Err(KeyError::Malformed("EC coordinate length"));
            }
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::ec(curve, &point)?
        }
        _ => return Ok(None),
    };
    if alg.is_some_and(|a| !key.supports(a)) {
        return Err(KeyError::Malformed("alg does not match the key type"));
    }
    Ok(Some(VerificationKey { kid: field("kid").map(str::to_owned), alg, key }))
}
