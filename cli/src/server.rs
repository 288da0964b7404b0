//! `kafka-proxy server [flags]`: the Go kafka-proxy's command line, run
//! unchanged. The flags come from the translation's table
//! (`kafka_proxy_config::goflags::FLAGS`, seed 002's help output), so the
//! help shows the Go names, kinds and defaults; only flags given on the
//! command line are translated.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use kafka_proxy_config::goflags::{FLAGS, FlagKind, GivenFlag, Translation, translate};
use kafka_proxy_config::{self as config, ConfigError};

/// The flags given to `kafka-proxy server`.
#[derive(Debug, Clone)]
pub(crate) struct ServerArgs {
    /// The Go flags, in table order, as given.
    pub(crate) given: Vec<GivenFlag>,
    /// Print the configuration the flags mean, and exit.
    pub(crate) print_config: bool,
}

const PRINT_CONFIG: &str = "print-config";

impl FromArgMatches for ServerArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = Vec::new();
        for spec in FLAGS {
            if matches.value_source(spec.name) != Some(clap::parser::ValueSource::CommandLine) {
                continue;
            }
            let values: Vec<String> =
                matches.get_many::<String>(spec.name).map(|v| v.cloned().collect()).unwrap_or_default();
            given.push(GivenFlag { name: spec.name.to_owned(), values });
        }
        Ok(ServerArgs { given, print_config: matches.get_flag(PRINT_CONFIG) })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ServerArgs {
    fn augment_args(cmd: Command) -> Command {
        let cmd = cmd.arg(
            Arg::new(PRINT_CONFIG)
                .long(PRINT_CONFIG)
                .action(ArgAction::SetTrue)
                .help("Print the kafka-proxy configuration (YAML) these flags mean, and exit"),
        );
        FLAGS.iter().fold(cmd, |cmd, spec| {
            let help = match spec.default {
                Some(d) => format!("{} (default \"{d}\")", spec.help),
                None => spec.help.to_owned(),
            };
            let arg = Arg::new(spec.name).long(spec.name).help(help).action(ArgAction::Append);
            let arg = match spec.kind {
                // pflag: `--flag` or `--flag=false`, never a separate value.
                FlagKind::Bool => {
                    arg.num_args(0..=1).require_equals(true).default_missing_value("true").value_name("bool")
                }
                kind => arg.num_args(1).value_name(kind.value_name()).allow_hyphen_values(true),
            };
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// The configuration the flags mean, loaded as a file in the working
/// directory would be; errors name the flag behind each key.
pub(crate) fn load(args: &ServerArgs) -> Result<(config::Config, Translation), String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let translation = translate(&args.given, &cwd).map_err(|e| e.to_string())?;
    let path = cwd.join("kafka-proxy-server-flags.yaml");
    let loaded = config::load_str(&translation.yaml, &path, config::process_env);
    loaded.map(|c| (c, translation.clone())).map_err(|e| explain(&e, &translation, &path))
}

/// Each problem of `error`, with the flag its key came from.
pub(crate) fn explain(error: &ConfigError, translation: &Translation, path: &Path) -> String {
    let problems = match error {
        ConfigError::Invalid(p) | ConfigError::Unsupported(p) => p,
        other => return other.to_string(),
    };
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            let text = p.to_string().replace(&format!("{}: ", path.display()), "");
            match translation.flag_for(&p.path) {
                Some(flag) => format!("{text} (from --{flag})"),
                None => text,
            }
        })
        .collect();
    lines.join("\n")
}
