//! A small YAML document builder for the translation: keys set by dotted
//! path in insertion order, each remembering the flag it came from.

use std::collections::BTreeMap;

use crate::yaml::emit;

/// A value in the document.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A string (quoted as needed, `$` doubled so it is never expanded).
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Value {
    pub(crate) fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }
}

/// The document: a map of maps.
#[derive(Debug, Default)]
pub(crate) struct Doc {
    root: Vec<(String, Value)>,
    sources: BTreeMap<String, String>,
}

impl Doc {
    /// Sets `path` (dot-separated keys) to `value`, from `flag`.
    pub(crate) fn set(&mut self, path: &str, value: Value, flag: &str) {
        let keys: Vec<&str> = path.split('.').collect();
        self.set_keys(&keys, value, flag);
    }

    /// Sets the value under `keys` (any text, dots included), from `flag`.
    pub(crate) fn set_keys(&mut self, keys: &[&str], value: Value, flag: &str) {
        self.sources.insert(keys.join("."), flag.to_owned());
        let mut map = &mut self.root;
        let mut keys = keys.iter().copied().peekable();
        while let Some(k) = keys.next() {
            if keys.peek().is_none() {
                match map.iter_mut().find(|(name, _)| name == k) {
                    Some(slot) => slot.1 = value,
                    None => map.push((k.to_owned(), value)),
                }
                return;
            }
            let at = match map.iter().position(|(name, _)| name == k) {
                Some(at) => at,
                None => {
                    map.push((k.to_owned(), Value::Map(Vec::new())));
                    map.len() - 1
                }
            };
            let Some((_, Value::Map(inner))) = map.get_mut(at) else { return };
            map = inner;
        }
    }

    /// The YAML text and the key sources.
    pub(crate) fn render(self) -> (String, BTreeMap<String, String>) {
        let mut out = String::new();
        write_map(&self.root, 0, &mut out);
        (out, self.sources)
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Str(s) => Some(emit::string(&s.replace('$', "$$")).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::List(l) if l.is_empty() => Some("[]".into()),
        Value::Map(m) if m.is_empty() => Some("{}".into()),
        Value::List(_) | Value::Map(_) => None,
    }
}

fn write_map(map: &[(String, Value)], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in map {
        write_entry(&pad, k, v, indent + 2, out);
    }
}

/// `lead key: scalar`, or `lead key:` and the value below it at `nested`.
fn write_entry(lead: &str, key: &str, value: &Value, nested: usize, out: &mut String) {
    let key = emit::string(key);
    match scalar(value) {
        Some(s) => out.push_str(&format!("{lead}{key}: {s}\n")),
        None => {
            out.push_str(&format!("{lead}{key}:\n"));
            write_value(value, nested, out);
        }
    }
}

fn write_value(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Map(m) => write_map(m, indent, out),
        Value::List(items) => {
            let pad = " ".repeat(indent);
            for item in items {
                match (scalar(item), item) {
                    (Some(s), _) => out.push_str(&format!("{pad}- {s}\n")),
                    (None, Value::Map(m)) => {
                        for (i, (k, v)) in m.iter().enumerate() {
                            let lead = if i == 0 { format!("{pad}- ") } else { format!("{pad}  ") };
                            write_entry(&lead, k, v, indent + 4, out);
                        }
                    }
                    (None, other) => {
                        out.push_str(&format!("{pad}-\n"));
                        write_value(other, indent + 2, out);
                    }
                }
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                out.push_str(&format!("{}{s}\n", " ".repeat(indent)));
            }
        }
    }
}
