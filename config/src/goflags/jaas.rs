//! Kafka's JAAS client configuration, as the Go proxy's
//! `--sasl-jaas-config-file` reads it: a `PlainLoginModule` entry with
//! `username` and `password` options, optionally inside a named section.
//!
//! ```text
//! KafkaClient {
//!   org.apache.kafka.common.security.plain.PlainLoginModule required
//!   username="alice"
//!   password="alice-secret";
//! };
//! ```

use std::collections::BTreeMap;

/// The credentials of a JAAS `PlainLoginModule` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JaasPlain {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// Parses `text`; errors say what was expected (never the password).
pub(crate) fn parse(text: &str) -> Result<JaasPlain, String> {
    let text = strip_comments(text);
    let mut rest = text.trim();
    // An optional `Name {` ... `};` section around the entry.
    if let Some(open) = rest.find('{')
        && !rest[..open].contains('"')
        && !rest[..open].contains(';')
    {
        let name = rest[..open].trim();
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
            return Err(format!("expected a section name before '{{', got {name:?}"));
        }
        rest = rest[open + 1..].trim();
        rest = rest.strip_suffix(';').map(str::trim_end).unwrap_or(rest);
        rest = rest.strip_suffix('}').ok_or("expected the section to end with '};'")?.trim();
    }
    let (module, after) =
        rest.split_once(char::is_whitespace).ok_or("expected a login module class and a flag")?;
    if !module.ends_with("PlainLoginModule") {
        return Err(format!(
            "expected org.apache.kafka.common.security.plain.PlainLoginModule (SASL/PLAIN), got {module}"
        ));
    }
    let after = after.trim_start();
    let (control, mut options) =
        after.split_once(char::is_whitespace).unwrap_or((after.trim_end_matches(';'), ""));
    if !["required", "requisite", "sufficient", "optional"].contains(&control) {
        return Err(format!("expected required after the login module, got {control:?}"));
    }
    let mut values = BTreeMap::new();
    loop {
        options = options.trim_start();
        if options.is_empty() {
            return Err("expected the entry to end with ';'".into());
        }
        if let Some(tail) = options.strip_prefix(';') {
            if !tail.trim().is_empty() {
                return Err("expected one login module entry".into());
            }
            break;
        }
        let (key, tail) = options.split_once('=').ok_or("expected key=\"value\" options")?;
        let key = key.trim();
        let tail = tail.trim_start();
        let (value, tail) = if let Some(quoted) = tail.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("unterminated value of {key}")),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("unterminated value of {key}")),
                }
            };
            (value, &quoted[end + 1..])
        } else {
            let end = tail.find(|c: char| c.is_whitespace() || c == ';').unwrap_or(tail.len());
            (tail[..end].to_owned(), &tail[end..])
        };
        values.insert(key.to_owned(), value);
        options = tail;
    }
    let username = values.remove("username").filter(|u| !u.is_empty()).ok_or("expected a username option")?;
    let password = values.remove("password").filter(|p| !p.is_empty()).ok_or("expected a password option")?;
    Ok(JaasPlain { username, password })
}

/// Drops `//` line comments and `/* */` block comments outside quotes.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '\\' if quoted => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '/' if !quoted && chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if !quoted && chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if last == '*' && n == '/' {
                        break;
                    }
                    last = n;
                }
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_or_bare_entry() {
        let file = "KafkaClient {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n  username=\"alice\"\n  password=\"a \\\"quoted\\\" secret\";\n};\n";
        assert_eq!(
            parse(file),
            Ok(JaasPlain { username: "alice".into(), password: "a \"quoted\" secret".into() })
        );
        let bare = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"bob\" password=\"pw\";";
        assert_eq!(parse(bare), Ok(JaasPlain { username: "bob".into(), password: "pw".into() }));
        let commented = "// the proxy's identity\n/* PLAIN */ org.apache.kafka.common.security.plain.PlainLoginModule required username=bob password=\"p//w\";";
        assert_eq!(parse(commented).map(|j| j.password), Ok("p//w".into()));
    }

    #[test]
    fn problems_are_named_without_the_password() {
        let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"topsecret\";";
        let err = parse(scram).unwrap_err();
        assert!(err.contains("PlainLoginModule") && !err.contains("topsecret"), "{err}");
        assert!(
            parse("org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";")
                .unwrap_err()
                .contains("password")
        );
        assert!(parse("org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\"").unwrap_err().contains("';'"));
        assert!(
            parse("org.apache.kafka.common.security.plain.PlainLoginModule required password=\"p\";")
                .unwrap_err()
                .contains("username")
        );
        assert!(parse("").is_err());
    }
}
