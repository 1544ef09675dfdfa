//! A function ready to run: its module compiled once and its imports linked once.

use super::cache::{CacheOutcome, ModuleCache};
use super::state::HostState;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Engine, ExternType, FuncType, InstancePre, Linker, Module, ModuleExport, ValType};
use wisp_abi::imports::IMPORTS;

/// How a function's export returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportShape {
    /// `(i32) -> i32`, as TinyGo (Taubyte's Go SDK) exports it; the result is ignored.
    ReturnsI32,
    /// `(i32) -> ()`, as Taubyte's Rust SDK exports it.
    ReturnsNothing,
}

/// A guest's start-up export, run on every fresh instance before the call.
#[derive(Clone)]
pub enum Init {
    /// A reactor (`cdylib`, TinyGo `c-shared`): `_initialize`.
    Initialize(ModuleExport),
    /// A command module: `_start`; an exit with code 0 is not an error.
    Start(ModuleExport),
}

/// Everything needed to run one function per event.
pub struct GuestFunction {
    pub name: Arc<str>,
    pub call: String,
    pub export: ModuleExport,
    pub shape: ExportShape,
    pub init: Option<Init>,
    pub memory_export: Option<ModuleExport>,
    pub pre: InstancePre<HostState>,
    pub timeout: Duration,
    pub memory_limit: u64,
    /// The module's imports of Taubyte's SDK that Wisp does not provide (p2p, ethereum,
    /// ipfs, ...): linked as calls that trap, naming themselves, so the rest of the
    /// function still runs. `wisp check` lists them as warnings.
    pub stubbed: Vec<String>,
}

/// What the function spec asks of the module.
pub struct FunctionSpec<'a> {
    pub name: &'a str,
    pub call: &'a str,
    pub timeout: Duration,
    pub memory_limit: u64,
}

/// A problem with a function's wasm, found before serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmProblem {
    /// The YAML field the user should look at (`execution.call`, `source`, ...).
    pub field: &'static str,
    pub message: String,
}

impl WasmProblem {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Reads and compiles (or loads from the cache) the module at `path`.
pub fn compile(
    engine: &Engine,
    cache: &ModuleCache,
    path: &std::path::Path,
    shown_as: &str,
) -> Result<Module, WasmProblem> {
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => {
                " (build the function first, e.g. `wisp build`, or point `wisp.wasm` at the file)"
            }
            _ => "",
        };
        WasmProblem::new(
            "source",
            format!("cannot read wasm file {shown_as}: {e}{hint}"),
        )
    })?;
    let started = Instant::now();
    let (module, outcome) = cache.load(engine, &bytes).map_err(|e| {
        WasmProblem::new(
            "source",
            format!("{shown_as} is not a valid wasm module: {e:#}"),
        )
    })?;
    let how = match outcome {
        CacheOutcome::Hit => "loaded from cache",
        CacheOutcome::Miss => "compiled and cached",
        CacheOutcome::Disabled => "compiled",
    };
    tracing::info!(module = shown_as, elapsed = ?started.elapsed(), "{how}");
    Ok(module)
}

/// Checks the export and links the module, once, for every later event.
pub fn prepare(
    linker: &Linker<HostState>,
    module: &Module,
    spec: &FunctionSpec<'_>,
) -> Result<GuestFunction, WasmProblem> {
    let shape = export_shape(module, spec.call)?;
    let export = module.get_export_index(spec.call).ok_or_else(|| {
        WasmProblem::new(
            "execution.call",
            format!("export `{}` not found", spec.call),
        )
    })?;
    check_memory_minimum(module, spec.memory_limit)?;
    let stubbed = unprovided_imports(module);
    let pre = if stubbed.is_empty() {
        linker.instantiate_pre(module)
    } else {
        with_stubs(linker, &stubbed).and_then(|linker| linker.instantiate_pre(module))
    }
    .map_err(|e| WasmProblem::new("source", format!("cannot link the module: {e:#}")))?;
    let stubbed = stubbed.into_iter().map(|(name, _)| name).collect();
    let init = match (
        module.get_export_index("_initialize"),
        module.get_export_index("_start"),
    ) {
        (Some(init), _) => Some(Init::Initialize(init)),
        (None, Some(start)) => Some(Init::Start(start)),
        (None, None) => None,
    };
    Ok(GuestFunction {
        name: Arc::from(spec.name),
        call: spec.call.to_owned(),
        export,
        shape,
        init,
        memory_export: module.get_export_index("memory"),
        pre,
        timeout: spec.timeout,
        memory_limit: spec.memory_limit,
        stubbed,
    })
}

/// The module's function imports from `taubyte/sdk` that are not Wisp host calls. The
/// host defines exactly `wisp_abi`'s list (a test checks it), so the list decides.
fn unprovided_imports(module: &Module) -> Vec<(String, FuncType)> {
    module
        .imports()
        .filter(|import| import.module() == wisp_abi::SDK_MODULE)
        .filter(|import| {
            !IMPORTS
                .iter()
                .any(|known| known.module == import.module() && known.name == import.name())
        })
        .filter_map(|import| match import.ty() {
            ExternType::Func(ty) => Some((import.name().to_owned(), ty)),
            _ => None,
        })
        .collect()
}

/// `linker` with each of `stubs` defined as a call that traps with a message naming it.
fn with_stubs<T: 'static>(
    linker: &Linker<T>,
    stubs: &[(String, FuncType)],
) -> wasmtime::Result<Linker<T>> {
    let mut linker = linker.clone();
    for (name, ty) in stubs {
        let message = format!(
            "called `{}::{name}`, a Taubyte host call Wisp does not provide \
             (`wisp check` lists these per function)",
            wisp_abi::SDK_MODULE
        );
        linker.func_new(wisp_abi::SDK_MODULE, name, ty.clone(), move |_, _, _| {
            Err(wasmtime::Error::msg(message.clone()))
        })?;
    }
    Ok(linker)
}

fn export_shape(module: &Module, call: &str) -> Result<ExportShape, WasmProblem> {
    let Some(export) = module.get_export(call) else {
        let mut funcs: Vec<String> = module
            .exports()
            .filter(|e| matches!(e.ty(), ExternType::Func(_)) && !e.name().starts_with('_'))
            .map(|e| format!("`{}`", e.name()))
            .collect();
        funcs.sort();
        let known = if funcs.is_empty() {
            "it exports no functions".to_owned()
        } else {
            format!("it exports {}", funcs.join(", "))
        };
        return Err(WasmProblem::new(
            "execution.call",
            format!("the module has no export `{call}`; {known}"),
        ));
    };
    let ExternType::Func(ty) = export else {
        return Err(WasmProblem::new(
            "execution.call",
            format!("export `{call}` is not a function"),
        ));
    };
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    let is_i32 = |v: &ValType| matches!(v, ValType::I32);
    match (params.as_slice(), results.as_slice()) {
        ([p], []) if is_i32(p) => Ok(ExportShape::ReturnsNothing),
        ([p], [r]) if is_i32(p) && is_i32(r) => Ok(ExportShape::ReturnsI32),
        _ => Err(WasmProblem::new(
            "execution.call",
            format!("export `{call}` has type {ty}; expected (i32) -> i32 or (i32) -> ()"),
        )),
    }
}

fn check_memory_minimum(module: &Module, limit: u64) -> Result<(), WasmProblem> {
    for export in module
        .imports()
        .map(|i| i.ty())
        .chain(module.exports().map(|e| e.ty()))
    {
        if let ExternType::Memory(memory) = export {
            let minimum = memory.minimum().saturating_mul(memory.page_size());
            if minimum > limit {
                return Err(WasmProblem::new(
                    "execution.memory",
                    format!(
                        "the module needs at least {minimum} bytes of memory but execution.memory allows {limit}; raise it to at least `{}MB`",
                        minimum.div_ceil(1_000_000)
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stub_traps_with_a_message_naming_the_call() {
        let engine = Engine::default();
        let wat = r#"(module
            (import "taubyte/sdk" "ethereumNewClient" (func $eth (param i32 i32) (result i32)))
            (import "taubyte/sdk" "eventHttpWrite" (func (param i32 i32 i32 i32) (result i32)))
            (func (export "go") (result i32) (call $eth (i32.const 0) (i32.const 0))))"#;
        let module = Module::new(&engine, wat).unwrap();
        let stubs = unprovided_imports(&module);
        let names: Vec<&str> = stubs.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["ethereumNewClient"], "only what Wisp lacks");

        let mut linker = with_stubs(&Linker::new(&engine), &stubs).unwrap();
        linker
            .func_wrap(
                wisp_abi::SDK_MODULE,
                "eventHttpWrite",
                |_: i32, _: i32, _: i32, _: i32| 0,
            )
            .unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let go = instance
            .get_typed_func::<(), i32>(&mut store, "go")
            .unwrap();
        let error = go.call(&mut store, ()).unwrap_err();
        assert!(
            format!("{error:#}").contains(
                "called `taubyte/sdk::ethereumNewClient`, a Taubyte host call Wisp does not provide"
            ),
            "{error:#}"
        );
    }
}
