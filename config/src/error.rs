//! What can go wrong while loading a configuration, with the file, key path and expectation.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration that cannot be used, with every detail a reader needs to fix it.
#[derive(Debug)]
pub enum ConfigError {
    /// A file could not be read (the configuration itself or a file it names for loading).
    Read {
        /// The file.
        file: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// A `${VAR}` placeholder could not be expanded.
    Env {
        /// The file holding the placeholder.
        file: PathBuf,
        /// 1-based line of the `$`.
        line: usize,
        /// 1-based column (in characters) of the `$`.
        column: usize,
        /// What was wrong.
        kind: EnvErrorKind,
    },
    /// The file does not match the configuration model: syntax, types, unknown keys or
    /// semantic rules. Holds at least one problem.
    Invalid(Vec<Problem>),
    /// The configuration is valid, but uses features the engine cannot run yet
    /// (returned by [`crate::Config::to_core`]).
    Unsupported(Vec<Problem>),
}

/// Why a `${...}` placeholder could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvErrorKind {
    /// `${VAR}` without a default, and `VAR` is not set.
    Unset {
        /// The variable.
        var: String,
    },
    /// `${VAR}` without a default, and `VAR` is set to the empty string.
    Empty {
        /// The variable.
        var: String,
    },
    /// `${` that does not form `${NAME}` or `${NAME:default}`.
    Malformed {
        /// What was expected instead.
        reason: &'static str,
    },
}

/// One problem at one key of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the key is in.
    pub file: PathBuf,
    /// The key path, dotted and indexed (`upstream.bootstrap_servers[1]`); `.` for the top level.
    pub path: String,
    /// 1-based line and column, when the YAML parser reported one.
    pub position: Option<(usize, usize)>,
    /// What was expected and what was found.
    pub message: String,
}

/// Something that loads but deserves the operator's attention (an ignored section,
/// verification turned off, ...). `kafka-proxy` logs these at start and `check` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The key path the warning is about.
    pub path: String,
    /// What the operator should know.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(file: &Path, path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { file: file.to_path_buf(), path: path.into(), position: None, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        let path = if self.path == "." { "(top level)" } else { self.path.as_str() };
        write!(f, ": {path}: {}", self.message)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl fmt::Display for EnvErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvErrorKind::Unset { var } => {
                write!(f, "environment variable {var} is not set (write ${{{var}:default}} for a default)")
            }
            EnvErrorKind::Empty { var } => {
                write!(f, "environment variable {var} is empty (write ${{{var}:default}} for a default)")
            }
            EnvErrorKind::Malformed { reason } => write!(f, "{reason}"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { file, source } => write!(f, "{}: cannot read: {source}", file.display()),
            ConfigError::Env { file, line, column, kind } => {
                write!(f, "{}:{line}:{column}: {kind}", file.display())
            }
            ConfigError::Invalid(problems) => write_lines(f, problems),
            ConfigError::Unsupported(problems) => write_lines(f, problems),
        }
    }
}

fn write_lines(f: &mut fmt::Formatter<'_>, problems: &[Problem]) -> fmt::Result {
    for (i, problem) in problems.iter().enumerate() {
        if i > 0 {
            writeln!(f)?;
        }
        write!(f, "{problem}")?;
    }
    Ok(())
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Collects problems and warnings while a configuration is checked, so that one run
/// reports every independent mistake.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub(crate) file: &'a Path,
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<Warning>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(file: &'a Path) -> Report<'a> {
        Report { file, problems: Vec::new(), warnings: Vec::new() }
    }

    /// Records a problem at `path`.
    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(self.file, path, message));
    }

    /// Records a warning at `path`.
    pub(crate) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning { path: path.into(), message: message.into() });
    }
}
