//! The user store for the proxy's SASL server.
//!
//! Users have a password (seed 003 `users: {alice: "pw"}` and seed 000
//! `auth_swap.downstream_credentials: ["alice=pw"]`) and/or pre-computed SCRAM
//! credentials per mechanism. Passwords are hashed when the store is built:
//! SCRAM credentials with a random salt, and a keyed digest for PLAIN, so no
//! plaintext password stays in memory.
//!
//! Lookups for unknown users do the same work as for known ones where that is
//! feasible: SCRAM answers with a fake but stable salt and the usual iteration
//! count, so the user list cannot be probed.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use super::random::{Random, RandomError};
use super::scram::crypto::{self, Digest};
use super::scram::{MIN_ITERATIONS, SALT_LEN, ScramCredential, ScramError, ScramLookup, ScramMechanism};
use super::secret::Secret;

/// Kafka's default iteration count for new SCRAM credentials.
pub const DEFAULT_ITERATIONS: u32 = MIN_ITERATIONS;

/// Why a store could not be built. No variant holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// Iterations below 4096 (or beyond Kafka's signed 32-bit range).
    Iterations(u32),
    /// An empty user name.
    EmptyUser,
    /// An empty password.
    EmptyPassword {
        /// The user.
        user: String,
    },
    /// Two passwords for one user.
    DuplicatePassword {
        /// The user.
        user: String,
    },
    /// Two SCRAM credentials for one user and mechanism.
    DuplicateScram {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
    /// A `user=password` entry without `=`.
    MissingEquals,
    /// Deriving a SCRAM credential failed.
    Scram(ScramError),
    /// The random source failed.
    Random(RandomError),
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialError::Iterations(i) => {
                write!(f, "SCRAM iterations {i} out of range (minimum {MIN_ITERATIONS})")
            }
            CredentialError::EmptyUser => f.write_str("empty user name"),
            CredentialError::EmptyPassword { user } => write!(f, "empty password for user {user:?}"),
            CredentialError::DuplicatePassword { user } => write!(f, "user {user:?} has two passwords"),
            CredentialError::DuplicateScram { user, mechanism } => {
                write!(f, "user {user:?} has two {mechanism} credentials")
            }
            CredentialError::MissingEquals => f.write_str("expected user=password"),
            CredentialError::Scram(e) => e.fmt(f),
            CredentialError::Random(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CredentialError {}

impl From<ScramError> for CredentialError {
    fn from(e: ScramError) -> Self {
        CredentialError::Scram(e)
    }
}

impl From<RandomError> for CredentialError {
    fn from(e: RandomError) -> Self {
        CredentialError::Random(e)
    }
}

/// Splits a seed-000 `user=password` entry at its first `=`.
pub(crate) fn parse_user_password(entry: &str) -> Result<(String, Secret<String>), CredentialError> {
    let (user, password) = entry.split_once('=').ok_or(CredentialError::MissingEquals)?;
    if user.is_empty() {
        return Err(CredentialError::EmptyUser);
    }
    if password.is_empty() {
        return Err(CredentialError::EmptyPassword { user: user.to_owned() });
    }
    Ok((user.to_owned(), Secret::new(password.to_owned())))
}

/// Why a PLAIN login did not match (for logs; the client sees one message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMismatch {
    /// No such user (or no usable credential for it).
    UnknownUser,
    /// The password was wrong.
    WrongPassword,
}

#[derive(Debug, Default)]
struct UserEntry {
    /// `HMAC-SHA-256(pepper, password)` for PLAIN.
    password: Option<Secret<Digest>>,
    sha256: Option<ScramCredential>,
    sha512: Option<ScramCredential>,
}

impl UserEntry {
    fn scram(&self, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        match mechanism {
            ScramMechanism::Sha256 => self.sha256.as_ref(),
            ScramMechanism::Sha512 => self.sha512.as_ref(),
        }
    }

    fn scram_slot(&mut self, mechanism: ScramMechanism) -> &mut Option<ScramCredential> {
        match mechanism {
            ScramMechanism::Sha256 => &mut self.sha256,
            ScramMechanism::Sha512 => &mut self.sha512,
        }
    }
}

/// The users the proxy authenticates clients against. Immutable once built;
/// share it behind an `Arc` and swap the `Arc` to reload.
#[derive(Debug)]
pub struct CredentialStore {
    users: HashMap<String, UserEntry>,
    /// Keys the PLAIN digests and the fake salts. Random per store.
    pepper: Secret<[u8; 32]>,
    /// Iteration count of fake SCRAM replies (the store's usual one).
    iterations: u32,
    fake_sha256: ScramCredential,
    fake_sha512: ScramCredential,
    fake_password: Secret<Digest>,
    /// True when some user can log in with PLAIN only through a SCRAM
    /// credential (a PBKDF2 per attempt); unknown users then pay one too.
    slow_plain: bool,
}

/// Collects users, then hashes passwords in [`CredentialStoreBuilder::build`].
#[derive(Debug)]
pub struct CredentialStoreBuilder {
    iterations: u32,
    derive_for: Vec<ScramMechanism>,
    passwords: Vec<(String, Secret<String>)>,
    scram: Vec<(String, ScramCredential)>,
}

impl CredentialStore {
    /// Starts a store whose passwords are hashed for the SCRAM mechanisms in
    /// `derive_for` (the enabled ones) with `iterations` and a random salt each.
    pub fn builder(
        iterations: u32,
        derive_for: &[ScramMechanism],
    ) -> Result<CredentialStoreBuilder, CredentialError> {
        if !(MIN_ITERATIONS..=super::scram::MAX_ITERATIONS).contains(&iterations) {
            return Err(CredentialError::Iterations(iterations));
        }
        Ok(CredentialStoreBuilder {
            iterations,
            derive_for: derive_for.to_vec(),
            passwords: Vec::new(),
            scram: Vec::new(),
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there is no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The iteration count of passwords hashed at load (and of fake replies).
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// True when `user` exists (for configuration checks, not for the wire).
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    fn plain_digest(&self, password: &[u8]) -> Digest {
        plain_digest(self.pepper.expose(), password)
    }

    fn fake_salt(&self, mechanism: ScramMechanism, user: &str) -> Vec<u8> {
        let digest = crypto::hmac(
            ScramMechanism::Sha256,
            self.pepper.expose(),
            &[mechanism.name().as_bytes(), b"\0", user.as_bytes()],
        );
        let mut salt = digest.map(|d| d.as_bytes().to_vec()).unwrap_or_default();
        salt.resize(SALT_LEN, 0);
        salt
    }

    /// The SCRAM credential of `user`, or a fake one with a salt derived from
    /// the user name (stable across attempts, like a real one).
    pub(crate) fn scram(&self, mechanism: ScramMechanism, user: &str) -> ScramLookup {
        // Computed for every user so both paths cost the same.
        let fake_salt = self.fake_salt(mechanism, user);
        match self.users.get(user).and_then(|u| u.scram(mechanism)) {
            Some(credential) => ScramLookup { credential: credential.clone(), known: true },
            None => {
                let fake = match mechanism {
                    ScramMechanism::Sha256 => &self.fake_sha256,
                    ScramMechanism::Sha512 => &self.fake_sha512,
                };
                ScramLookup { credential: fake.with_salt(fake_salt), known: false }
            }
        }
    }

    /// Checks a PLAIN login in constant time: against the password digest,
    /// or, for users with SCRAM credentials only, by deriving the stored key.
    pub(crate) fn verify_plain(&self, user: &str, password: &[u8]) -> Result<(), PasswordMismatch> {
        let given = self.plain_digest(password);
        let entry = self.users.get(user);
        match entry {
            Some(UserEntry { password: Some(stored), .. }) => {
                if crypto::ct_eq(given.as_bytes(), stored.expose().as_bytes()) {
                    Ok(())
                } else {
                    Err(PasswordMismatch::WrongPassword)
                }
            }
            Some(UserEntry { password: None, sha256, sha512 }) => match sha256.as_ref().or(sha512.as_ref()) {
                Some(credential) if credential.verify_password(password) => Ok(()),
                Some(_) => Err(PasswordMismatch::WrongPassword),
                None => Err(PasswordMismatch::UnknownUser),
            },
            None => {
                // Same work as a known user: a digest compare, and a PBKDF2 when
                // some users are checked that way.
                let _ = crypto::ct_eq(given.as_bytes(), self.fake_password.expose().as_bytes());
                if self.slow_plain {
                    let _ = self.fake_sha256.verify_password(password);
                }
                Err(PasswordMismatch::UnknownUser)
            }
        }
    }
}

fn plain_digest(pepper: &[u8; 32], password: &[u8]) -> Digest {
    // HMAC accepts any key; an empty digest would only ever fail to match.
    crypto::hmac(ScramMechanism::Sha256, pepper, &[password])
        .unwrap_or_else(|_| crypto::hash(ScramMechanism::Sha256, b""))
}

impl CredentialStoreBuilder {
    /// Adds a password for `user` (PLAIN, and SCRAM for the mechanisms to derive).
    pub fn password(&mut self, user: &str, password: Secret<String>) -> Result<&mut Self, CredentialError> {
        if user.is_empty() {
            return Err(CredentialError::EmptyUser);
        }
        if password.expose().is_empty() {
            return Err(CredentialError::EmptyPassword { user: user.to_owned() });
        }
        if self.passwords.iter().any(|(u, _)| u == user) {
            return Err(CredentialError::DuplicatePassword { user: user.to_owned() });
        }
        self.passwords.push((user.to_owned(), password));
        Ok(self)
    }

    /// Adds a seed-000 `user=password` entry.
    pub fn user_password_entry(&mut self, entry: &str) -> Result<&mut Self, CredentialError> {
        let (user, password) = parse_user_password(entry)?;
        self.password(&user, password)
    }

    /// Adds a pre-computed SCRAM credential for `user`; it takes precedence
    /// over one derived from the user's password.
    pub fn scram(&mut self, user: &str, credential: ScramCredential) -> Result<&mut Self, CredentialError> {
        if user.is_empty() {
            return Err(CredentialError::EmptyUser);
        }
        let mechanism = credential.mechanism();
        if self.scram.iter().any(|(u, c)| u == user && c.mechanism() == mechanism) {
            return Err(CredentialError::DuplicateScram { user: user.to_owned(), mechanism });
        }
        self.scram.push((user.to_owned(), credential));
        Ok(self)
    }

    /// Hashes the passwords and builds the store (one PBKDF2 per password and
    /// mechanism to derive).
    pub fn build(self, random: &dyn Random) -> Result<CredentialStore, CredentialError> {
        let mut pepper = [0u8; 32];
        random.fill(&mut pepper)?;
        let mut users: HashMap<String, UserEntry> = HashMap::new();
        for (user, credential) in self.scram {
            let mechanism = credential.mechanism();
            *users.entry(user).or_default().scram_slot(mechanism) = Some(credential);
        }
        for (user, password) in self.passwords {
            let entry = match users.entry(user) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(UserEntry::default()),
            };
            entry.password = Some(Secret::new(plain_digest(&pepper, password.expose().as_bytes())));
            for &mechanism in &self.derive_for {
                let slot = entry.scram_slot(mechanism);
                if slot.is_none() {
                    let credential = ScramCredential::generate(
                        mechanism,
                        password.expose().as_bytes(),
                        self.iterations,
                        random,
                    )?;
                    *slot = Some(credential);
                }
            }
        }
        let fake = |mechanism: ScramMechanism| -> Result<ScramCredential, CredentialError> {
            let mut keys = [0u8; 128];
            random.fill(&mut keys)?;
            let len = mechanism.digest_len();
            let stored = keys.get(..len).unwrap_or_default();
            let server = keys.get(64..64 + len).unwrap_or_default();
            Ok(ScramCredential::from_parts(mechanism, vec![0; SALT_LEN], self.iterations, stored, server)?)
        };
        let mut fake_password = [0u8; 32];
        random.fill(&mut fake_password)?;
        let slow_plain = users.values().any(|u| u.password.is_none());
        Ok(CredentialStore {
            users,
            pepper: Secret::new(pepper),
            iterations: self.iterations,
            fake_sha256: fake(ScramMechanism::Sha256)?,
            fake_sha512: fake(ScramMechanism::Sha512)?,
            fake_password: Secret::new(plain_digest(&fake_password, b"")),
            slow_plain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::random::testing::FixedRandom;

    fn store() -> CredentialStore {
        let mut b = CredentialStore::builder(4096, &[ScramMechanism::Sha256]).expect("builder");
        b.password("alice", Secret::new("alice-secret".into())).expect("alice");
        b.user_password_entry("carol=pa=ss").expect("carol");
        let bob =
            ScramCredential::from_password(ScramMechanism::Sha512, b"bob-secret", b"salt".to_vec(), 4096)
                .expect("bob");
        b.scram("bob", bob).expect("bob");
        b.build(&FixedRandom::new()).expect("build")
    }

    #[test]
    fn plain_checks() {
        let s = store();
        assert_eq!(s.verify_plain("alice", b"alice-secret"), Ok(()));
        assert_eq!(s.verify_plain("alice", b"alice-secret "), Err(PasswordMismatch::WrongPassword));
        assert_eq!(s.verify_plain("carol", b"pa=ss"), Ok(()), "split at the first =");
        assert_eq!(s.verify_plain("bob", b"bob-secret"), Ok(()), "SCRAM-only user through PLAIN");
        assert_eq!(s.verify_plain("bob", b"bob"), Err(PasswordMismatch::WrongPassword));
        assert_eq!(s.verify_plain("mallory", b"x"), Err(PasswordMismatch::UnknownUser));
    }

    #[test]
    fn scram_lookups_hide_unknown_users() {
        let s = store();
        let alice = s.scram(ScramMechanism::Sha256, "alice");
        assert!(alice.known);
        assert_eq!(alice.credential.iterations(), 4096);
        assert!(alice.credential.verify_password(b"alice-secret"));
        assert!(!s.scram(ScramMechanism::Sha512, "alice").known, "not derived for a disabled mechanism");
        assert!(s.scram(ScramMechanism::Sha512, "bob").known);

        let a = s.scram(ScramMechanism::Sha256, "mallory");
        let b = s.scram(ScramMechanism::Sha256, "mallory");
        let c = s.scram(ScramMechanism::Sha256, "trudy");
        assert!(!a.known);
        assert_eq!(a.credential.salt(), b.credential.salt(), "stable across attempts");
        assert_ne!(a.credential.salt(), c.credential.salt(), "differs per user");
        assert_eq!(a.credential.salt().len(), alice.credential.salt().len());
        assert_eq!(a.credential.iterations(), alice.credential.iterations());
    }

    #[test]
    fn builder_refusals() {
        assert_eq!(CredentialStore::builder(4095, &[]).map(|_| ()), Err(CredentialError::Iterations(4095)));
        let mut b = CredentialStore::builder(4096, &[]).expect("builder");
        b.password("alice", Secret::new("x".into())).expect("first");
        assert!(matches!(
            b.password("alice", Secret::new("y".into())),
            Err(CredentialError::DuplicatePassword { .. })
        ));
        assert!(matches!(b.password("", Secret::new("y".into())), Err(CredentialError::EmptyUser)));
        assert!(matches!(b.user_password_entry("dave="), Err(CredentialError::EmptyPassword { .. })));
        let e = b.user_password_entry("dave:secret").map(|_| ()).expect_err("no =");
        assert!(!e.to_string().contains("secret"));
        assert_eq!(parse_user_password("=x").map(|_| ()), Err(CredentialError::EmptyUser));
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let debug = format!("{:?}", store());
        assert!(!debug.contains("alice-secret") && !debug.contains("bob-secret"));
        let mut b = CredentialStore::builder(4096, &[]).expect("builder");
        b.password("alice", Secret::new("alice-secret".into())).expect("alice");
        assert!(!format!("{b:?}").contains("alice-secret"));
    }
}
