//! What the YAML layer reports: a message and, when known, where in the text.

use std::fmt;

/// A 1-based line and column (in characters) in the configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Mark {
    pub(crate) fn of(marker: &saphyr_parser::Marker) -> Mark {
        Mark { line: marker.line(), column: marker.col() + 1 }
    }
}

/// A YAML syntax error or a value that does not fit the model, as serde describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    pub(crate) message: String,
    pub(crate) mark: Option<Mark>,
}

impl Error {
    pub(crate) fn at(message: impl Into<String>, mark: Mark) -> Error {
        Error { message: message.into(), mark: Some(mark) }
    }

    /// The error, placed at `mark` unless an inner node already placed it: the position
    /// reported is the innermost node being read when the error arose.
    pub(crate) fn or_at(mut self, mark: Mark) -> Error {
        self.mark.get_or_insert(mark);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(Mark { line, column }) = self.mark {
            write!(f, " at line {line} column {column}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error { message: message.to_string(), mark: None }
    }
}
