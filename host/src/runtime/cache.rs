//! The on-disk cache of compiled modules.
//!
//! Compiling a guest with Cranelift takes from tens of milliseconds to seconds;
//! loading the compiled artifact takes well under one. Artifacts are keyed by the
//! SHA-256 of the wasm bytes and of the engine's compatibility hash (wasmtime
//! version, target and every setting that changes generated code), so a changed
//! guest or a changed engine never loads a stale artifact.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// Where compiled modules are kept, or nowhere.
#[derive(Clone, Debug)]
pub struct ModuleCache {
    dir: Option<PathBuf>,
}

/// Whether a module came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    Disabled,
}

impl ModuleCache {
    /// A cache in `dir`, created on first write.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
        }
    }

    /// No cache: every start compiles.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// `$XDG_CACHE_HOME/wisp`, else `~/.cache/wisp`. (`WISP_CACHE_DIR` is the
    /// `--cache-dir` flag's environment variable, read with the other flags.)
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return Some(PathBuf::from(dir).join("wisp"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("wisp"))
    }

    /// Compiles `wasm`, or loads the artifact an earlier run left.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> anyhow::Result<(Module, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Module::new(engine, wasm)?, CacheOutcome::Disabled));
        };
        let path = dir.join(format!("{}.cwasm", cache_key(engine, wasm)));
        if path.exists() {
            // SAFETY: the file was written by `precompile_module` below, into a
            // directory only Wisp writes, under a key that includes the engine's
            // compatibility hash; wasmtime still checks the header and refuses an
            // artifact from another engine configuration.
            match unsafe { Module::deserialize_file(engine, &path) } {
                Ok(module) => return Ok((module, CacheOutcome::Hit)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "ignoring an unreadable cached module")
                }
            }
        }
        let artifact = engine.precompile_module(wasm)?;
        if let Err(error) = write_atomically(dir, &path, &artifact) {
            tracing::warn!(dir = %dir.display(), %error, "could not write the module cache; continuing without it");
        }
        // SAFETY: `artifact` was produced just now by this engine.
        let module = unsafe { Module::deserialize(engine, &artifact)? };
        Ok((module, CacheOutcome::Miss))
    }
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut engine_hash = Sha256Hasher(Sha256::new());
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let mut digest = Sha256::new();
    digest.update(wasm);
    digest.update(engine_hash.0.finalize());
    hex::encode(digest.finalize())
}

/// Writes to a temporary name and renames, so a crash or a concurrent writer never
/// leaves a half-written artifact under the real name.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Feeds `Hash` output into SHA-256, so the key is stable across processes
/// (std's `DefaultHasher` is not guaranteed to be).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    /// Never called: only the SHA-256 digest is read.
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_load_comes_from_the_cache_and_a_changed_module_does_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::default();
        let cache = ModuleCache::in_dir(dir.path());
        let wasm = wat::parse_str(r#"(module (func (export "f") (param i32)))"#).expect("WAT");
        let other = wat::parse_str(r#"(module (func (export "g") (param i32)))"#).expect("WAT");

        assert_eq!(
            cache.load(&engine, &wasm).expect("compile").1,
            CacheOutcome::Miss
        );
        let (module, outcome) = cache.load(&engine, &wasm).expect("load");
        assert_eq!(outcome, CacheOutcome::Hit);
        assert!(module.get_export("f").is_some());
        assert_eq!(
            cache.load(&engine, &other).expect("compile").1,
            CacheOutcome::Miss
        );

        // Another engine configuration never reads this engine's artifacts.
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine2 = Engine::new(&config).expect("engine");
        assert_eq!(
            cache.load(&engine2, &wasm).expect("compile").1,
            CacheOutcome::Miss
        );
    }

    #[test]
    fn a_corrupt_artifact_is_recompiled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::default();
        let cache = ModuleCache::in_dir(dir.path());
        let wasm = wat::parse_str(r#"(module (func (export "f") (param i32)))"#).expect("WAT");
        cache.load(&engine, &wasm).expect("compile");
        for entry in std::fs::read_dir(dir.path()).expect("cache dir") {
            std::fs::write(entry.expect("entry").path(), b"garbage").expect("corrupt");
        }
        let (_, outcome) = cache.load(&engine, &wasm).expect("recompile");
        assert_eq!(outcome, CacheOutcome::Miss);
        assert_eq!(
            cache.load(&engine, &wasm).expect("load").1,
            CacheOutcome::Hit
        );
    }
}
