//! `wisp build`: compiles guest crates named by `wisp.build` into their wasm paths.
//!
//! A function YAML may say where its source lives (`wisp: {build: ../my-guests}`).
//! Each distinct crate or workspace is built once with
//! `cargo build --release --target wasm32-wasip1`, and the artifact whose name matches
//! the function's wasm file (`artifacts/ping.wasm` ← `ping.wasm`) is copied there.
//! The wasm target is added with rustup first if it is missing.

use crate::project::Project;
use anyhow::{bail, Context};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target guests are built for.
pub const GUEST_TARGET: &str = "wasm32-wasip1";

/// Variables that would leak the host build's flags into a guest build.
const HOST_BUILD_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
];

/// What [`build_project`] did, one count per function that names `wisp.build`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BuildReport {
    /// Functions whose crate cargo compiled this time.
    pub built: usize,
    /// Functions whose crate was up to date in cargo but whose wasm file was missing or
    /// different, so it was copied again.
    pub copied: usize,
    /// Functions whose crate and wasm file were both up to date.
    pub up_to_date: usize,
    /// Functions not built because their `wisp.build` folder is not a crate: one warning
    /// each. Their wasm file is used as it is, as `wisp check` does.
    pub skipped: Vec<String>,
}

impl std::fmt::Display for BuildReport {
    /// `built 1, 3 up to date`; `nothing to build` when no function names `wisp.build`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.built > 0 {
            parts.push(format!("built {}", self.built));
        }
        if self.copied > 0 {
            parts.push(format!("copied {}", self.copied));
        }
        if self.up_to_date > 0 {
            parts.push(format!("{} up to date", self.up_to_date));
        }
        if !self.skipped.is_empty() {
            parts.push(format!("skipped {}", self.skipped.len()));
        }
        if parts.is_empty() {
            return f.write_str("nothing to build (no function names a wisp.build folder)");
        }
        f.write_str(&parts.join(", "))
    }
}

/// Why the `wisp.build` folder `dir` cannot be built, if it cannot: it is missing or
/// has no `Cargo.toml`.
pub fn unbuildable(dir: &Path) -> Option<String> {
    if !dir.is_dir() {
        return Some(format!("build folder {} does not exist", dir.display()));
    }
    if !dir.join("Cargo.toml").is_file() {
        return Some(format!(
            "build folder {} has no Cargo.toml (wisp.build must name a guest crate or workspace)",
            dir.display()
        ));
    }
    None
}

/// The warning for a function whose `wisp.build` folder cannot be built, if it has
/// one and it cannot.
pub fn skip_warning(function: &crate::project::Function) -> Option<String> {
    let why = unbuildable(function.build.as_deref()?)?;
    let warning = crate::project::Diagnostic::warning(
        function.file.clone(),
        None,
        "wisp.build",
        format!("{why}; not built, its wasm file is used as it is"),
    );
    Some(warning.to_string())
}

/// Builds every guest crate the project's functions name, and copies each artifact
/// to its function's wasm path. A function whose `wisp.build` folder is not a crate
/// is skipped with a warning in the report (its wasm file is served as it is, and a
/// missing one is `wisp check`'s error); a crate that fails to build is an error.
pub fn build_project(project: &Project) -> anyhow::Result<BuildReport> {
    // Group functions by build directory: one cargo run per crate or workspace.
    let mut by_dir: BTreeMap<&Path, Vec<&crate::project::Function>> = BTreeMap::new();
    let mut report = BuildReport::default();
    for function in &project.functions {
        let Some(dir) = &function.build else {
            continue;
        };
        if let Some(warning) = skip_warning(function) {
            report.skipped.push(warning);
            continue;
        }
        by_dir.entry(dir.as_path()).or_default().push(function);
    }
    if by_dir.is_empty() {
        return Ok(report);
    }
    ensure_target(GUEST_TARGET)?;
    for (dir, functions) in by_dir {
        let artifacts = build_artifacts(dir)?;
        for function in functions {
            let wanted = artifact_name(&function.wasm);
            let Some(artifact) = artifacts.get(&wanted) else {
                let mut built: Vec<&String> = artifacts.keys().collect();
                built.sort();
                bail!(
                    "function `{}`: building {} produced no `{wanted}.wasm` (it produced {built:?}); \
                     name the crate after the wasm file or set wisp.wasm",
                    function.name,
                    dir.display()
                );
            };
            if let Some(parent) = function.wasm.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let same = same_contents(&artifact.path, &function.wasm);
            if !same {
                install(&artifact.path, &function.wasm)?;
            }
            match (artifact.fresh, same) {
                (false, _) => report.built += 1,
                (true, false) => report.copied += 1,
                (true, true) => report.up_to_date += 1,
            }
        }
    }
    Ok(report)
}

/// Whether the files `a` and `b` both exist and hold the same bytes.
fn same_contents(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A wasm file cargo produced.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub path: PathBuf,
    /// Cargo found it up to date and compiled nothing for it.
    pub fresh: bool,
}

/// Copies `artifact` to `wasm` under a temporary name, then renames it into place, so
/// a server loading the project meanwhile never reads a half-written module.
fn install(artifact: &Path, wasm: &Path) -> anyhow::Result<()> {
    let tmp = wasm.with_extension(format!("wasm.tmp{}", std::process::id()));
    std::fs::copy(artifact, &tmp)
        .with_context(|| format!("copying {} to {}", artifact.display(), tmp.display()))?;
    std::fs::rename(&tmp, wasm)
        .with_context(|| format!("renaming {} to {}", tmp.display(), wasm.display()))?;
    Ok(())
}

/// `artifacts/my-func.wasm` → `my_func` (cargo writes crate names with underscores).
fn artifact_name(wasm: &Path) -> String {
    wasm.file_stem()
        .map(|s| s.to_string_lossy().replace('-', "_"))
        .unwrap_or_default()
}

/// Builds the crate or workspace in `dir` and returns its wasm artifacts by name.
pub fn build_crate(dir: &Path) -> anyhow::Result<HashMap<String, PathBuf>> {
    Ok(build_artifacts(dir)?
        .into_iter()
        .map(|(name, artifact)| (name, artifact.path))
        .collect())
}

/// [`build_crate`], saying of each artifact whether cargo found it up to date.
pub fn build_artifacts(dir: &Path) -> anyhow::Result<HashMap<String, Artifact>> {
    let manifest = dir.join("Cargo.toml");
    if let Some(why) = unbuildable(dir) {
        bail!("{why}");
    }
    eprintln!(
        "wisp: building guests in {} (cargo build --release --target {GUEST_TARGET})",
        dir.display()
    );
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args([
            "build",
            "--release",
            "--target",
            GUEST_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for var in HOST_BUILD_VARS {
        cargo.env_remove(var);
    }
    let output = cargo.output().context("running cargo (is it on PATH?)")?;
    if !output.status.success() {
        bail!(
            "building the guests in {} failed (see cargo's output above)",
            dir.display()
        );
    }
    let mut artifacts = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let fresh = message["fresh"].as_bool().unwrap_or(false);
        for file in message["filenames"].as_array().into_iter().flatten() {
            if let Some(path) = file.as_str().filter(|f| f.ends_with(".wasm")) {
                let path = PathBuf::from(path);
                artifacts.insert(artifact_name(&path), Artifact { path, fresh });
            }
        }
    }
    Ok(artifacts)
}

/// Adds `target` with rustup if the active toolchain lacks it.
pub fn ensure_target(target: &str) -> anyhow::Result<()> {
    match installed(target) {
        // No rustup: the toolchain was installed another way; let cargo report it.
        None | Some(true) => return Ok(()),
        Some(false) => {}
    }
    eprintln!("wisp: adding the {target} target (rustup target add {target})");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .context("running rustup")?;
    // Another build may have added it at the same moment, and rustup then fails on
    // its own lock: what counts is whether the target is there now.
    if !status.success() && installed(target) != Some(true) {
        bail!("`rustup target add {target}` failed; install the target and try again");
    }
    Ok(())
}

/// Whether rustup has `target` installed, or `None` without rustup.
fn installed(target: &str) -> Option<bool> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|l| l.trim() == target),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_use_underscores() {
        assert_eq!(
            artifact_name(Path::new("artifacts/my-func.wasm")),
            "my_func"
        );
        assert_eq!(artifact_name(Path::new("/x/ping.wasm")), "ping");
    }
}
