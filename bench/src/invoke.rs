//! Figure 1a: what one HTTP invocation costs with no network in the way.
//!
//! Loads a project as `wisp serve` does and runs one HTTP function back to back, in this
//! process: the request's parts in, the finished response out, through the same runtime the
//! server uses (invocation slot, fresh Store, instantiate, initialise, call, drop). Beside it,
//! with the same engine and the same compiled module, the floor wasmtime itself sets: a
//! Store, an instance from the pool, and dropping both, with nothing called. What lies
//! between the two is Wisp's own work per event; the floor is what no host code can remove.
//!
//! `--events`, `--only` and `--instances` make the loops countable under valgrind's
//! callgrind (fixed work, one loop at a time, a pool small enough for valgrind to reserve):
//! the instructions an event costs are the difference between two runs with different
//! `--events`, divided by the difference (see bench/notes.md).

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args as ClapArgs;
use http_body_util::{BodyExt, Empty};
use serde_json::{json, Value};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wisp::abi::http_event::HttpEvent;
use wisp::abi::EventData;
use wisp::load::LoadOptions;
use wisp::messaging::broker::LocalBroker;
use wisp::runtime::cache::ModuleCache;
use wisp::runtime::deployment::InvocationLimits;
use wisp::runtime::function::GuestFunction;
use wisp::server::{App, ServerConfig};

#[derive(ClapArgs)]
pub struct Args {
    /// The project to load
    #[arg(long, default_value = "bench/project")]
    project: PathBuf,
    /// The HTTP function to invoke (its name in config/functions)
    #[arg(long, default_value = "hello")]
    function: String,
    /// Seconds to measure each of the two loops
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Run exactly this many events per loop after the warm-up, instead of `--duration`
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    events: Option<u64>,
    /// Run one loop only
    #[arg(long, value_enum)]
    only: Option<Loop>,
    /// Pool slots (instances alive at once); valgrind cannot reserve the served
    /// default's address space
    #[arg(long, default_value_t = InvocationLimits::default().concurrent as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    instances: u64,
}

/// The two loops this command times.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Loop {
    /// Wisp's whole invocation
    Wisp,
    /// wasmtime's per-event floor
    Floor,
}

/// When a loop stops.
#[derive(Clone, Copy)]
enum Until {
    Elapsed(Duration),
    Events(u64),
}

/// Events per timing batch: enough that reading the clock costs nothing.
const BATCH: u32 = 1_000;

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let invocations = InvocationLimits {
        concurrent: usize::try_from(args.instances).context("--instances is too large")?,
        ..Default::default()
    };
    let (app, index) = load_function(&args.project, &args.function, invocations)?;
    let hub = app.hub();
    let deployment = hub.deployment();
    let until = match args.events {
        Some(events) => Until::Events(events),
        None => Until::Elapsed(Duration::from_secs_f64(args.duration)),
    };
    let runs = |which| args.only.is_none_or(|only| only == which);

    // The request's head is built once, and each event gets a copy (its target and headers
    // are shared, not parsed again): the loop times the invocation, not the benchmark's own
    // request building.
    let head = hyper::Request::get(format!("/{}", args.function))
        .header(hyper::header::HOST, "bench")
        .body(())
        .context("building the benchmark's request")?
        .into_parts()
        .0;
    let invoke_once = || invoke_http(&app, index, &head);
    let mut result = json!({ "function": args.function });
    if runs(Loop::Wisp) {
        let wisp = Timing::measure(until, invoke_once).await?;
        result["wisp_invocation_us"] = json!(wisp.per_event_us());
        result["wisp_invocations"] = json!(wisp.events);
    }
    if runs(Loop::Floor) {
        let floor = Floor::new(&deployment.functions[index])?;
        let instantiate_once = || async { floor.once() };
        let floor = Timing::measure(until, instantiate_once).await?;
        result["wasmtime_instance_us"] = json!(floor.per_event_us());
        result["wasmtime_instances"] = json!(floor.events);
    }
    Ok(result)
}

/// Runs HTTP function `index` of `app` once on a request with `head`'s target and headers
/// and an empty body, as the server would; an answer other than 2xx is an error.
pub async fn invoke_http(
    app: &Arc<App>,
    index: usize,
    head: &hyper::http::request::Parts,
) -> anyhow::Result<()> {
    let mut parts = hyper::Request::new(()).into_parts().0;
    parts.uri = head.uri.clone();
    parts.headers = head.headers.clone();
    let (flush_tx, _flush_rx) = tokio::sync::oneshot::channel();
    let body = Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    let event = HttpEvent::new(parts, body, app.config.http, flush_tx);
    match app
        .hub()
        .deployment()
        .invoke_http(app.hub().clone(), index, EventData::Http(Box::new(event)))
        .await
    {
        Ok(EventData::Http(http)) => match http.response.finish().await {
            Some(response) if response.status().is_success() => Ok(()),
            Some(response) => bail!("the function answered {}", response.status()),
            None => bail!("the function flushed; pick one that answers in one piece"),
        },
        Ok(_) => bail!("the invocation handed back another kind of event"),
        Err(error) => bail!("the function failed: {error}"),
    }
}

/// Loads `project` as `wisp serve` does and finds its function `function`.
pub fn load_function(
    project: &Path,
    function: &str,
    invocations: InvocationLimits,
) -> anyhow::Result<(Arc<App>, usize)> {
    let options = LoadOptions {
        invocations,
        cache: ModuleCache::disabled(),
    };
    let loaded = wisp::load::load(project, &options)
        .with_context(|| format!("loading {}", project.display()))?;
    // State in a folder of this run's own, as a fresh `wisp serve` would have it.
    let data = std::env::temp_dir().join(format!("wisp-bench-{}", std::process::id()));
    let app = App::start(
        loaded,
        Arc::new(LocalBroker::new()),
        Arc::new(wisp::state::sqlite::Sqlite::in_dir(&data)),
        ServerConfig::default(),
    );
    let Some(index) = app
        .hub()
        .deployment()
        .functions
        .iter()
        .position(|f| *f.name == *function)
    else {
        bail!("{} has no function `{function}`", project.display());
    };
    Ok((app, index))
}

/// The least any host on this wasmtime pays per event for a function: a new Store, an
/// instance of the function's module from Wisp's engine and pool, one page of its memory
/// written (any guest that runs writes at least its stack), and both dropped. Nothing is
/// called: the imports are traps.
pub struct Floor {
    pre: wasmtime::InstancePre<()>,
    memory: Option<wasmtime::ModuleExport>,
}

impl Floor {
    pub fn new(function: &GuestFunction) -> anyhow::Result<Self> {
        let module = function.pre.module();
        let mut linker = wasmtime::Linker::new(module.engine());
        linker.define_unknown_imports_as_traps(module)?;
        Ok(Self {
            pre: linker.instantiate_pre(module)?,
            memory: function.memory_export,
        })
    }

    pub fn once(&self) -> anyhow::Result<()> {
        let mut store = wasmtime::Store::new(self.pre.module().engine(), ());
        let instance = self.pre.instantiate(&mut store)?;
        let memory = self
            .memory
            .as_ref()
            .and_then(|export| instance.get_module_export(&mut store, export))
            .and_then(wasmtime::Extern::into_memory);
        if let Some(last) = memory.and_then(|m| m.data_mut(&mut store).last_mut()) {
            *last = 1;
        }
        Ok(())
    }
}

/// Time spent over a number of events.
struct Timing {
    elapsed: Duration,
    events: u64,
}

impl Timing {
    /// Runs `once` for a warm-up (the pool slot, the allocator, the caches), then in
    /// batches until `until`.
    async fn measure<F, Fut>(until: Until, once: F) -> anyhow::Result<Self>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        for _ in 0..BATCH * 10 {
            once().await?;
        }
        let mut timing = Timing {
            elapsed: Duration::ZERO,
            events: 0,
        };
        loop {
            let batch = match until {
                Until::Elapsed(duration) if timing.elapsed < duration => u64::from(BATCH),
                Until::Events(events) if timing.events < events => {
                    (events - timing.events).min(u64::from(BATCH))
                }
                _ => return Ok(timing),
            };
            let started = Instant::now();
            for _ in 0..batch {
                once().await?;
            }
            timing.elapsed += started.elapsed();
            timing.events += batch;
        }
    }

    fn per_event_us(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.events as f64
    }
}
