//! The first document of the text as a list of parser events, with anchors resolved to
//! event indexes. Parsing stops at the first syntax error, which is kept: the deserializer
//! reports it when it reaches that point, under the key it was reading.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;

use saphyr_parser::{Event as ParserEvent, Parser, ScalarStyle, ScanError, Span, Tag};

use super::error::{Error, Mark};

/// How a scalar was written; only plain scalars are resolved to null, booleans and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Quoted,
    Literal,
    Folded,
}

#[derive(Debug)]
pub(crate) struct Scalar<'a> {
    pub(crate) value: Cow<'a, str>,
    pub(crate) style: Style,
    /// The resolved tag (`tag:yaml.org,2002:str`, `!local`), if one was written.
    pub(crate) tag: Option<String>,
}

#[derive(Debug)]
pub(crate) enum Event<'a> {
    Scalar(Scalar<'a>),
    SequenceStart {
        tag: Option<String>,
    },
    SequenceEnd,
    MappingStart {
        tag: Option<String>,
    },
    MappingEnd,
    /// An alias: the index of the anchored node's first event.
    Alias(usize),
    /// A stream without any document.
    Void,
}

/// The events of one document.
#[derive(Debug)]
pub(crate) struct Document<'a> {
    pub(crate) events: Vec<(Event<'a>, Mark)>,
    /// The syntax error that ended the events early, if any.
    pub(crate) error: Option<Error>,
    /// Whether anything (another document, or text that fails to parse) follows the
    /// first document.
    pub(crate) more_documents: bool,
    /// How many times the deserializer followed an alias (bounded against alias bombs).
    pub(crate) jumps: Cell<usize>,
}

/// An open collection: a mapping or a sequence, and where it starts.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Open {
    mapping: bool,
    start: Mark,
}

impl<'a> Document<'a> {
    /// Parses the first document of `text`.
    pub(crate) fn load(text: &'a str) -> Document<'a> {
        let mut parser = Parser::new_from_str(text);
        let mut doc =
            Document { events: Vec::new(), error: None, more_documents: false, jumps: Cell::new(0) };
        let mut anchors: HashMap<usize, usize> = HashMap::new();
        // Collections not closed yet, for syntax error messages.
        let mut open: Vec<Open> = Vec::new();
        let mut chars = CharCursor::new(text);
        loop {
            let (event, span) = match parser.next_event() {
                Some(Ok(next)) => next,
                Some(Err(e)) => {
                    doc.error = Some(syntax_error(&e, &open));
                    return doc;
                }
                None => return doc,
            };
            let mark = Mark::of(&span.start);
            let event = match event {
                ParserEvent::StreamStart | ParserEvent::DocumentStart(_) | ParserEvent::Nothing => continue,
                ParserEvent::StreamEnd => {
                    if doc.events.is_empty() {
                        doc.events.push((Event::Void, mark));
                    }
                    return doc;
                }
                ParserEvent::DocumentEnd => {
                    doc.more_documents =
                        !matches!(parser.next_event(), Some(Ok((ParserEvent::StreamEnd, _))) | None);
                    return doc;
                }
                ParserEvent::Alias(id) => match anchors.get(&id) {
                    Some(&index) => Event::Alias(index),
                    None => {
                        doc.error = Some(Error::at("unknown anchor", mark));
                        return doc;
                    }
                },
                ParserEvent::Scalar(value, style, anchor, tag) => {
                    if anchor != 0 {
                        anchors.insert(anchor, doc.events.len());
                    }
                    let style = match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                        ScalarStyle::Literal => Style::Literal,
                        ScalarStyle::Folded => Style::Folded,
                    };
                    let mark = scalar_mark(&mut chars, &span, style, value.is_empty()).unwrap_or(mark);
                    doc.events
                        .push((Event::Scalar(Scalar { value, style, tag: tag.map(|t| full_tag(&t)) }), mark));
                    continue;
                }
                ParserEvent::SequenceStart(anchor, tag) => {
                    if anchor != 0 {
                        anchors.insert(anchor, doc.events.len());
                    }
                    open.push(Open { mapping: false, start: mark });
                    Event::SequenceStart { tag: tag.map(|t| full_tag(&t)) }
                }
                ParserEvent::MappingStart(anchor, tag) => {
                    if anchor != 0 {
                        anchors.insert(anchor, doc.events.len());
                    }
                    open.push(Open { mapping: true, start: mark });
                    Event::MappingStart { tag: tag.map(|t| full_tag(&t)) }
                }
                ParserEvent::SequenceEnd => {
                    open.pop();
                    Event::SequenceEnd
                }
                ParserEvent::MappingEnd => {
                    open.pop();
                    Event::MappingEnd
                }
            };
            doc.events.push((event, mark));
        }
    }

    /// After the root value was read: the syntax error it did not reach, or a second
    /// document, are errors too.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.more_documents {
            return Err(serde::de::Error::custom(
                "deserializing from YAML containing more than one document is not supported",
            ));
        }
        Ok(())
    }
}

/// Where libyaml (and so serde_yaml) placed a scalar, when saphyr places it elsewhere: an
/// empty value right after its `:` (saphyr: on it), a block scalar at its `|` or `>`
/// indicator (saphyr: at its first line of content).
fn scalar_mark(chars: &mut CharCursor<'_>, span: &Span, style: Style, empty: bool) -> Option<Mark> {
    let start = chars.byte(span.start.index())?;
    match style {
        Style::Plain if empty && chars.text[start..].starts_with(':') => {
            Some(Mark { line: span.start.line(), column: span.start.col() + 2 })
        }
        Style::Literal | Style::Folded => {
            let before = &chars.text[..start];
            let indicator = before.rfind(['|', '>'])?;
            let line_start = before[..indicator].rfind('\n').map_or(0, |i| i + 1);
            let lines_between = before[indicator..].matches('\n').count();
            Some(Mark {
                line: span.start.line().checked_sub(lines_between)?,
                column: before[line_start..indicator].chars().count() + 1,
            })
        }
        _ => None,
    }
}

/// Byte offsets of character indexes, read forwards (as parser events come).
struct CharCursor<'t> {
    text: &'t str,
    /// A character index and its byte offset.
    at: (usize, usize),
}

impl<'t> CharCursor<'t> {
    fn new(text: &'t str) -> Self {
        CharCursor { text, at: (0, 0) }
    }

    /// The byte offset of character `index`, if the text has that many characters.
    fn byte(&mut self, index: usize) -> Option<usize> {
        if index < self.at.0 {
            self.at = (0, 0);
        }
        let (mut char_index, mut byte) = self.at;
        let mut rest = self.text.get(byte..)?.chars();
        while char_index < index {
            byte += rest.next()?.len_utf8();
            char_index += 1;
        }
        self.at = (char_index, byte);
        Some(byte)
    }
}

fn full_tag(tag: &Tag) -> String {
    format!("{}{}", tag.handle, tag.suffix)
}

/// A syntax error in libyaml's words where the parser's match them: the problem at its
/// position, then the collection being parsed and where it starts (the innermost open one).
fn syntax_error(e: &ScanError, open: &[Open]) -> Error {
    let mark = Mark::of(e.marker());
    let info = e.info();
    if info == "while parsing node, found unknown anchor" {
        return Error::at("unknown anchor", mark);
    }
    let Some((context, problem)) = info.strip_prefix("while ").and_then(|i| i.split_once(", ")) else {
        return Error::at(info, mark);
    };
    let mapping = match context.strip_prefix("parsing ") {
        Some("a block mapping" | "a flow mapping") => true,
        Some("a block collection" | "a flow sequence") => false,
        _ => return Error::at(format!("{problem}, while {context}"), mark),
    };
    match open.last() {
        Some(innermost) if innermost.mapping == mapping => {
            let problem = match problem.strip_prefix("expected ") {
                Some(rest) => format!("did not find expected {rest}"),
                None => problem.to_owned(),
            };
            let Mark { line, column } = innermost.start;
            Error::at(
                format!(
                    "{problem} at line {} column {}, while {context} at line {line} column {column}",
                    mark.line, mark.column
                ),
                mark,
            )
        }
        _ => Error::at(info, mark),
    }
}
