//! The token fetcher of one [`TokenStore`]: the client-credentials grant
//! (RFC 6749 §4.4: `grant_type=client_credentials` and `scope` as a form,
//! the client authenticated with HTTP Basic, §2.3.1), again at 80% of the
//! token's lifetime and at once when a login found no token. A failure
//! keeps the current token (until it expires) and is retried.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kafka_proxy_core::sasl::Secret;
use kafka_proxy_core::sasl::oauthbearer::{BearerToken, TokenEndpoint, TokenStore};
use serde_json::Value;
use tracing::{info, warn};

use crate::http::{self, FetchError};
use crate::schedule::{Schedule, keep_fresh};

/// Retry pauses after a failed token request.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

/// A login that found no token may ask again after this long.
const MIN_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// Refresh when this share of the lifetime has passed (per mille).
const REFRESH_AT_PER_MILLE: u32 = 800;

/// Fetches once now, then keeps `store` fresh on a thread of its own.
pub(crate) fn start(store: &Arc<TokenStore>) {
    let endpoint = store.endpoint();
    let schedule = Schedule::new(Instant::now(), MIN_REQUEST_INTERVAL, RETRY_BACKOFF.0, RETRY_BACKOFF.1);
    let agent = match http::agent(&endpoint.trust) {
        Ok(agent) => agent,
        Err(e) => {
            warn!(url = %endpoint.url, client_id = %endpoint.client_id, "token endpoint unusable: {e}");
            return;
        }
    };
    if let Err(e) = keep_fresh(store, agent, schedule, "kafka-proxy-token", fetch) {
        warn!(url = %store.endpoint().url, "cannot start the token refresh thread: {e}");
    }
}

fn fetch(store: &TokenStore, agent: &ureq::Agent, schedule: &mut Schedule) {
    let endpoint = store.endpoint();
    let result = request(agent, endpoint).and_then(|text| parse_token_response(&text, SystemTime::now()));
    let now = Instant::now();
    match result {
        Ok((token, lifetime)) => {
            let refresh_in = lifetime * REFRESH_AT_PER_MILLE / 1000;
            info!(
                url = %endpoint.url,
                client_id = %endpoint.client_id,
                lifetime_s = lifetime.as_secs(),
                refresh_in_s = refresh_in.as_secs(),
                "OAUTHBEARER token obtained"
            );
            store.install(token);
            schedule.succeeded(now, refresh_in.max(Duration::from_secs(1)));
        }
        Err(e) => {
            let retry_in = schedule.failed(now);
            warn!(
                url = %endpoint.url,
                client_id = %endpoint.client_id,
                retry_in_ms = retry_in.as_millis() as u64,
                "token request failed, the current token (if any) keeps serving: {e}"
            );
        }
    }
}

/// RFC 6749 §2.3.1: the client id and secret, form-urlencoded, as HTTP Basic credentials.
fn basic_credentials(endpoint: &TokenEndpoint) -> Secret<String> {
    let pair =
        format!("{}:{}", form_encode(&endpoint.client_id), form_encode(endpoint.client_secret.expose()));
    Secret::new(format!("Basic {}", STANDARD.encode(pair)))
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn request(agent: &ureq::Agent, endpoint: &TokenEndpoint) -> Result<String, FetchError> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = &endpoint.scope {
        form.push(("scope", scope.as_str()));
    }
    let authorization = basic_credentials(endpoint);
    http::body(
        agent
            .post(&endpoint.url)
            .header("Authorization", authorization.expose())
            .header("Accept", "application/json")
            .send_form(form),
    )
}

/// A token response (RFC 6749 §5.1): `access_token`, `token_type` Bearer,
/// and the lifetime: `expires_in`, or the JWT's own `exp` when that comes
/// sooner (it is what a broker enforces). Returns the token and its lifetime
/// from `wall`.
pub fn parse_token_response(text: &str, wall: SystemTime) -> Result<(BearerToken, Duration), FetchError> {
    let invalid = |why: &str| FetchError::Invalid(why.to_owned());
    let doc: Value = serde_json::from_str(text).map_err(|_| invalid("not JSON"))?;
    let access_token =
        doc.get("access_token").and_then(Value::as_str).ok_or_else(|| invalid("no access_token"))?;
    if access_token.is_empty() {
        return Err(invalid("empty access_token"));
    }
    match doc.get("token_type").and_then(Value::as_str) {
        Some(kind) if kind.eq_ignore_ascii_case("bearer") => {}
        Some(kind) => return Err(FetchError::Invalid(format!("token_type {kind:?}, expected Bearer"))),
        None => return Err(invalid("no token_type")),
    }
    let claimed = jwt_lifetime(access_token, wall);
    let lifetime = match doc.get("expires_in").and_then(Value::as_f64) {
        Some(secs) if secs > 0.0 && secs.is_finite() => {
            let stated = Duration::from_secs_f64(secs.min(1e9));
            claimed.map_or(stated, |c| c.min(stated))
        }
        Some(_) => return Err(invalid("expires_in must be positive")),
        None => claimed.ok_or_else(|| invalid("no expires_in, and the token has no exp"))?,
    };
    if lifetime.is_zero() {
        return Err(invalid("the token has expired"));
    }
    let token = BearerToken { value: Secret::new(access_token.to_owned()), expires_at: wall + lifetime };
    Ok((token, lifetime))
}

/// The time until the `exp` claim of a JWT (read, not verified: the broker
/// verifies); zero once it has passed, `None` without one.
fn jwt_lifetime(token: &str, wall: SystemTime) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = UNIX_EPOCH + Duration::try_from_secs_f64(claims.get("exp")?.as_f64()?.clamp(0.0, 1e11)).ok()?;
    Some(exp.duration_since(wall).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses() {
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (token, lifetime) = parse_token_response(
            r#"{"access_token":"abc.def.ghi","token_type":"bearer","expires_in":300}"#,
            wall,
        )
        .unwrap();
        assert_eq!(token.value.expose(), "abc.def.ghi");
        assert_eq!(lifetime, Duration::from_secs(300));
        assert_eq!(token.expires_at, wall + Duration::from_secs(300));

        let claims = URL_SAFE_NO_PAD.encode(br#"{"exp":1700000120}"#);
        let jwt = format!("e30.{claims}.c2ln");
        let body = format!(r#"{{"access_token":"{jwt}","token_type":"Bearer"}}"#);
        assert_eq!(parse_token_response(&body, wall).unwrap().1, Duration::from_secs(120));
        // The exp claim wins when it comes before expires_in (the broker enforces it).
        let body = format!(r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":300}}"#);
        assert_eq!(parse_token_response(&body, wall).unwrap().1, Duration::from_secs(120));
        let body = format!(r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":60}}"#);
        assert_eq!(parse_token_response(&body, wall).unwrap().1, Duration::from_secs(60));
        let late = wall + Duration::from_secs(200);
        assert_eq!(
            parse_token_response(&body, late).unwrap_err().to_string(),
            "invalid response: the token has expired"
        );

        for (body, why) in [
            ("{}", "no access_token"),
            (
                r#"{"access_token":"x","token_type":"mac","expires_in":1}"#,
                "token_type \"mac\", expected Bearer",
            ),
            (r#"{"access_token":"x","token_type":"Bearer"}"#, "no expires_in, and the token has no exp"),
            (r#"{"access_token":"x","token_type":"Bearer","expires_in":0}"#, "expires_in must be positive"),
        ] {
            let error = parse_token_response(body, wall).unwrap_err().to_string();
            assert_eq!(error, format!("invalid response: {why}"), "{body}");
        }
    }

    #[test]
    fn client_credentials_are_form_encoded_then_basic() {
        let endpoint = TokenEndpoint {
            url: "https://idp/token".into(),
            client_id: "svc 1".into(),
            client_secret: Secret::new("p@ss:w".into()),
            scope: None,
            trust: kafka_proxy_core::sasl::oauthbearer::EndpointTrust::SystemRoots,
        };
        let header = basic_credentials(&endpoint);
        let encoded = header.expose().strip_prefix("Basic ").unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap(), b"svc+1:p%40ss%3Aw");
    }
}
