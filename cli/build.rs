//! Build facts for `kafka-proxy --version`: the git commit the binary was
//! built from and the cargo profile it was built with.
//!
//! `KAFKA_PROXY_GIT_COMMIT` is `git rev-parse --short=12 HEAD`, or "unknown"
//! outside a git checkout (a source tarball, a vendored crate).
//! `KAFKA_PROXY_BUILD_PROFILE` is the profile's name (`dev`, `release`,
//! `dist`, ...): cargo's `PROFILE` only says `debug` or `release` (what the
//! profile inherits from), so the name is read from the target directory
//! layout `<target>/<profile dir>/build/<pkg>-<hash>/out`, where the dev
//! profile's directory is `debug`.
//!
//! For the `dist` profile it also sets how the binary is linked (see
//! [`dist_link_args`]): the code that runs laid out first from
//! `symbol-order.txt`, a linker map beside the build output, and symbols
//! stripped unless `KAFKA_PROXY_KEEP_SYMBOLS=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The functions that run in a typical life of the proxy (start, produce,
/// consume, /metrics, idle; plaintext first, then what TLS adds), hottest
/// first; `scripts/symbol-order.py` writes it.
const SYMBOL_ORDER: &str = "symbol-order.txt";

fn main() {
    let profile = profile();
    println!("cargo:rustc-env=KAFKA_PROXY_GIT_COMMIT={}", git_commit());
    println!("cargo:rustc-env=KAFKA_PROXY_BUILD_PROFILE={profile}");
    for path in git_watch_paths() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={SYMBOL_ORDER}");
    println!("cargo:rerun-if-env-changed=KAFKA_PROXY_KEEP_SYMBOLS");
    println!("cargo:rerun-if-env-changed=KAFKA_PROXY_NO_SYMBOL_ORDER");
    if profile == "dist" {
        for arg in dist_link_args() {
            println!("cargo:rustc-link-arg-bin=kafka-proxy={arg}");
        }
    }
}

/// Link arguments of the shipped binary.
///
/// - `--symbol-ordering-file`: the kernel maps a binary's code in 64 KiB
///   windows around each page that runs (fault-around), so code that runs
///   scattered over the text keeps most of it resident; laid out first and
///   together it keeps about 1.4 MiB resident instead of 4 (bench/README.md,
///   memory). Names that no longer exist are skipped without a warning:
///   the layout only gets worse, and `scripts/symbol-order.py --check`
///   (run by the test suite) says when the file is stale.
/// - `-Map`: every symbol and where it went, also for the stripped binary;
///   what that check reads.
/// - `--strip-all` instead of the profile's `strip`: symbol names carry a
///   hash of the profile, so a symbolized twin for profiling must be built
///   with the very same profile (`KAFKA_PROXY_KEEP_SYMBOLS=1`).
///
/// The first two only for x86_64 Linux with rustc's default linker
/// (rust-lld): GNU ld has no `--symbol-ordering-file`. A linker chosen in
/// RUSTFLAGS or `CARGO_TARGET_*_LINKER` is seen here; one chosen in a
/// `.cargo/config.toml` is not, so `KAFKA_PROXY_NO_SYMBOL_ORDER=1` turns
/// both off by hand.
fn dist_link_args() -> Vec<String> {
    let mut args = Vec::new();
    let target = std::env::var("TARGET").unwrap_or_default();
    let custom_linker = std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("linker"))
        || std::env::vars().any(|(k, _)| k.starts_with("CARGO_TARGET_") && k.ends_with("_LINKER"));
    let opted_out = std::env::var("KAFKA_PROXY_NO_SYMBOL_ORDER").as_deref() == Ok("1");
    if target == "x86_64-unknown-linux-gnu" && !custom_linker && !opted_out {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default();
        let order = dir.join(SYMBOL_ORDER);
        if order.is_file() {
            args.push(format!("-Wl,--symbol-ordering-file={}", order.display()));
            args.push("-Wl,--no-warn-symbol-ordering".to_owned());
        }
        if let Some(out) = std::env::var_os("OUT_DIR") {
            args.push(format!("-Wl,-Map={}", Path::new(&out).join("kafka-proxy.map").display()));
        }
    }
    if std::env::var("KAFKA_PROXY_KEEP_SYMBOLS").as_deref() != Ok("1") {
        args.push("-Wl,--strip-all".to_owned());
    }
    args
}

/// Runs git in the package directory; its trimmed stdout when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn git_commit() -> String {
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
}

/// The files whose change means another commit: HEAD, the branch it points
/// to and packed-refs (a worktree's HEAD lives in its own git directory).
fn git_watch_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut add = |git_path: &str| {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", git_path]) {
            paths.push(PathBuf::from(p));
        }
    };
    add("HEAD");
    add("packed-refs");
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        add(&branch);
    }
    paths.retain(|p| p.exists());
    paths
}

fn profile() -> String {
    let from_layout = std::env::var_os("OUT_DIR").and_then(|out| profile_dir(Path::new(&out)));
    match from_layout.as_deref() {
        Some("debug") => "dev".to_owned(),
        Some(name) => name.to_owned(),
        None => std::env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned()),
    }
}

/// `<target>/<profile dir>/build/<pkg>-<hash>/out` -> `<profile dir>`.
fn profile_dir(out_dir: &Path) -> Option<String> {
    let build = out_dir.parent()?.parent()?;
    if build.file_name()? != "build" {
        return None;
    }
    Some(build.parent()?.file_name()?.to_str()?.to_owned())
}
