//! `kafka-proxy`: put it in front of a Kafka cluster and point clients at it.

mod certs;

use kafka_proxy_config as config;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use clap::{Parser, Subcommand, ValueEnum};
use kafka_proxy_core::proxy::Proxy;
use kafka_proxy_core::sasl::oauthbearer::Sources;
use kafka_proxy_oauth::Fetchers;
use kafka_proxy_runtime::{Control, RunOptions, Telemetry};
use kafka_proxy_sys::{malloc, signals};
use tracing::{error, info, warn};

const ABOUT: &str = "A Kafka proxy: clients connect to it as if it were the cluster.";

/// What `--version` prints after the name: the crate version, the git commit
/// and the cargo profile the binary was built from (see build.rs), so a
/// running replica can be traced to its source and build.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KAFKA_PROXY_GIT_COMMIT"),
    ", profile ",
    env!("KAFKA_PROXY_BUILD_PROFILE"),
    ")"
);

const LONG_ABOUT: &str = "\
A Kafka proxy: clients connect to it as if it were the Kafka cluster, and it
connects to the real brokers. It rewrites every broker address the cluster
hands out so clients keep coming back through the proxy, and passes every
other byte through untouched.

Quick start:
  kafka-proxy check --config config.yaml     validate a configuration and show its listeners
  kafka-proxy --config config.yaml           run (tokio runtime)
  kafka-proxy --config config.yaml --runtime mio

Ready-made configurations are in config-templates/. Logs go to stderr; set
RUST_LOG (e.g. RUST_LOG=debug or RUST_LOG=kafka_proxy_core=trace) to change
what is logged.";

#[derive(Debug, Parser)]
#[command(name = "kafka-proxy", version = VERSION, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    /// The configuration file.
    #[arg(long, short = 'c', global = true, default_value = "config.yaml", value_name = "FILE")]
    config: PathBuf,

    /// The I/O runtime: tokio (multi-threaded) or mio (one epoll loop, lowest overhead).
    /// Overrides `runtime:` in the configuration.
    #[arg(long, value_enum, value_name = "RUNTIME")]
    runtime: Option<RuntimeKind>,

    /// Write a CA, a server certificate (SANs *.SUFFIX, SUFFIX, localhost) and two client
    /// certificates into --out-dir: ca.pem, server.pem, server_key.pem, client1.pem,
    /// client1_key.pem, client2.pem, client2_key.pem.
    #[arg(long, requires = "sni_suffix", conflicts_with = "save_ca_certs")]
    generate_certs: bool,

    /// The domain the generated server certificate covers (with --generate-certs).
    #[arg(long, value_name = "SUFFIX", requires = "generate_certs")]
    sni_suffix: Option<String>,

    /// Connect to --server over TLS and write the issuer chain it presents to server_ca.pem
    /// (or --out), for `upstream.tls.ca_certs`.
    #[arg(long, requires = "server")]
    save_ca_certs: bool,

    /// The TLS server to read certificates from (host:port, with --save-ca-certs).
    #[arg(long, value_name = "HOST:PORT", requires = "save_ca_certs")]
    server: Option<String>,

    /// Where --generate-certs writes its files.
    #[arg(long, value_name = "DIR", default_value = ".")]
    out_dir: PathBuf,

    /// Where --save-ca-certs writes the chain.
    #[arg(long, value_name = "FILE", default_value = certs::SERVER_CA_FILE)]
    out: PathBuf,

    /// Overwrite existing files (the certificate tools never do otherwise).
    #[arg(long)]
    force: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (the default when no command is given).
    Run,
    /// Validate the configuration, print the listeners and routes it implies, and exit.
    Check,
    /// Turn a password into pre-computed SCRAM credentials for `downstream.credentials.users`,
    /// so no plaintext password needs to be stored. The password is read from the first line
    /// of standard input (or from the environment variable named by --password-env).
    ScramCredentials {
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (SCRAM-256 / SCRAM-512 accepted).
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
        /// PBKDF2 iterations (at least 4096).
        #[arg(long, default_value_t = 4096)]
        iterations: u32,
        /// Print the entry nested under this user name.
        #[arg(long)]
        user: Option<String>,
        /// Read the password from this environment variable instead of standard input.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RuntimeKind {
    Tokio,
    Mio,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.generate_certs {
        return generate_certs(&cli.out_dir, cli.sni_suffix.as_deref().unwrap_or_default(), cli.force);
    }
    if cli.save_ca_certs {
        return save_ca_certs(cli.server.as_deref().unwrap_or_default(), &cli.out, cli.force);
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => check(&cli.config),
        Command::ScramCredentials { mechanism, iterations, user, password_env } => {
            scram_credentials(&mechanism, iterations, user.as_deref(), password_env.as_deref())
        }
        Command::Run => run(&cli.config, cli.runtime),
    }
}

/// Loads and converts the configuration, its JWKS and token stores taken
/// from `sources`; errors are printed and become the exit code.
fn load(
    path: &Path,
    sources: &Sources,
) -> Result<(config::Config, kafka_proxy_core::config::ProxyConfig), ExitCode> {
    let loaded = config::load(path, config::process_env).and_then(|c| {
        let core = c.to_core_with(sources)?;
        Ok((c, core))
    });
    loaded.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn scram_credentials(
    mechanism: &str,
    iterations: u32,
    user: Option<&str>,
    password_env: Option<&str>,
) -> ExitCode {
    let Some(mechanism) = config::parse_scram_mechanism(mechanism) else {
        eprintln!("error: --mechanism: expected SCRAM-SHA-256 or SCRAM-SHA-512, got {mechanism:?}");
        return ExitCode::from(2);
    };
    let password = match password_env {
        Some(var) => match std::env::var(var) {
            Ok(p) if !p.is_empty() => p,
            _ => {
                eprintln!("error: --password-env: environment variable {var} is not set or empty");
                return ExitCode::from(2);
            }
        },
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("error: cannot read the password from standard input: {e}");
                return ExitCode::from(2);
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        eprintln!("error: the password is empty");
        return ExitCode::from(2);
    }
    let yaml = match user {
        Some(user) => config::scram_credentials_entry(user, mechanism, &password, iterations),
        None => config::scram_credentials(mechanism, &password, iterations),
    };
    match yaml {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn generate_certs(dir: &Path, suffix: &str, force: bool) -> ExitCode {
    match certs::generate_certs(dir, suffix, force) {
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn save_ca_certs(server: &str, out: &Path, force: bool) -> ExitCode {
    match certs::save_ca_certs(server, out, force) {
        Ok(saved) => {
            if let Some(e) = &saved.handshake_failed {
                eprintln!(
                    "warning: the TLS handshake did not complete ({e}); the chain was read before that"
                );
            }
            if saved.self_signed_leaf {
                eprintln!(
                    "warning: {server} presented only a self-signed certificate; trusting it pins that exact certificate"
                );
            }
            for subject in &saved.subjects {
                println!("saved {subject}");
            }
            println!("wrote {}", saved.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and converts the configuration for a reload, as one error line;
/// its JWKS and token stores are shared with the running configuration's
/// where the endpoints are the same, and new ones are fetched before it applies.
fn load_quiet(
    path: &Path,
    fetchers: &Fetchers,
) -> Result<kafka_proxy_core::config::ProxyConfig, config::ConfigError> {
    let config = config::load(path, config::process_env)?;
    for w in &config.warnings {
        warn!("{w}");
    }
    let core = config.to_core_with(fetchers.sources())?;
    fetchers.sync();
    Ok(core)
}

fn check(path: &Path) -> ExitCode {
    match load(path, &Sources::new()) {
        Ok((config, _)) => {
            for warning in &config.warnings {
                println!("warning: {warning}");
            }
            println!("{}: OK", path.display());
            println!("{}", config.describe().trim_end());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Starts the admin endpoint (`admin.bind`): metrics, health, readiness.
fn start_admin(
    admin: &config::Admin,
    runtime: RuntimeKind,
    reuse_port: bool,
) -> Result<std::sync::Arc<Telemetry>, ExitCode> {
    use std::net::ToSocketAddrs;
    let runtime = match runtime {
        RuntimeKind::Tokio => "tokio",
        RuntimeKind::Mio => "mio",
    };
    let telemetry = Telemetry::new(env!("CARGO_PKG_VERSION"), runtime);
    let addr = (admin.bind.host.as_str(), admin.bind.port).to_socket_addrs().map(|mut a| a.next());
    let addr = match addr {
        Ok(Some(addr)) => addr,
        Ok(None) | Err(_) => {
            error!(bind = %admin.bind, "admin.bind: cannot resolve the address");
            return Err(ExitCode::FAILURE);
        }
    };
    match kafka_proxy_admin::start(addr, reuse_port, telemetry.clone()) {
        Ok(_) => Ok(telemetry),
        Err(e) => {
            error!(bind = %admin.bind, "admin.bind: cannot listen: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Logs to stderr: `RUST_LOG` if set, else `logging.level`; text or JSON.
fn init_logging(logging: &config::Logging) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&logging.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match logging.format {
        config::LogFormat::Json => builder.json().init(),
        config::LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn run(path: &Path, runtime: Option<RuntimeKind>) -> ExitCode {
    malloc::tune();
    if let Err(e) = signals::block() {
        eprintln!("error: cannot block termination signals: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = malloc::start_trimmer() {
        eprintln!("warning: cannot start the allocator trimmer: {e}");
    }
    // JWKS keys and OAUTHBEARER tokens come from HTTPS endpoints, fetched
    // off the data path; one store per endpoint for the whole process.
    let fetchers = Arc::new(Fetchers::new(Arc::new(Sources::new())));
    let (config, core) = match load(path, fetchers.sources()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    init_logging(&config.logging);
    for w in &config.warnings {
        warn!("{w}");
    }
    let runtime = runtime.unwrap_or(match config.runtime {
        config::RuntimeKind::Tokio => RuntimeKind::Tokio,
        config::RuntimeKind::Mio => RuntimeKind::Mio,
    });
    info!(config = %path.display(), ?runtime, version = VERSION, "starting kafka-proxy");
    // First fetches of JWKS keys and OAUTHBEARER tokens, before any client is served.
    fetchers.sync();
    let drain_timeout = core.limits.drain_timeout;
    let telemetry = match &config.admin {
        Some(admin) => match start_admin(admin, runtime, core.socket.reuse_port) {
            Ok(telemetry) => Some(telemetry),
            Err(code) => return code,
        },
        None => None,
    };
    let proxy = Proxy::new(core, Instant::now(), SystemTime::now());
    let control = Control::new();
    // SIGTERM / SIGINT: drain (a second one exits at once). SIGHUP: the
    // configuration file is read again; what can change without a restart
    // (credentials, keys, certificates, TLS/SASL, limits, resolve) applies to
    // new connections.
    let path_buf = path.to_path_buf();
    let steer = control.clone();
    let reload_fetchers = fetchers.clone();
    let observed = telemetry.clone();
    let handled = signals::handle(move |signal| match signal {
        signals::Signal::Terminate(signal) => {
            info!(
                signal,
                drain_timeout_ms = drain_timeout.as_millis() as u64,
                "termination signal: draining"
            );
            if let Some(telemetry) = &observed {
                // /ready turns 503 before the runtime even wakes up.
                telemetry.status().set_draining();
            }
            steer.drain(drain_timeout);
        }
        signals::Signal::Reload => {
            info!("SIGHUP: reloading the configuration");
            match load_quiet(&path_buf, &reload_fetchers) {
                Ok(core) => steer.reload(core),
                Err(e) => {
                    if let Some(telemetry) = &observed {
                        telemetry.reload_failed();
                    }
                    error!("configuration reload failed, keeping the running one: {e}")
                }
            }
        }
    });
    if let Err(e) = handled {
        eprintln!("error: cannot start the signal thread: {e}");
        return ExitCode::FAILURE;
    }
    let options = RunOptions { telemetry, ..RunOptions::default() };
    let result = match runtime {
        RuntimeKind::Tokio => kafka_proxy_tokio::run(proxy, &options, &control),
        RuntimeKind::Mio => kafka_proxy_mio::run(proxy, &options, &control),
    };
    match result {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
