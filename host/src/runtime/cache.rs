//! The on-disk cache of compiled modules.
//!
//! Compiling a guest with Cranelift takes from tens of milliseconds to seconds;
//! loading the compiled artifact takes well under one. Artifacts are keyed by the
//! SHA-256 of the wasm bytes and of the engine's compatibility hash (wasmtime
//! version, target and every setting that changes generated code), so a changed
//! guest or a changed engine never loads a stale artifact.
//!
//! An artifact is native code that runs as it is, so the cache loads only entries
//! it wrote itself: each carries an HMAC-SHA256 tag made with a secret key kept
//! beside the entries (`seal`). An entry whose tag does not check out is logged,
//! deleted and compiled afresh; a directory other users can write, or a key file
//! that is not this user's private regular file, turns the cache off.

use anyhow::Context;
use seal::Key;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use wasmtime::{Engine, Module};

mod seal;

/// Where compiled modules are kept, or nowhere.
#[derive(Clone, Debug)]
pub struct ModuleCache {
    dir: Option<PathBuf>,
    /// The key that signs the entries, read or made on first use (shared by
    /// clones); `None` in it: the directory or the key was refused, no caching.
    key: Arc<OnceLock<Option<Key>>>,
}

/// Whether a module came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    /// Compiled: there was no entry, or none that could be trusted and loaded
    /// (that one is replaced).
    Miss,
    /// Compiled, with no cache: none was asked for, or it was refused.
    Disabled,
}

impl ModuleCache {
    /// A cache in `dir`, created (mode 0700) on first use.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
            key: Arc::default(),
        }
    }

    /// No cache: every start compiles.
    pub fn disabled() -> Self {
        Self {
            dir: None,
            key: Arc::default(),
        }
    }

    /// `$XDG_CACHE_HOME/wisp`, else `~/.cache/wisp`. (`WISP_CACHE_DIR` is the
    /// `--cache-dir` flag's environment variable, read with the other flags.)
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return Some(PathBuf::from(dir).join("wisp"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("wisp"))
    }

    /// The key for `dir`, or `None` (logged once) if the cache cannot be trusted.
    fn key(&self, dir: &Path) -> Option<&Key> {
        self.key
            .get_or_init(|| match Key::for_dir(dir) {
                Ok(key) => Some(key),
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), error = %format!("{error:#}"),
                        "module cache off: compiling every module");
                    None
                }
            })
            .as_ref()
    }

    /// Compiles `wasm`, or loads the artifact an earlier run left.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> anyhow::Result<(Module, CacheOutcome)> {
        let Some((dir, key)) = self
            .dir
            .as_deref()
            .and_then(|dir| Some((dir, self.key(dir)?)))
        else {
            return Ok((Module::new(engine, wasm)?, CacheOutcome::Disabled));
        };
        let name = format!("{}.cwasm", cache_key(engine, wasm));
        let path = dir.join(&name);
        match std::fs::read(&path) {
            Ok(entry) => match key.unseal(&name, &entry) {
                Some(artifact) => {
                    // SAFETY: the tag proves this cache wrote `artifact` (read into
                    // memory before the check, so it cannot change after it) with
                    // bytes from `precompile_module` below, under a name that
                    // includes the engine's compatibility hash; wasmtime still
                    // checks the header and refuses another engine's artifact.
                    match unsafe { Module::deserialize(engine, artifact) } {
                        Ok(module) => return Ok((module, CacheOutcome::Hit)),
                        Err(error) => {
                            tracing::warn!(file = %name, %error, "a cached module does not load; recompiling it");
                        }
                    }
                }
                None => {
                    tracing::warn!(file = %name, "a cached module fails its authentication check (planted, altered, truncated or from another key); deleting and recompiling it");
                    if let Err(error) = std::fs::remove_file(&path) {
                        tracing::warn!(file = %name, %error, "could not delete the cached module");
                    }
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(file = %name, %error, "cannot read a cached module; recompiling it");
            }
        }
        let artifact = engine.precompile_module(wasm)?;
        if let Err(error) = write_atomically(&path, &key.seal(&name, &artifact)) {
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
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
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
    use std::os::unix::fs::PermissionsExt;

    /// What `f` returns: four bytes easy to find in the compiled code.
    const MARK: i32 = 0x5eed_1e55;

    fn wasm_f() -> Vec<u8> {
        wat::parse_str(format!(
            r#"(module (func (export "f") (result i32) i32.const {MARK}))"#
        ))
        .expect("WAT")
    }

    fn call(engine: &Engine, module: &Module, export: &str) -> i32 {
        let mut store = wasmtime::Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, module, &[]).expect("instance");
        let f = instance
            .get_typed_func::<(), i32>(&mut store, export)
            .expect("export");
        f.call(&mut store, ()).expect("call")
    }

    /// The cache's one entry (its `.cwasm` file).
    fn entry(dir: &Path) -> PathBuf {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("cache dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries.remove(0)
    }

    use crate::abi::testing::logged;

    #[test]
    fn a_second_load_comes_from_the_cache_and_a_changed_module_does_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::default();
        let cache = ModuleCache::in_dir(dir.path());
        let wasm = wasm_f();
        let other = wat::parse_str(r#"(module (func (export "g") (param i32)))"#).expect("WAT");

        assert_eq!(
            cache.load(&engine, &wasm).expect("compile").1,
            CacheOutcome::Miss
        );
        let (module, outcome) = cache.load(&engine, &wasm).expect("load");
        assert_eq!(outcome, CacheOutcome::Hit);
        assert_eq!(call(&engine, &module, "f"), MARK);
        // A new process (a new cache value) reads the same key and hits too.
        let again = ModuleCache::in_dir(dir.path());
        assert_eq!(
            again.load(&engine, &wasm).expect("load").1,
            CacheOutcome::Hit
        );
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
        let wasm = wasm_f();
        cache.load(&engine, &wasm).expect("compile");
        std::fs::write(entry(dir.path()), b"garbage").expect("corrupt");
        let (_, outcome) = cache.load(&engine, &wasm).expect("recompile");
        assert_eq!(outcome, CacheOutcome::Miss);
        assert_eq!(
            cache.load(&engine, &wasm).expect("load").1,
            CacheOutcome::Hit
        );
    }

    #[test]
    fn an_entry_altered_by_one_byte_is_deleted_and_recompiled_not_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::default();
        let cache = ModuleCache::in_dir(dir.path());
        let wasm = wasm_f();
        cache.load(&engine, &wasm).expect("compile");
        let path = entry(dir.path());
        let good = std::fs::read(&path).expect("entry");
        // Alter the constant `f` returns in its machine code (where the target
        // encodes it whole, as x86-64 does), else a byte in the middle.
        let at = good
            .windows(4)
            .position(|w| w == MARK.to_le_bytes())
            .unwrap_or(good.len() / 2);
        let mut altered = good.clone();
        altered[at] ^= 1;
        std::fs::write(&path, &altered).expect("alter");

        let mut loaded = None;
        let log = logged(|| loaded = Some(cache.load(&engine, &wasm).expect("load")));
        let (module, outcome) = loaded.expect("loaded");
        assert_eq!(
            call(&engine, &module, "f"),
            MARK,
            "the altered native code ran"
        );
        assert_eq!(outcome, CacheOutcome::Miss, "the altered entry was loaded");
        let name = path.file_name().expect("name").to_string_lossy();
        assert!(
            log.contains("WARN") && log.contains(&*name),
            "no warning naming {name}: {log}"
        );
        // Deleted, then cached afresh.
        assert_ne!(std::fs::read(&path).expect("re-cached"), altered);
        let (module, outcome) = cache.load(&engine, &wasm).expect("load");
        assert_eq!(outcome, CacheOutcome::Hit);
        assert_eq!(call(&engine, &module, "f"), MARK);
    }

    #[test]
    fn a_planted_entry_with_a_wrong_tag_is_not_loaded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::default();
        let cache = ModuleCache::in_dir(dir.path());
        let wasm = wasm_f();
        cache.load(&engine, &wasm).expect("compile");
        let path = entry(dir.path());
        let good = std::fs::read(&path).expect("entry");

        // What an attacker would plant under `f`'s name: the entry's own framing
        // (whatever the cache puts before the artifact, its tag included) around
        // the artifact of another module, `g`, which returns something else.
        let own = engine.precompile_module(&wasm).expect("precompile f");
        assert!(good.ends_with(&own), "compilation is deterministic");
        let framing = &good[..good.len() - own.len()];
        let g = wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 666))"#)
            .expect("WAT");
        let mut planted = framing.to_vec();
        planted.extend_from_slice(&engine.precompile_module(&g).expect("precompile g"));
        std::fs::write(&path, &planted).expect("plant");

        let (module, outcome) = cache.load(&engine, &wasm).expect("load");
        assert_eq!(call(&engine, &module, "f"), MARK, "the planted code ran");
        assert_eq!(outcome, CacheOutcome::Miss, "the planted entry was loaded");
        assert_eq!(std::fs::read(&path).expect("re-cached"), good);
    }

    #[test]
    fn a_key_file_others_can_read_turns_the_cache_off() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("key");
        std::fs::write(&key, [1; 32]).expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let engine = Engine::default();
        let cache = ModuleCache::in_dir(dir.path());
        let wasm = wasm_f();
        for _ in 0..2 {
            let (module, outcome) = cache.load(&engine, &wasm).expect("compile");
            assert_eq!(outcome, CacheOutcome::Disabled);
            assert_eq!(call(&engine, &module, "f"), MARK);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("cache dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["key"], "nothing cached");
        assert_eq!(std::fs::read(&key).expect("key"), [1; 32], "key untouched");
    }

    #[test]
    fn a_cache_dir_others_can_write_turns_the_cache_off() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::default();
        let wasm = wasm_f();
        for mode in [0o770, 0o707, 0o777] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode))
                .expect("chmod");
            let cache = ModuleCache::in_dir(dir.path());
            assert_eq!(
                cache.load(&engine, &wasm).expect("compile").1,
                CacheOutcome::Disabled,
                "mode {mode:o}"
            );
            assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let cache = ModuleCache::in_dir(dir.path());
        assert_eq!(
            cache.load(&engine, &wasm).expect("compile").1,
            CacheOutcome::Miss
        );
    }

    #[test]
    fn a_missing_cache_dir_is_made_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache_dir = dir.path().join("a").join("b");
        let cache = ModuleCache::in_dir(&cache_dir);
        let engine = Engine::default();
        assert_eq!(
            cache.load(&engine, &wasm_f()).expect("compile").1,
            CacheOutcome::Miss
        );
        let mode = std::fs::metadata(&cache_dir)
            .expect("made")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }
}
