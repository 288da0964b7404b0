//! The YAML layer: serde_yaml 0.9's meaning and messages kept, hostile input bounded,
//! anchors, aliases and merge keys.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Deserializer, Document, Error};
use crate::{Config, ConfigError, load_str};

/// Reads `text` into `T` as the loader does, without the configuration model.
fn read<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    let doc = Document::load(text);
    let value = T::deserialize(&mut Deserializer::new(&doc))?;
    doc.finish()?;
    Ok(value)
}

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(text, Path::new("config.yaml"), |_| None)
}

/// What `kafka-proxy check` prints for a configuration that needs no other file.
fn check_output(text: &str) -> String {
    match load(text) {
        Ok(config) => {
            let mut out: String = config.warnings.iter().map(|w| format!("warning: {w}\n")).collect();
            out.push_str("config.yaml: OK\n");
            out.push_str(config.describe().trim_end());
            out
        }
        Err(e) => format!("error: {e}"),
    }
}

/// Fails unless `f` returns within `limit`.
#[track_caller]
fn fast<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = f();
    assert!(start.elapsed() < limit, "took {:?}", start.elapsed());
    value
}

/// A generic YAML value: reading into it follows every alias and enters every collection.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(dead_code, reason = "only built, to make the deserializer read everything")]
enum Value {
    Seq(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Str(String),
    Num(f64),
    Bool(bool),
    Null(()),
}

// ----- serde_yaml 0.9 compatibility -----

/// The cases of `testdata/serde_yaml_0.9.txt` (see its header), as (name, text, expected).
fn compat_cases() -> Vec<(String, String, String)> {
    let data = include_str!("../../testdata/serde_yaml_0.9.txt");
    let mut bases: BTreeMap<String, String> = BTreeMap::new();
    let mut cases = Vec::new();
    for block in data.split("\n=== ").skip(1) {
        let (name, body) = block.split_once('\n').unwrap();
        if let Some(base) = name.strip_prefix('@') {
            bases.insert(base.to_owned(), body.to_owned() + "\n");
            continue;
        }
        let (yaml, expect) = body.split_once("--- expect\n").unwrap();
        let unescape = |s: &str| s.replace("\\n", "\n").replace("\\\\", "\\");
        let text = match yaml.strip_suffix('\n').and_then(|line| line.split_once(": ")) {
            Some((base, edit)) if bases.contains_key(base) && !edit.contains('\n') => {
                let (old, new) = edit.split_once(" => ").unwrap();
                let (old, new) = (unescape(old) + "\n", unescape(new));
                let new = if new.is_empty() { new } else { new + "\n" };
                let base = &bases[base];
                assert!(base.contains(&old), "{name}: {old:?} not in the base");
                base.replacen(&old, &new, 1)
            }
            _ => yaml.to_owned(),
        };
        cases.push((name.to_owned(), text, expect.trim_end().to_owned()));
    }
    cases
}

#[test]
fn serde_yaml_compatibility() {
    let cases = compat_cases();
    assert!(cases.len() > 140, "{}", cases.len());
    let mut failures = Vec::new();
    for (name, text, expected) in &cases {
        let got = check_output(text);
        if &got != expected {
            failures.push(format!("{name}:\n  expected: {expected}\n  got:      {got}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn yaml_1_1_booleans_stay_strings() {
    // `yes`/`no`/`on`/`off` are strings (YAML 1.2, as serde_yaml 0.9): an error for a
    // boolean, a password as written.
    let text = "a: yes\nb: no\nc: on\nd: off\ne: y\nf: True\n";
    let map: BTreeMap<String, String> = read(text).unwrap();
    assert_eq!(map["a"], "yes");
    assert_eq!(map["c"], "on");
    #[derive(Debug, Deserialize)]
    struct Flags {
        #[allow(dead_code, reason = "read for its error")]
        a: bool,
    }
    let err = read::<Flags>("a: yes\n").unwrap_err();
    assert_eq!(err.to_string(), "invalid type: string \"yes\", expected a boolean at line 1 column 4");
    let flags: BTreeMap<String, bool> = read("a: true\nb: False\nc: TRUE\n").unwrap();
    assert_eq!(flags.values().copied().collect::<Vec<_>>(), vec![true, false, true]);
}

// ----- anchors, aliases, merge keys -----

#[test]
fn aliases_repeat_their_anchor() {
    let text = "
x-tls: &tls
  ca_certs: ca.pem
x-port: &port 9092
a: *tls
b: *port
c: [*port, *port]
";
    let value: BTreeMap<String, Value> = read(text).unwrap();
    assert!(matches!(&value["a"], Value::Map(m) if matches!(&m["ca_certs"], Value::Str(s) if s == "ca.pem")));
    assert!(matches!(value["b"], Value::Num(n) if n == 9092.0));
    assert!(matches!(&value["c"], Value::Seq(v) if v.len() == 2));
    // A redefined anchor: later aliases take the later value.
    let map: BTreeMap<String, u32> = read("a: &x 1\nb: *x\nc: &x 2\nd: *x\n").unwrap();
    assert_eq!((map["b"], map["d"]), (1, 2));
}

#[test]
fn an_error_in_an_alias_is_placed_at_its_anchor() {
    let text = "
bind_address: &addr 127.0.0.1
upstream:
  bootstrap_servers: [\"127.0.0.1:9092\"]
  security_protocol: PLAINTEXT
downstream:
  security_protocol: PLAINTEXT
broker_mapping:
  mode: port_offset
  port_offset:
    base: *addr
";
    assert_eq!(
        load(text).unwrap_err().to_string(),
        "config.yaml:2:15: broker_mapping.port_offset.base: invalid type: string \"127.0.0.1\", \
         expected a port 1-65535"
    );
    let err = load("upstream: *nope\n").unwrap_err().to_string();
    assert_eq!(err, "config.yaml:1:11: upstream: unknown anchor");
}

#[test]
fn merge_keys_are_refused() {
    // In a section (a struct), `<<` is an unknown key, as it always was.
    let text = "x: &up\n  bootstrap_servers: [\"b:1\"]\nupstream:\n  <<: *up\n";
    let err = load(text).unwrap_err().to_string();
    assert!(err.starts_with("config.yaml:1:1: x: unknown field `x`"), "{err}");
    let err =
        load(&text.replacen("x: &up\n  bootstrap_servers: [\"b:1\"]\n", "", 1)).unwrap_err().to_string();
    assert!(err.starts_with("config.yaml:2:3: upstream.<<: unknown field `<<`, expected one of"), "{err}");
    // In a map of names (users, principals) it is refused rather than read as a user `<<`.
    let text = "
upstream:
  bootstrap_servers: [\"b:9092\"]
  security_protocol: PLAINTEXT
downstream:
  security_protocol: SASL_PLAINTEXT
  sasl_mechanism: PLAIN
  credentials:
    users:
      alice: a
      <<: { bob: b }
";
    assert_eq!(
        load(text).unwrap_err().to_string(),
        "config.yaml:11:7: downstream.credentials.users.<<: merge keys (<<) are not supported: write the entries out"
    );
    // Quoted, it is an ordinary key.
    let map: BTreeMap<String, String> = read("\"<<\": x\n").unwrap();
    assert_eq!(map["<<"], "x");
}

// ----- documents and syntax -----

#[test]
fn one_document_only() {
    let err = read::<BTreeMap<String, u32>>("a: 1\n---\nb: 2\n").unwrap_err();
    assert_eq!(err.to_string(), "deserializing from YAML containing more than one document is not supported");
    assert_eq!(read::<BTreeMap<String, u32>>("---\na: 1\n...\n").unwrap()["a"], 1);
    // Nothing but comments reads as an empty mapping.
    assert!(read::<BTreeMap<String, u32>>("# nothing\n").unwrap().is_empty());
}

#[test]
fn syntax_errors_name_the_key_and_position() {
    let err =
        load("upstream:\n  bootstrap_servers: [\"a:1\"]\n   security_protocol: PLAINTEXT\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config.yaml:3:4: upstream.?: did not find expected key at line 3 column 4, while parsing a block \
         mapping at line 2 column 3"
    );
    let err = load("upstream:\n  bootstrap_servers: [a:1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config.yaml:3:1: upstream.bootstrap_servers: did not find expected ',' or ']' at line 3 column 1, \
         while parsing a flow sequence at line 2 column 22"
    );
    let err = load("upstream:\n  sasl_username: \"a\\qb\"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config.yaml:2:18: upstream.sasl_username: found unknown escape character, while parsing a quoted scalar"
    );
}

#[test]
fn json_is_yaml() {
    // The end-to-end tests write their configurations as indented JSON.
    let text = r#"{
  "bind_address": "127.0.0.1",
  "upstream": {"bootstrap_servers": ["127.0.0.1:9092"], "security_protocol": "PLAINTEXT"},
  "downstream": {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanisms": ["PLAIN"],
    "credentials": {"users": {"b\u00e9b": "x\"y\\z"}}
  },
  "broker_mapping": {"mode": "port_offset", "port_offset": {"hostname": "localhost", "base": 20000}},
  "limits": {"idle_timeout_ms": 0},
  "auth_swap": null
}"#;
    let config = load(text).unwrap();
    let users = &config.downstream.sasl.as_ref().unwrap().credentials;
    let Some(crate::UserCredential::Password { password, .. }) = users.get("b\u{e9}b") else {
        panic!("{users:?}")
    };
    assert_eq!(password.expose(), "x\"y\\z");
    assert_eq!(config.limits.idle_timeout, None);
    let err = load(&text.replace("20000", "\"20000\"")).unwrap_err().to_string();
    assert_eq!(
        err,
        "config.yaml:9:94: broker_mapping.port_offset.base: invalid type: string \"20000\", expected a port 1-65535"
    );
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let map: BTreeMap<String, u32> = read("\u{feff}a: 1\n").unwrap();
    assert_eq!(map["a"], 1);
}

// ----- hostile input -----

/// Nine levels of ten aliases each: a billion strings if every alias were expanded.
fn billion_laughs() -> String {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, next) in
        ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        text.push_str(&format!("{next}: &{next} [{refs}]\n"));
    }
    text
}

#[test]
fn an_alias_bomb_is_refused_quickly() {
    let bomb = billion_laughs();
    let err = fast(Duration::from_secs(5), || read::<BTreeMap<String, Value>>(&bomb)).unwrap_err();
    assert!(err.to_string().starts_with("repetition limit exceeded"), "{err}");
    // In the configuration, wherever it is put.
    for place in ["bootstrap_servers: *i", "bootstrap_servers: [*i]", "sasl_username: *i"] {
        let text = format!("{}upstream:\n  {place}\n", bomb.replace("a: &a", "x-lol: &a"));
        let err = fast(Duration::from_secs(5), || load(&text)).unwrap_err();
        assert!(err.to_string().starts_with("config.yaml:"), "{err}");
    }
    // An anchor used inside itself: a cycle, cut at the nesting limit.
    let err = fast(Duration::from_secs(5), || read::<BTreeMap<String, Value>>("a: &a [*a]\n")).unwrap_err();
    assert!(err.to_string().starts_with("recursion limit exceeded"), "{err}");
}

#[test]
fn deep_nesting_is_refused_quickly() {
    let depth = 10_000;
    let flow_seq = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let flow_map = format!("a: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth));
    // Block sequences nest on one line (`- - - x`); block mappings need a line each, so a
    // thousand levels (half a million characters) stand for them.
    let block_seq = format!("{}x\n", "- ".repeat(depth));
    let block: String = (0..1_000).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    for text in [&flow_seq, &flow_map, &block, &block_seq] {
        let err = fast(Duration::from_secs(10), || read::<Value>(text)).unwrap_err();
        assert!(err.to_string().contains("recursion limit exceeded"), "{err}");
        // The configuration refuses it too (unknown key, or the nesting itself).
        let err = fast(Duration::from_secs(10), || load(text)).unwrap_err();
        assert!(err.to_string().starts_with("config.yaml:"), "{err}");
    }
    let in_a_key = format!("upstream:\n  bootstrap_servers: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let err = fast(Duration::from_secs(10), || load(&in_a_key)).unwrap_err().to_string();
    assert!(err.contains("recursion limit exceeded"), "{err}");
}

#[test]
fn large_input_is_read_in_linear_time() {
    let mut text = String::from("upstream:\n  bootstrap_servers: [\"b:9092\"]\n  sasl_username: \"");
    text.push_str(&"x".repeat(4 << 20));
    text.push_str("\"\n");
    for i in 0..100_000 {
        text.push_str(&format!("# comment {i}\n"));
    }
    text.push_str("x-extra: {}\n");
    let err = fast(Duration::from_secs(20), || load(&text)).unwrap_err().to_string();
    assert!(err.contains("x-extra: unknown field `x-extra`"), "{}", &err[..err.len().min(200)]);
    let many: String = (0..100_000).map(|i| format!("k{i}: [{i}, {{v: {i}}}]\n")).collect();
    let map = fast(Duration::from_secs(20), || read::<BTreeMap<String, Value>>(&many)).unwrap();
    assert_eq!(map.len(), 100_000);
}

#[test]
fn arbitrary_bytes_never_panic() {
    use proptest::prelude::*;
    let config = ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() };
    let yaml_ish = prop::collection::vec(
        prop::sample::select(vec![
            "a",
            ":",
            " ",
            "\n",
            "  ",
            "-",
            "[",
            "]",
            "{",
            "}",
            ",",
            "&x",
            "*x",
            "!t",
            "!!str",
            "\"",
            "'",
            "|",
            ">",
            "#",
            "?",
            "<<",
            "~",
            "1",
            "0x",
            "\t",
            "\\",
            "%YAML 1.2",
            "---",
            "...",
            "é",
            "\u{feff}",
        ]),
        0..64,
    )
    .prop_map(|parts| parts.concat());
    proptest!(config, |(text in prop_oneof![yaml_ish, ".{0,64}"])| {
        let _ = read::<Value>(&text);
        let _ = load(&text);
    });
}
