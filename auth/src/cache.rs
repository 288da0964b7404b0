//! Verdicts reused for a while, keyed by an HMAC of user and password under
//! a key drawn at start: the password itself is never kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_proxy_core::sasl::{AuthRequest, Verdict};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Most verdicts kept; when full, expired ones go, and if none has
/// expired, nothing new is kept until one does.
const MAX_ENTRIES: usize = 10_000;

/// Allow and deny verdicts for `ttl`.
pub(crate) struct VerdictCache {
    key: hmac::Key,
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Verdict, Instant)>>,
}

impl VerdictCache {
    pub(crate) fn new(ttl: Duration) -> VerdictCache {
        let mut secret = [0u8; 32];
        // A failing system random source leaves a fixed key: still no password kept.
        let _ = SystemRandom::new().fill(&mut secret);
        VerdictCache {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key_of(&self, request: &AuthRequest) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(request.user.len() as u64).to_be_bytes());
        ctx.update(request.user.as_bytes());
        ctx.update(request.password.expose().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The cached verdict for this user and password, if still fresh.
    pub(crate) fn get(&self, request: &AuthRequest) -> Option<Verdict> {
        let key = self.key_of(request);
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(&key).filter(|(_, until)| Instant::now() < *until).map(|(v, _)| v.clone())
    }

    /// Keeps an allow or deny verdict (errors are never cached).
    pub(crate) fn put(&self, request: &AuthRequest, verdict: &Verdict) {
        if matches!(verdict, Verdict::Error(_)) {
            return;
        }
        let key = self.key_of(request);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(key, (verdict.clone(), now + self.ttl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_proxy_core::sasl::SecretString;

    fn req(user: &str, password: &str) -> AuthRequest {
        AuthRequest { id: 1, user: user.into(), password: SecretString::new(password.into()), client: None }
    }

    #[test]
    fn keyed_by_user_and_password_errors_never_kept() {
        let cache = VerdictCache::new(Duration::from_secs(60));
        cache.put(&req("alice", "right"), &Verdict::Allow { principal: None });
        cache.put(&req("alice", "wrong"), &Verdict::Deny { reason: None });
        cache.put(&req("bob", "x"), &Verdict::Error("down".into()));
        assert_eq!(cache.get(&req("alice", "right")), Some(Verdict::Allow { principal: None }));
        assert_eq!(cache.get(&req("alice", "wrong")), Some(Verdict::Deny { reason: None }));
        assert_eq!(cache.get(&req("alice", "other")), None);
        assert_eq!(cache.get(&req("bob", "x")), None);
        // "ab"+"c" and "a"+"bc" are different logins.
        cache.put(&req("ab", "c"), &Verdict::Allow { principal: None });
        assert_eq!(cache.get(&req("a", "bc")), None);
        let entries = cache.entries.lock().unwrap();
        assert!(entries.keys().all(|k| !k.windows(5).any(|w| w == b"right")));
    }

    #[test]
    fn entries_expire() {
        let cache = VerdictCache::new(Duration::ZERO);
        cache.put(&req("alice", "right"), &Verdict::Allow { principal: None });
        assert_eq!(cache.get(&req("alice", "right")), None);
    }
}
