//! `kafka-proxy scram-credentials`: pre-computed SCRAM credentials for the
//! configuration, so the password itself need not be stored.
//!
//! The output is the YAML value of `downstream.credentials.users.<name>`:
//! mechanism, base64 salt, iterations, base64 `StoredKey` and `ServerKey`.

use kafka_proxy_core::sasl::scram::ScramError;
use kafka_proxy_core::sasl::{Random, ScramCredential, ScramMechanism, SystemRandom};
use serde::Serialize;

/// The configuration shape of one pre-computed credential.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    mechanism: &'a str,
    salt: String,
    iterations: u32,
    stored_key: String,
    server_key: String,
}

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
    let entry = Entry {
        mechanism: mechanism.name(),
        salt: b64.salt,
        iterations,
        stored_key: b64.stored_key.into_inner(),
        server_key: b64.server_key.into_inner(),
    };
    // Serializing a struct of strings and an integer cannot fail.
    Ok(serde_yaml::to_string(&entry).unwrap_or_default())
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
    let name = serde_yaml::to_string(user).unwrap_or_default();
    let mut out = format!("{}:\n", name.trim_end());
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
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    #[derive(serde::Deserialize)]
    struct Parsed {
        mechanism: String,
        salt: String,
        iterations: u32,
        stored_key: String,
        server_key: String,
    }

    #[test]
    fn output_loads_back_and_verifies_the_password() {
        for mechanism in ScramMechanism::ALL {
            let yaml = scram_credentials(mechanism, "s3cret: yes", 4096).expect("derive");
            let p: Parsed = serde_yaml::from_str(&yaml).expect("valid YAML");
            assert_eq!((p.mechanism.as_str(), p.iterations), (mechanism.name(), 4096));
            let credential = ScramCredential::from_parts(
                mechanism,
                STANDARD.decode(&p.salt).expect("salt"),
                p.iterations,
                &STANDARD.decode(&p.stored_key).expect("stored"),
                &STANDARD.decode(&p.server_key).expect("server"),
            )
            .expect("credential");
            assert!(credential.verify_password(b"s3cret: yes"));
            assert!(!yaml.contains("s3cret"), "the password is not in the output");
        }
        assert!(scram_credentials(ScramMechanism::Sha256, "pw", 1000).is_err());
    }

    #[test]
    fn entry_is_nested_under_the_user() {
        let yaml =
            scram_credentials_entry("bob: the builder", ScramMechanism::Sha512, "pw", 4096).expect("derive");
        let map: std::collections::BTreeMap<String, Parsed> =
            serde_yaml::from_str(&yaml).expect("valid YAML");
        assert_eq!(map["bob: the builder"].mechanism, "SCRAM-SHA-512");
        assert_eq!(parse_scram_mechanism("scram-256"), Some(ScramMechanism::Sha256));
        assert_eq!(parse_scram_mechanism("PLAIN"), None);
    }
}
