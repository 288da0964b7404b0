//! Client credentials: `downstream.credentials.users` entries and credentials files
//! (seed 003's model), checked into [`UserCredential`]s.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{ConfigError, Report};
use crate::model::{Mechanism, ScramCredential, Secret, UserCredential};
use crate::raw::{RawCredentialsFile, RawUser, RawUserFields};
use crate::{expand, parse_yaml, read_file};

/// RFC 7677's minimum PBKDF2 iteration count for SCRAM.
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;

/// Reads a credentials file (`users:` map, same entries as `downstream.credentials.users`),
/// with the same `${VAR}` expansion as the configuration. The runtime calls this again
/// to reload the file.
pub fn load_credentials_file(
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, UserCredential>, ConfigError> {
    let text = expand(&read_file(path)?, path, &env)?;
    let raw: RawCredentialsFile = parse_yaml(&text, path)?;
    let mut report = Report::new(path);
    let users = users(raw.users.0, "users", &mut report);
    if report.problems.is_empty() { Ok(users) } else { Err(ConfigError::Invalid(report.problems)) }
}

/// Checks each user of a `users` map found at `path`.
pub(crate) fn users(
    raw: BTreeMap<String, RawUser>,
    path: &str,
    report: &mut Report<'_>,
) -> BTreeMap<String, UserCredential> {
    raw.into_iter()
        .filter_map(|(name, user)| {
            let at = format!("{path}.{name}");
            user_credential(&at, user, report).map(|credential| (name, credential))
        })
        .collect()
}

/// Checks one user entry found at `path`.
fn user_credential(path: &str, raw: RawUser, report: &mut Report<'_>) -> Option<UserCredential> {
    match raw {
        RawUser::Password(password) => password_credential(path, password, None, report),
        RawUser::Fields(fields) => fields_credential(path, fields, report),
    }
}

fn password_credential(
    path: &str,
    password: Secret,
    iterations: Option<u32>,
    report: &mut Report<'_>,
) -> Option<UserCredential> {
    if password.expose().is_empty() {
        report.error(path, "expected a non-empty password");
        return None;
    }
    if let Some(n) = iterations {
        check_iterations(&format!("{path}.iterations"), n, report)?;
    }
    Some(UserCredential::Password { password, iterations })
}

fn check_iterations(path: &str, n: u32, report: &mut Report<'_>) -> Option<()> {
    if n < MIN_SCRAM_ITERATIONS {
        report.error(path, format!("expected at least {MIN_SCRAM_ITERATIONS} SCRAM iterations, got {n}"));
        return None;
    }
    Some(())
}

fn fields_credential(path: &str, fields: RawUserFields, report: &mut Report<'_>) -> Option<UserCredential> {
    let RawUserFields { password, mechanism, salt, iterations, stored_key, server_key } = fields;
    if let Some(password) = password {
        let mut ok = true;
        for (key, present) in [
            ("mechanism", mechanism.is_some()),
            ("salt", salt.is_some()),
            ("stored_key", stored_key.is_some()),
            ("server_key", server_key.is_some()),
        ] {
            if present {
                report.error(
                    format!("{path}.{key}"),
                    "expected either password (and optionally iterations) or pre-computed SCRAM \
                     credentials, not both",
                );
                ok = false;
            }
        }
        let credential = password_credential(path, password, iterations, report);
        return credential.filter(|_| ok);
    }

    for (key, present) in [
        ("salt", salt.is_some()),
        ("iterations", iterations.is_some()),
        ("stored_key", stored_key.is_some()),
        ("server_key", server_key.is_some()),
    ] {
        if !present {
            report.error(
                format!("{path}.{key}"),
                "required for pre-computed SCRAM credentials (salt, iterations, stored_key, server_key), \
                 or give a password",
            );
        }
    }
    let (Some(salt), Some(iterations), Some(stored_key), Some(server_key)) =
        (salt, iterations, stored_key, server_key)
    else {
        return None;
    };
    let (stored_key, server_key) = (stored_key.0.0, server_key.0.0);
    let mechanism = match mechanism.map(|m| m.0) {
        Some(m) if m.is_scram() => m,
        Some(m) => {
            report.error(
                format!("{path}.mechanism"),
                format!("expected SCRAM-SHA-256 or SCRAM-SHA-512 for pre-computed credentials, got {m}"),
            );
            return None;
        }
        None => match stored_key.len() {
            32 => Mechanism::ScramSha256,
            64 => Mechanism::ScramSha512,
            n => {
                report.error(
                    format!("{path}.mechanism"),
                    format!(
                        "required: cannot tell SCRAM-SHA-256 (32-byte keys) from SCRAM-SHA-512 (64-byte keys) \
                         with a {n}-byte stored_key"
                    ),
                );
                return None;
            }
        },
    };
    let mut ok = check_iterations(&format!("{path}.iterations"), iterations, report).is_some();
    let key_len = mechanism.scram_key_len().unwrap_or_default();
    for (key, value) in [("stored_key", &stored_key), ("server_key", &server_key)] {
        if value.len() != key_len {
            report.error(
                format!("{path}.{key}"),
                format!("expected {key_len} bytes for {mechanism}, got {} bytes", value.len()),
            );
            ok = false;
        }
    }
    ok.then(|| {
        UserCredential::Scram(ScramCredential {
            mechanism,
            salt: salt.0.0,
            iterations,
            stored_key: Secret::new(stored_key),
            server_key: Secret::new(server_key),
        })
    })
}
