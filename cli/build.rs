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

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rustc-env=KAFKA_PROXY_GIT_COMMIT={}", git_commit());
    println!("cargo:rustc-env=KAFKA_PROXY_BUILD_PROFILE={}", profile());
    for path in git_watch_paths() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
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
