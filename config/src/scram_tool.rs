//! `kafka-proxy scram-credentials`: pre-computed SCRAM credentials for the
//! configuration, so the password itself need not be stored.
//!
//! The output is the YAML value of `downstream.credentials.users.<name>`:
//! mechanism, base64 salt, iterations, base64 `StoredKey` and `ServerKey`.

use kafka_proxy_core::sasl::{Random, ScramCredential, ScramError, ScramMechanism, SystemRandom};

use crate::yaml::emit;

/// Derives SCRAM credentials for `password` with a fresh random salt and
/// returns the YAML mapping for `downstream.credentials.users.<name>`.
/// Fails when `iterations` is below 4096.
pub fn scram_credentials(
    mechanism: ScramMechanism,
    password: &str,
    iterations: u32,
) -> Result<String, ScramError> {
    scram_credentials_with(mechanism, password, iterations, &SystemRandom::new())
}

/// [`scram_credentials`] with an explicit random source.
fn scram_credentials_with(
    mechanism: ScramMechanism,
    password: &str,
    iterations: u32,
    random: &dyn Random,
) -> Result<String, ScramError> {
    let credential = ScramCredential::generate(mechanism, password.as_bytes(), iterations, random)?;
    let b64 = credential.to_base64();
    Ok(format!(
        "mechanism: {}\nsalt: {}\niterations: {iterations}\nstored_key: {}\nserver_key: {}\n",
        emit::string(mechanism.name()),
        emit::string(&b64.salt),
        emit::string(b64.stored_key.expose()),
        emit::string(b64.server_key.expose()),
    ))
}

/// The same mapping nested under the user's name, ready to paste below
/// `downstream.credentials.users:` (the name is quoted when YAML needs it).
pub fn scram_credentials_entry(
    user: &str,
    mechanism: ScramMechanism,
    password: &str,
    iterations: u32,
) -> Result<String, ScramError> {
    let body = scram_credentials(mechanism, password, iterations)?;
    let mut out = format!("{}:\n", emit::string(user));
    for line in body.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// Parses a mechanism name for the subcommand (`SCRAM-SHA-256`, `SCRAM-512`, any case).
pub fn parse_scram_mechanism(name: &str) -> Option<ScramMechanism> {
    match kafka_proxy_core::sasl::Mechanism::from_config_name(name)? {
        kafka_proxy_core::sasl::Mechanism::Scram(m) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{Mechanism, UserCredential, load_credentials_file};

    /// Loads `yaml` as the users of a credentials file, as the proxy would.
    fn load_users(yaml: &str) -> std::collections::BTreeMap<String, UserCredential> {
        let dir = std::env::temp_dir().join(format!("kafka-proxy-scram-tool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("users-{}.yaml", yaml.len()));
        let users = "users:\n".to_owned() + &yaml.lines().map(|l| format!("  {l}\n")).collect::<String>();
        std::fs::write(&path, users).unwrap();
        let loaded = load_credentials_file(Path::new(&path), |_| None);
        let _ = std::fs::remove_file(&path);
        loaded.unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    #[test]
    fn output_loads_back_and_verifies_the_password() {
        for mechanism in ScramMechanism::ALL {
            let yaml = scram_credentials(mechanism, "s3cret: yes", 4096).expect("derive");
            assert!(!yaml.contains("s3cret"), "the password is not in the output");
            let users = load_users(&format!(
                "bob:\n{}",
                yaml.lines().map(|l| format!("  {l}\n")).collect::<String>()
            ));
            let Some(UserCredential::Scram(bob)) = users.get("bob") else { panic!("{users:?}") };
            assert_eq!((bob.mechanism.name(), bob.iterations), (mechanism.name(), 4096));
            let credential = ScramCredential::from_parts(
                mechanism,
                bob.salt.clone(),
                bob.iterations,
                bob.stored_key.expose(),
                bob.server_key.expose(),
            )
            .expect("credential");
            assert!(credential.verify_password(b"s3cret: yes"));
        }
        assert!(scram_credentials(ScramMechanism::Sha256, "pw", 1000).is_err());
    }

    #[test]
    fn entry_is_nested_under_the_user() {
        for user in ["bob", "bob: the builder", "007", "true", "- x", "#x", "a\"b\\c", ""] {
            let yaml = scram_credentials_entry(user, ScramMechanism::Sha512, "pw", 4096).expect("derive");
            let users = load_users(&yaml);
            let Some(UserCredential::Scram(entry)) = users.get(user) else { panic!("{user:?}: {users:?}") };
            assert_eq!(entry.mechanism, Mechanism::ScramSha512);
        }
        let plain = scram_credentials_entry("bob", ScramMechanism::Sha256, "pw", 4096).expect("derive");
        assert!(plain.starts_with("bob:\n  mechanism: SCRAM-SHA-256\n  salt: "), "{plain}");
        assert_eq!(parse_scram_mechanism("scram-256"), Some(ScramMechanism::Sha256));
        assert_eq!(parse_scram_mechanism("PLAIN"), None);
    }
}
