//! serde's `Deserializer` over the events of a [`Document`].
//!
//! The rules are serde_yaml 0.9's, so that a configuration means what it meant and a
//! mistake is described in the same words:
//! * a string target takes any scalar as written (`port: 0x10` is the text `0x10`);
//! * a typed target (bool, integer, float) takes a plain scalar of that type, and anything
//!   else is an "invalid type" that names what was found (`string "yes"`, `sequence`);
//! * an empty value is an empty sequence or mapping where one is expected, and null for an
//!   option;
//! * a local tag (`!name`) selects an enum variant;
//! * errors are placed at the start of the innermost node being read (an alias: its anchor).
//!
//! Hostile input is bounded: at most [`RECURSION_LIMIT`] nested collections are entered,
//! aliases are followed at most a hundred times per event of the document, and skipping a
//! value never expands aliases.

use serde::de::{self, DeserializeSeed, Expected, IgnoredAny, Unexpected, Visitor};

use super::error::{Error, Mark};
use super::load::{Document, Event, Scalar, Style};
use super::scalar::{self, Resolved};

/// How many collections may nest.
pub(crate) const RECURSION_LIMIT: usize = 128;
/// How many times aliases may be followed, per event of the document.
const JUMPS_PER_EVENT: usize = 100;

const TAG_BOOL: &str = "tag:yaml.org,2002:bool";
const TAG_INT: &str = "tag:yaml.org,2002:int";
const TAG_FLOAT: &str = "tag:yaml.org,2002:float";
const TAG_NULL: &str = "tag:yaml.org,2002:null";

/// Reads the value that starts at one event of a document.
pub(crate) struct Deserializer<'d, 'a> {
    doc: &'d Document<'a>,
    /// The next event to read.
    pos: usize,
    /// How many more collections may be entered.
    depth: usize,
    /// The tag of the enum whose variant is being read: it is not a variant again.
    current_enum: Option<&'d str>,
}

impl<'d, 'a> Deserializer<'d, 'a> {
    /// A deserializer of the document's root value.
    pub(crate) fn new(doc: &'d Document<'a>) -> Self {
        Deserializer { doc, pos: 0, depth: RECURSION_LIMIT, current_enum: None }
    }

    fn peek(&self) -> Result<(&'d Event<'a>, Mark), Error> {
        match self.doc.events.get(self.pos) {
            Some((event, mark)) => Ok((event, *mark)),
            None => Err(self.doc.error.clone().unwrap_or_else(end_of_stream)),
        }
    }

    fn next(&mut self) -> Result<(&'d Event<'a>, Mark), Error> {
        let next = self.peek()?;
        self.pos += 1;
        self.current_enum = None;
        Ok(next)
    }

    /// A deserializer of the node an alias at `mark` refers to.
    fn jump(&self, target: usize, mark: Mark) -> Result<Deserializer<'d, 'a>, Error> {
        let jumps = self.doc.jumps.get() + 1;
        self.doc.jumps.set(jumps);
        if jumps > self.doc.events.len().saturating_mul(JUMPS_PER_EVENT) {
            return Err(Error::at("repetition limit exceeded", mark));
        }
        Ok(Deserializer { doc: self.doc, pos: target, depth: self.depth, current_enum: None })
    }

    /// Skips one value without following aliases.
    fn ignore_any(&mut self) -> Result<(), Error> {
        let mut open = 0usize;
        loop {
            let (event, mark) = self.next()?;
            match event {
                Event::SequenceStart { .. } | Event::MappingStart { .. } => open += 1,
                Event::SequenceEnd | Event::MappingEnd => {
                    open = open.checked_sub(1).ok_or_else(|| unbalanced(event, mark))?;
                }
                Event::Alias(_) | Event::Scalar(_) | Event::Void => {}
            }
            if open == 0 {
                return Ok(());
            }
        }
    }

    /// Runs `f` one collection deeper, refusing to go past the limit.
    fn nested<T>(&mut self, mark: Mark, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        let Some(depth) = self.depth.checked_sub(1) else {
            return Err(Error::at("recursion limit exceeded", mark));
        };
        let outer = std::mem::replace(&mut self.depth, depth);
        let result = f(self);
        self.depth = outer;
        result
    }

    fn visit_sequence<'de, V: Visitor<'de>>(&mut self, visitor: V, mark: Mark) -> Result<V::Value, Error> {
        let (value, len) = self.nested(mark, |de| {
            let mut seq = SeqAccess { de, empty: false, len: 0 };
            let value = visitor.visit_seq(&mut seq)?;
            Ok((value, seq.len))
        })?;
        let mut rest = SeqAccess { de: self, empty: false, len };
        while de::SeqAccess::next_element::<IgnoredAny>(&mut rest)?.is_some() {}
        let total = rest.len;
        self.expect_end(true)?;
        if total == len { Ok(value) } else { Err(de::Error::invalid_length(total, &Count::Elements(len))) }
    }

    /// Reads a mapping; `refuse_merge`: a `<<` key is an error rather than a key (a struct
    /// refuses it as an unknown field anyway).
    fn visit_mapping<'de, V: Visitor<'de>>(
        &mut self,
        visitor: V,
        mark: Mark,
        refuse_merge: bool,
    ) -> Result<V::Value, Error> {
        let (value, len) = self.nested(mark, |de| {
            let mut map = MapAccess { de, empty: false, len: 0, refuse_merge, merge_key: None };
            let value = visitor.visit_map(&mut map)?;
            Ok((value, map.len))
        })?;
        let mut rest = MapAccess { de: self, empty: false, len, refuse_merge: false, merge_key: None };
        while de::MapAccess::next_entry::<IgnoredAny, IgnoredAny>(&mut rest)?.is_some() {}
        let total = rest.len;
        self.expect_end(false)?;
        if total == len { Ok(value) } else { Err(de::Error::invalid_length(total, &Count::Entries(len))) }
    }

    /// Consumes the end of the sequence (or mapping) just read.
    fn expect_end(&mut self, sequence: bool) -> Result<(), Error> {
        match self.next()? {
            (Event::SequenceEnd, _) if sequence => Ok(()),
            (Event::MappingEnd, _) if !sequence => Ok(()),
            (Event::Void, _) => Ok(()),
            (event, mark) => Err(unbalanced(event, mark)),
        }
    }

    /// Reads a boolean or number from a plain scalar, or reports what was found instead.
    fn typed<'de, V: Visitor<'de>, T>(
        &mut self,
        visitor: V,
        tag: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        visit: impl FnOnce(V, T) -> Result<V::Value, Error>,
        again: impl FnOnce(&mut Self, V) -> Result<V::Value, Error>,
    ) -> Result<V::Value, Error> {
        let tagged_already = self.current_enum.is_some();
        let (event, mark) = self.next()?;
        match event {
            Event::Alias(target) => again(&mut self.jump(*target, mark)?, visitor),
            Event::Scalar(s) if takes_typed(tag, s, tagged_already) => match parse(&s.value) {
                Some(value) => visit(visitor, value),
                None => Err(invalid_type(event, &visitor)),
            },
            _ => Err(invalid_type(event, &visitor)),
        }
        .map_err(|e| e.or_at(mark))
    }

    /// A mapping (an empty value reads as an empty one).
    fn mapping<'de, V: Visitor<'de>>(&mut self, visitor: V, refuse_merge: bool) -> Result<V::Value, Error> {
        let (event, mark) = self.next()?;
        match event {
            Event::Alias(target) => self.jump(*target, mark)?.mapping(visitor, refuse_merge),
            Event::MappingStart { .. } => self.visit_mapping(visitor, mark, refuse_merge),
            other if is_empty_value(other) => {
                visitor.visit_map(MapAccess { de: self, empty: true, len: 0, refuse_merge, merge_key: None })
            }
            other => Err(invalid_type(other, &visitor)),
        }
        .map_err(|e| e.or_at(mark))
    }
}

/// A missing value (`key:` with nothing after it, or no document): an empty sequence or
/// mapping where one is expected.
fn is_empty_value(event: &Event<'_>) -> bool {
    match event {
        Event::Void => true,
        Event::Scalar(s) => s.value.is_empty() && s.style == Style::Plain,
        _ => false,
    }
}

/// How many items a visitor read, for "invalid length" when it stopped early.
enum Count {
    Elements(usize),
    Entries(usize),
}

impl Expected for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Count::Elements(1) => f.write_str("sequence of 1 element"),
            Count::Elements(n) => write!(f, "sequence of {n} elements"),
            Count::Entries(1) => f.write_str("map containing 1 entry"),
            Count::Entries(n) => write!(f, "map containing {n} entries"),
        }
    }
}

fn end_of_stream() -> Error {
    de::Error::custom("EOF while parsing a value")
}

fn unbalanced(event: &Event<'_>, mark: Mark) -> Error {
    let what = match event {
        Event::SequenceEnd => "unexpected end of sequence",
        Event::MappingEnd => "unexpected end of mapping",
        _ => "unexpected value where a collection ends",
    };
    Error::at(what, mark)
}

/// True for a plain scalar, or a literal block scalar with exactly this tag.
fn takes_typed(tag: &str, s: &Scalar<'_>, tagged_already: bool) -> bool {
    match (s.style, &s.tag, tagged_already) {
        (Style::Plain, _, _) => true,
        (Style::Literal, Some(t), false) => t == tag,
        _ => false,
    }
}

/// The variant name a local tag (`!name`) selects.
fn enum_tag(tag: Option<&String>, tagged_already: bool) -> Option<&str> {
    if tagged_already {
        return None;
    }
    let rest = tag?.strip_prefix('!')?;
    Some(if rest.is_empty() { "!" } else { rest })
}

/// Visits a scalar as what it resolves to; explicit core tags are checked.
fn visit_scalar<'de, V: Visitor<'de>>(
    visitor: V,
    s: &Scalar<'_>,
    tagged_already: bool,
) -> Result<V::Value, Error> {
    let value = s.value.as_ref();
    match (&s.tag, tagged_already) {
        (Some(tag), false) if tag == TAG_BOOL => match scalar::parse_bool(value) {
            Some(b) => visitor.visit_bool(b),
            None => Err(de::Error::invalid_value(Unexpected::Str(value), &"a boolean")),
        },
        (Some(tag), false) if tag == TAG_INT => match scalar::resolve_int(value) {
            Some(int) => visit_resolved(visitor, int, value),
            None => Err(de::Error::invalid_value(Unexpected::Str(value), &"an integer")),
        },
        (Some(tag), false) if tag == TAG_FLOAT => match scalar::parse_f64(value) {
            Some(f) => visitor.visit_f64(f),
            None => Err(de::Error::invalid_value(Unexpected::Str(value), &"a float")),
        },
        (Some(tag), false) if tag == TAG_NULL => {
            if scalar::is_null_word(value) {
                visitor.visit_unit()
            } else {
                Err(de::Error::invalid_value(Unexpected::Str(value), &"null"))
            }
        }
        (Some(tag), false) if !(tag.starts_with('!') && s.style == Style::Plain) => visitor.visit_str(value),
        _ if s.style == Style::Plain => visit_resolved(visitor, scalar::resolve_plain(value), value),
        _ => visitor.visit_str(value),
    }
}

fn visit_resolved<'de, V: Visitor<'de>>(
    visitor: V,
    resolved: Resolved,
    text: &str,
) -> Result<V::Value, Error> {
    match resolved {
        Resolved::Null => visitor.visit_unit(),
        Resolved::Bool(b) => visitor.visit_bool(b),
        Resolved::U64(v) => visitor.visit_u64(v),
        Resolved::I64(v) => visitor.visit_i64(v),
        Resolved::U128(v) => visitor.visit_u128(v),
        Resolved::I128(v) => visitor.visit_i128(v),
        Resolved::F64(v) => visitor.visit_f64(v),
        Resolved::Str => visitor.visit_str(text),
    }
}

/// `invalid type: <what the event is>, expected <exp>`.
fn invalid_type(event: &Event<'_>, exp: &dyn Expected) -> Error {
    /// A visitor that accepts nothing, so each `visit_*` reports what it was given.
    struct Nothing<'e>(&'e dyn Expected);
    impl<'de> Visitor<'de> for Nothing<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }
    match event {
        // `Nothing` accepts nothing, so this is always the error.
        Event::Scalar(s) => visit_scalar(Nothing(exp), s, false)
            .err()
            .unwrap_or_else(|| de::Error::invalid_type(Unexpected::Other("scalar"), exp)),
        Event::SequenceStart { .. } => de::Error::invalid_type(Unexpected::Seq, exp),
        Event::MappingStart { .. } => de::Error::invalid_type(Unexpected::Map, exp),
        Event::Void => end_of_stream(),
        Event::Alias(_) | Event::SequenceEnd | Event::MappingEnd => {
            de::Error::invalid_type(Unexpected::Other("the end of a collection"), exp)
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'_, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let tagged_already = self.current_enum.is_some();
        let (event, mark) = self.next()?;
        let tag = match event {
            Event::Scalar(s) => s.tag.as_ref(),
            Event::SequenceStart { tag } | Event::MappingStart { tag } => tag.as_ref(),
            _ => None,
        };
        if let Some(variant) = enum_tag(tag, tagged_already) {
            self.pos -= 1;
            return visitor.visit_enum(EnumAccess { de: self, variant }).map_err(|e| e.or_at(mark));
        }
        match event {
            Event::Alias(target) => self.jump(*target, mark)?.deserialize_any(visitor),
            Event::Scalar(s) => visit_scalar(visitor, s, tagged_already),
            Event::SequenceStart { .. } => self.visit_sequence(visitor, mark),
            Event::MappingStart { .. } => self.visit_mapping(visitor, mark, true),
            Event::Void => visitor.visit_none(),
            Event::SequenceEnd | Event::MappingEnd => Err(unbalanced(event, mark)),
        }
        .map_err(|e| e.or_at(mark))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.typed(
            visitor,
            TAG_BOOL,
            scalar::parse_bool,
            |v, b| v.visit_bool(b),
            |de, v| de.deserialize_bool(v),
        )
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.typed(
            visitor,
            TAG_INT,
            |t| scalar::parse_signed(t, i64::from_str_radix),
            |v, n| v.visit_i64(n),
            |de, v| de.deserialize_i64(v),
        )
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.typed(
            visitor,
            TAG_INT,
            |t| scalar::parse_signed(t, i128::from_str_radix),
            |v, n| v.visit_i128(n),
            |de, v| de.deserialize_i128(v),
        )
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.typed(
            visitor,
            TAG_INT,
            |t| scalar::parse_unsigned(t, u64::from_str_radix),
            |v, n| v.visit_u64(n),
            |de, v| de.deserialize_u64(v),
        )
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.typed(
            visitor,
            TAG_INT,
            |t| scalar::parse_unsigned(t, u128::from_str_radix),
            |v, n| v.visit_u128(n),
            |de, v| de.deserialize_u128(v),
        )
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.typed(
            visitor,
            TAG_FLOAT,
            scalar::parse_f64,
            |v, f| v.visit_f64(f),
            |de, v| de.deserialize_f64(v),
        )
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (event, mark) = self.next()?;
        match event {
            Event::Scalar(s) => visitor.visit_str(&s.value),
            Event::Alias(target) => self.jump(*target, mark)?.deserialize_str(visitor),
            other => Err(invalid_type(other, &visitor)),
        }
        .map_err(|e| e.or_at(mark))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("serialization and deserialization of bytes in YAML is not implemented"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    /// Null (`~`, `null`, an empty value) is `None`; anything else is `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let tagged_already = self.current_enum.is_some();
        let (event, mark) = self.peek()?;
        let is_some = match event {
            Event::Alias(target) => {
                self.pos += 1;
                return self.jump(*target, mark)?.deserialize_option(visitor);
            }
            Event::Scalar(s) if s.style != Style::Plain => true,
            Event::Scalar(Scalar { tag: Some(tag), value, .. }) if !tagged_already => {
                if tag != TAG_NULL {
                    true
                } else if scalar::is_null_word(value) {
                    false
                } else {
                    // Unplaced, so it is reported at the enclosing node, as serde_yaml did.
                    return Err(de::Error::invalid_value(Unexpected::Str(value), &"null"));
                }
            }
            Event::Scalar(s) => !scalar::is_null(&s.value),
            Event::SequenceStart { .. } | Event::MappingStart { .. } => true,
            Event::SequenceEnd | Event::MappingEnd => return Err(unbalanced(event, mark)),
            Event::Void => false,
        };
        if is_some {
            visitor.visit_some(self)
        } else {
            self.pos += 1;
            self.current_enum = None;
            visitor.visit_none()
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let tagged_already = self.current_enum.is_some();
        let (event, mark) = self.next()?;
        match event {
            Event::Scalar(s) => {
                let is_null = match (&s.tag, tagged_already) {
                    _ if s.style != Style::Plain => false,
                    (Some(tag), false) => tag == TAG_NULL && scalar::is_null_word(&s.value),
                    _ => scalar::is_null(&s.value),
                };
                if is_null {
                    visitor.visit_unit()
                } else {
                    Err(de::Error::invalid_value(Unexpected::Str(&s.value), &"null"))
                }
            }
            Event::Alias(target) => self.jump(*target, mark)?.deserialize_unit(visitor),
            Event::Void => visitor.visit_unit(),
            other => Err(invalid_type(other, &visitor)),
        }
        .map_err(|e| e.or_at(mark))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (_, mark) = self.peek()?;
        self.nested(mark, |de| visitor.visit_newtype_struct(de))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (event, mark) = self.next()?;
        match event {
            Event::Alias(target) => self.jump(*target, mark)?.deserialize_seq(visitor),
            Event::SequenceStart { .. } => self.visit_sequence(visitor, mark),
            other if is_empty_value(other) => visitor.visit_seq(SeqAccess { de: self, empty: true, len: 0 }),
            other => Err(invalid_type(other, &visitor)),
        }
        .map_err(|e| e.or_at(mark))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.mapping(visitor, true)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.mapping(visitor, false)
    }

    /// An enum is a tagged node (`!Variant value`) or a scalar naming a unit variant.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (event, mark) = self.peek()?;
        if let Some(tag) = self.current_enum {
            return match event {
                Event::Scalar(s) if !s.value.is_empty() => visitor.visit_enum(UnitVariant { de: self }),
                _ => Err(de::Error::custom(format_args!(
                    "deserializing nested enum in {name}::{tag} from YAML is not supported yet"
                ))),
            }
            .map_err(|e| e.or_at(mark));
        }
        match event {
            Event::Alias(target) => {
                self.pos += 1;
                self.jump(*target, mark)?.deserialize_enum(name, variants, visitor)
            }
            Event::Scalar(s) => match enum_tag(s.tag.as_ref(), false) {
                Some(variant) => visitor.visit_enum(EnumAccess { de: self, variant }),
                None => visitor.visit_enum(UnitVariant { de: self }),
            },
            Event::MappingStart { tag } | Event::SequenceStart { tag } => match enum_tag(tag.as_ref(), false)
            {
                Some(variant) => visitor.visit_enum(EnumAccess { de: self, variant }),
                None => {
                    let found = if matches!(event, Event::MappingStart { .. }) {
                        Unexpected::Map
                    } else {
                        Unexpected::Seq
                    };
                    Err(de::Error::invalid_type(found, &"a YAML tag starting with '!'"))
                }
            },
            Event::SequenceEnd | Event::MappingEnd => Err(unbalanced(event, mark)),
            Event::Void => Err(end_of_stream()),
        }
        .map_err(|e| e.or_at(mark))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.ignore_any()?;
        visitor.visit_unit()
    }
}

struct SeqAccess<'x, 'd, 'a> {
    de: &'x mut Deserializer<'d, 'a>,
    /// An empty value read as an empty sequence: there is nothing to read.
    empty: bool,
    len: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, '_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if self.empty {
            return Ok(None);
        }
        match self.de.peek()?.0 {
            Event::SequenceEnd | Event::Void => Ok(None),
            _ => {
                self.len += 1;
                seed.deserialize(&mut *self.de).map(Some)
            }
        }
    }
}

struct MapAccess<'x, 'd, 'a> {
    de: &'x mut Deserializer<'d, 'a>,
    /// An empty value read as an empty mapping: there is nothing to read.
    empty: bool,
    len: usize,
    /// Whether a merge key (`<<`) is refused.
    refuse_merge: bool,
    /// Where the merge key just read is, when it is refused.
    merge_key: Option<Mark>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, '_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        if self.empty {
            return Ok(None);
        }
        match self.de.peek()? {
            (Event::MappingEnd | Event::Void, _) => Ok(None),
            (event, mark) => {
                if let Event::Scalar(Scalar { value, style: Style::Plain, tag: None }) = event
                    && value == "<<"
                    && self.refuse_merge
                {
                    self.merge_key = Some(mark);
                }
                self.len += 1;
                seed.deserialize(&mut *self.de).map(Some)
            }
        }
    }

    /// The value; after a merge key, the error that merge keys are not supported (YAML 1.2
    /// has none, and a user or principal named `<<` is not what was meant).
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        if let Some(mark) = self.merge_key.take() {
            // Through the seed, so that the error is reported under the `<<` key.
            return seed.deserialize(MergeKey(mark));
        }
        seed.deserialize(&mut *self.de)
    }
}

/// The value of a refused merge key: every read is the error.
struct MergeKey(Mark);

impl<'de> de::Deserializer<'de> for MergeKey {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::at("merge keys (<<) are not supported: write the entries out", self.0))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// A tagged node: the tag names the variant, the node is its content.
struct EnumAccess<'x, 'd, 'a> {
    de: &'x mut Deserializer<'d, 'a>,
    variant: &'d str,
}

impl<'de, 'x, 'd, 'a> de::EnumAccess<'de> for EnumAccess<'x, 'd, 'a> {
    type Error = Error;
    type Variant = &'x mut Deserializer<'d, 'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(de::value::StrDeserializer::<Error>::new(self.variant))?;
        self.de.current_enum = Some(self.variant);
        Ok((variant, self.de))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Deserializer<'_, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

/// A scalar naming a unit variant.
struct UnitVariant<'x, 'd, 'a> {
    de: &'x mut Deserializer<'d, 'a>,
}

impl<'de> de::EnumAccess<'de> for UnitVariant<'_, '_, '_> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        Ok((seed.deserialize(&mut *self.de)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_, '_, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(de::Error::invalid_type(Unexpected::UnitVariant, &"newtype variant"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(Unexpected::UnitVariant, &"tuple variant"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(Unexpected::UnitVariant, &"struct variant"))
    }
}
