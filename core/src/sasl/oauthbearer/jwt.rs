//! JWT (RFC 7519) validation for OAUTHBEARER, broker-grade (KIP-768):
//! signature first (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA;
//! never `none` or HMAC), then `exp` and `iat` (required), `nbf`, `iss`,
//! `aud`, required scopes, with clock skew. The principal is `sub`, or the
//! claim `sub_claim_name` names (Kafka's `sasl.oauthbearer.sub.claim.name`).
//!
//! Keys are a fixed set (a PEM key or a JWKS file) or the set a fetcher last
//! installed from a JWKS endpoint ([`JwksStore`]); a token whose `kid` that
//! set does not hold fails at once and asks the fetcher for a refresh, so a
//! client retrying after an identity provider's key rotation succeeds.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::keys::{JwsAlgorithm, KeySet};
use super::remote::JwksStore;

/// Longest token accepted, before any decoding.
pub(crate) const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a token was refused (for logs: the client only sees `invalid_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts, or a part that is not a JSON object.
    Malformed(&'static str),
    /// Longer than 64 KiB.
    TooLong,
    /// `alg` is `none`, an HMAC or anything not supported.
    UnsupportedAlgorithm,
    /// The header lists critical extensions (`crit`), none of which is understood.
    CriticalHeader,
    /// No configured key fits `alg` (and `kid`).
    NoKey,
    /// No fitting key verifies the signature.
    BadSignature,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong type.
    InvalidClaim(&'static str),
    /// `exp` has passed (beyond the clock skew).
    Expired,
    /// `nbf` has not come yet (beyond the clock skew).
    NotYetValid,
    /// `iat` is in the future (beyond the clock skew).
    IssuedInFuture,
    /// `iss` differs from the expected issuer.
    Issuer,
    /// No `aud` value is an expected audience.
    Audience,
    /// A required scope is missing.
    Scope,
}

impl JwtError {
    /// A short stable name of why, for metrics: `unknown_key` (no key for
    /// the `kid`, as after a rotation the proxy has not fetched yet),
    /// `invalid_signature`, `token_expired`, `invalid_audience`, ...
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Malformed(_)
            | JwtError::TooLong
            | JwtError::CriticalHeader
            | JwtError::MissingClaim(_)
            | JwtError::InvalidClaim(_) => "invalid_token",
            JwtError::UnsupportedAlgorithm => "unsupported_algorithm",
            JwtError::NoKey => "unknown_key",
            JwtError::BadSignature => "invalid_signature",
            JwtError::Expired => "token_expired",
            JwtError::NotYetValid | JwtError::IssuedInFuture => "token_not_yet_valid",
            JwtError::Issuer => "invalid_issuer",
            JwtError::Audience => "invalid_audience",
            JwtError::Scope => "insufficient_scope",
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed(what) => write!(f, "malformed token: {what}"),
            JwtError::TooLong => f.write_str("token too long"),
            JwtError::UnsupportedAlgorithm => f.write_str("unsupported signature algorithm"),
            JwtError::CriticalHeader => f.write_str("unsupported critical header"),
            JwtError::NoKey => f.write_str("no key for the token's alg/kid"),
            JwtError::BadSignature => f.write_str("signature does not verify"),
            JwtError::MissingClaim(c) => write!(f, "missing claim {c}"),
            JwtError::InvalidClaim(c) => write!(f, "invalid claim {c}"),
            JwtError::Expired => f.write_str("token expired"),
            JwtError::NotYetValid => f.write_str("token not yet valid (nbf)"),
            JwtError::IssuedInFuture => f.write_str("token issued in the future (iat)"),
            JwtError::Issuer => f.write_str("unexpected issuer"),
            JwtError::Audience => f.write_str("unexpected audience"),
            JwtError::Scope => f.write_str("missing required scope"),
        }
    }
}

impl std::error::Error for JwtError {}

/// What to require of a token besides a valid signature, `exp`, `iat` and `sub`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtRules {
    /// `iss` must equal this, when set.
    pub issuer: Option<String>,
    /// `aud` (string or array) must hold one of these, when not empty.
    pub audiences: Vec<String>,
    /// Every one of these must be in the scope claim (space-separated or an array).
    pub required_scopes: Vec<String>,
    /// Tolerance for clock differences in the time claims.
    pub clock_skew: Duration,
    /// The claim that names the principal (`None`: `sub`).
    pub subject_claim: Option<String>,
    /// The claim that holds the scopes (`None`: `scope`, and `scp` too).
    pub scope_claim: Option<String>,
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidToken {
    /// `sub`: the principal name.
    pub subject: String,
    /// `exp`: the credential's end; the session must not outlive it.
    pub expires_at: SystemTime,
    /// `iat`.
    pub issued_at: SystemTime,
    /// The token's scopes.
    pub scopes: Vec<String>,
}

/// Where a validator's keys come from.
#[derive(Debug, Clone)]
enum KeySource {
    /// Loaded with the configuration.
    Fixed(KeySet),
    /// Fetched from a JWKS endpoint, replaced as the fetcher installs new sets.
    Remote(Arc<JwksStore>),
}

/// Validates bearer tokens against a key set and rules.
#[derive(Debug, Clone)]
pub struct JwtValidator {
    keys: KeySource,
    rules: JwtRules,
}

fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed(what))
}

fn json_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>, JwtError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed(what)),
    }
}

/// A NumericDate claim in milliseconds since the epoch (fractions allowed).
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => {
            let secs = v.as_f64().ok_or(JwtError::InvalidClaim(name))?;
            // `as` saturates: absurd dates become i64::MIN/MAX, never a panic.
            Ok(Some((secs * 1000.0) as i64))
        }
    }
}

fn millis_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn system_time(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    let t = if ms >= 0 { UNIX_EPOCH.checked_add(magnitude) } else { UNIX_EPOCH.checked_sub(magnitude) };
    t.unwrap_or(UNIX_EPOCH)
}

/// Strings of a claim that is a string (split on spaces) or an array of strings.
fn string_list(
    claims: &Map<String, Value>,
    name: &'static str,
    split: bool,
) -> Result<Vec<String>, JwtError> {
    match claims.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if split => {
            Ok(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect())
        }
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map(str::to_owned).ok_or(JwtError::InvalidClaim(name))).collect()
        }
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

/// [`string_list`] for a claim named in the configuration.
fn string_list_named(claims: &Map<String, Value>, name: &str) -> Result<Vec<String>, JwtError> {
    match claims.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or(JwtError::InvalidClaim("scope (scope_claim_name)")))
            .collect(),
        Some(_) => Err(JwtError::InvalidClaim("scope (scope_claim_name)")),
    }
}

impl JwtValidator {
    /// A validator for tokens signed by one of `keys`.
    pub fn new(keys: KeySet, rules: JwtRules) -> Self {
        JwtValidator { keys: KeySource::Fixed(keys), rules }
    }

    /// A validator for tokens signed by a key of the set `store` holds at the time.
    pub fn remote(store: Arc<JwksStore>, rules: JwtRules) -> Self {
        JwtValidator { keys: KeySource::Remote(store), rules }
    }

    /// The JWKS store, when the keys come from an endpoint.
    pub fn jwks_store(&self) -> Option<&Arc<JwksStore>> {
        match &self.keys {
            KeySource::Remote(store) => Some(store),
            KeySource::Fixed(_) => None,
        }
    }

    /// The rules.
    pub fn rules(&self) -> &JwtRules {
        &self.rules
    }

    /// Validates a compact JWS token at wall-clock time `wall`.
    pub(crate) fn validate(&self, token: &str, wall: SystemTime) -> Result<ValidToken, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("expected three parts"));
        };
        let header = json_object(&decode_part(header_b64, "header")?, "header")?;
        let alg =
            header.get("alg").and_then(Value::as_str).ok_or(JwtError::Malformed("header without alg"))?;
        let alg = JwsAlgorithm::from_name(alg).ok_or(JwtError::UnsupportedAlgorithm)?;
        if header.contains_key("crit") {
            return Err(JwtError::CriticalHeader);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(JwtError::Malformed("kid")),
        };
        let signature = decode_part(signature_b64, "signature")?;
        let signed = token.get(..header_b64.len() + 1 + payload_b64.len()).unwrap_or_default();
        let fetched;
        let keys = match &self.keys {
            KeySource::Fixed(keys) => keys,
            KeySource::Remote(store) => match store.current() {
                Some(keys) => {
                    if kid.is_some_and(|k| !keys.has_kid(k)) {
                        // Perhaps the issuer rotated its keys: ask for them, fail this
                        // attempt (the client retries), as Kafka's broker does.
                        store.request_refresh();
                        return Err(JwtError::NoKey);
                    }
                    fetched = keys;
                    &*fetched
                }
                None => {
                    store.request_refresh();
                    return Err(JwtError::NoKey);
                }
            },
        };
        let mut any_key = false;
        let mut verified = false;
        for key in keys.candidates(alg, kid) {
            any_key = true;
            if key.verify(alg, signed.as_bytes(), &signature) {
                verified = true;
                break;
            }
        }
        if !any_key {
            return Err(JwtError::NoKey);
        }
        if !verified {
            return Err(JwtError::BadSignature);
        }
        let claims = json_object(&decode_part(payload_b64, "payload")?, "payload")?;
        self.check_claims(&claims, wall)
    }

    fn check_claims(&self, claims: &Map<String, Value>, wall: SystemTime) -> Result<ValidToken, JwtError> {
        let now = millis_since_epoch(wall);
        let skew = i64::try_from(self.rules.clock_skew.as_millis()).unwrap_or(i64::MAX);
        let exp = numeric_date(claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
        let iat = numeric_date(claims, "iat")?.ok_or(JwtError::MissingClaim("iat"))?;
        if now >= exp.saturating_add(skew) {
            return Err(JwtError::Expired);
        }
        if iat > now.saturating_add(skew) {
            return Err(JwtError::IssuedInFuture);
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && now.saturating_add(skew) < nbf
        {
            return Err(JwtError::NotYetValid);
        }
        let subject_claim = self.rules.subject_claim.as_deref().unwrap_or("sub");
        let label = if subject_claim == "sub" { "sub" } else { "subject (sub_claim_name)" };
        let subject = match claims.get(subject_claim) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) | None => return Err(JwtError::MissingClaim(label)),
            Some(_) => return Err(JwtError::InvalidClaim(label)),
        };
        if let Some(expected) = &self.rules.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == expected => {}
                Some(Value::String(_)) | None => return Err(JwtError::Issuer),
                Some(_) => return Err(JwtError::InvalidClaim("iss")),
            }
        }
        if !self.rules.audiences.is_empty() {
            let aud = string_list(claims, "aud", false)?;
            if !aud.iter().any(|a| self.rules.audiences.contains(a)) {
                return Err(JwtError::Audience);
            }
        }
        let mut scopes = match self.rules.scope_claim.as_deref() {
            None => string_list(claims, "scope", true)?,
            Some(name) => string_list_named(claims, name)?,
        };
        if self.rules.scope_claim.is_none() {
            scopes.extend(string_list(claims, "scp", true)?);
        }
        if !self.rules.required_scopes.iter().all(|r| scopes.contains(r)) {
            return Err(JwtError::Scope);
        }
        Ok(ValidToken { subject, expires_at: system_time(exp), issued_at: system_time(iat), scopes })
    }
}
