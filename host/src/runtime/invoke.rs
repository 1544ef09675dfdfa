//! Running one event: a fresh Store, instantiate, initialise, call.

use super::function::{ExportShape, GuestFunction, Init};
use super::limits::{LimitHit, MemoryLimiter};
use super::state::HostState;
use crate::abi::{AbiState, EventData, GuestEnv};
use futures_util::future::poll_immediate;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use wasmtime::{Engine, Extern, Func, Instance, Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;

/// Slack past `execution.timeout` before the host abandons an invocation stuck in a
/// host call (the epoch deadline stops guest code itself on time).
const DEADLINE_GRACE: Duration = Duration::from_millis(100);

/// Event ids handed to guests; unique per process so logs can tell events apart.
static NEXT_EVENT_ID: AtomicU32 = AtomicU32::new(1);

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("trapped: {0}")]
    Trap(String),
    /// A Rust guest's panic (a trap its stderr explained): the message and place.
    #[error("panicked at {0}")]
    Panic(String),
    #[error("ran past its {0:?} timeout")]
    Deadline(Duration),
    #[error("exceeded its memory limit of {0} bytes")]
    MemoryLimit(u64),
    #[error("exited with code {0}")]
    Exit(i32),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("every invocation slot stayed busy")]
    Busy,
}

fn next_event_id() -> u32 {
    loop {
        let id = NEXT_EVENT_ID.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// Runs `function` on `event` in a fresh Store and hands the event back, with
/// whatever the guest wrote into it.
pub async fn invoke(
    engine: &Engine,
    function: &GuestFunction,
    event: EventData,
    env: GuestEnv,
) -> Result<EventData, InvokeError> {
    let deadline = Instant::now() + function.timeout;
    let event_id = next_event_id();
    let state = HostState {
        wasi: None,
        panic: Default::default(),
        limiter: MemoryLimiter::new(function.memory_limit),
        abi: AbiState {
            memory: None,
            event_id,
            event,
            function: function.name.clone(),
            deadline,
            env,
            stores: Default::default(),
            http_clients: Default::default(),
        },
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().abi.deadline {
            Err(LimitHit::Deadline.into())
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });

    // Most events finish in the first poll, without ever waiting on a host call: only
    // one that waits needs the timer (and pays for its entry in the timer wheel).
    let outcome = {
        let mut run = pin!(run_guest(&mut store, function, event_id));
        match poll_immediate(run.as_mut()).await {
            Some(result) => Ok(result),
            None => tokio::time::timeout_at((deadline + DEADLINE_GRACE).into(), run).await,
        }
    };
    let result = match outcome {
        Err(_elapsed) => Err(InvokeError::Deadline(function.timeout)),
        Ok(Err(error)) => match (classify(error, function), store.data().panic.take()) {
            (InvokeError::Trap(_), Some(panic)) => Err(InvokeError::Panic(panic)),
            (error, _) => Err(error),
        },
        Ok(Ok(())) => Ok(store.into_data().abi.event),
    };
    if let Some(metrics) = crate::metrics::get() {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        };
        metrics.invocation(&function.name, outcome);
        let took = function
            .timeout
            .saturating_sub(deadline.saturating_duration_since(Instant::now()));
        metrics.remember(crate::metrics::Invocation {
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            function: function.name.to_string(),
            outcome,
            ms: took.as_secs_f64() * 1000.0,
            error: result.as_ref().err().map(|error| error.to_string()),
        });
    }
    result
}

impl InvokeError {
    /// One word for what happened, as the metrics count it.
    pub fn outcome(&self) -> &'static str {
        match self {
            InvokeError::Trap(_) => "trap",
            InvokeError::Panic(_) => "panic",
            InvokeError::Deadline(_) => "timeout",
            InvokeError::MemoryLimit(_) => "memory",
            InvokeError::Exit(_) => "exit",
            InvokeError::Instantiate(_) | InvokeError::Busy => "busy",
        }
    }
}

async fn run_guest(
    store: &mut Store<HostState>,
    function: &GuestFunction,
    event_id: u32,
) -> wasmtime::Result<()> {
    let instance = function.pre.instantiate_async(&mut *store).await?;
    store.data_mut().abi.memory = function
        .memory_export
        .as_ref()
        .and_then(|export| instance.get_module_export(&mut *store, export))
        .and_then(Extern::into_memory);

    match &function.init {
        Some(Init::Initialize(export)) => {
            export_func(store, &instance, export)?
                .typed::<(), ()>(&*store)?
                .call_async(&mut *store, ())
                .await?
        }
        Some(Init::Start(export)) => {
            let start = export_func(store, &instance, export)?.typed::<(), ()>(&*store)?;
            match start.call_async(&mut *store, ()).await {
                Err(e) if e.downcast_ref::<I32Exit>().is_some_and(|exit| exit.0 == 0) => {}
                other => other?,
            }
        }
        None => {}
    }

    let func = export_func(store, &instance, &function.export)?;
    let arg = event_id as i32;
    let result = match function.shape {
        ExportShape::ReturnsI32 => func
            .typed::<i32, i32>(&*store)?
            .call_async(&mut *store, arg)
            .await
            .map(drop),
        ExportShape::ReturnsNothing => {
            func.typed::<i32, ()>(&*store)?
                .call_async(&mut *store, arg)
                .await
        }
    };
    match result {
        // A guest that calls exit(0) inside its handler has finished normally.
        Err(e) if e.downcast_ref::<I32Exit>().is_some_and(|exit| exit.0 == 0) => Ok(()),
        other => other,
    }
}

fn export_func(
    store: &mut Store<HostState>,
    instance: &Instance,
    export: &wasmtime::ModuleExport,
) -> wasmtime::Result<Func> {
    instance
        .get_module_export(&mut *store, export)
        .and_then(Extern::into_func)
        .ok_or_else(|| wasmtime::Error::msg("export vanished from its own module"))
}

fn classify(error: wasmtime::Error, function: &GuestFunction) -> InvokeError {
    if let Some(hit) = error.downcast_ref::<LimitHit>() {
        return match hit {
            LimitHit::Memory => InvokeError::MemoryLimit(function.memory_limit),
            LimitHit::Deadline => InvokeError::Deadline(function.timeout),
        };
    }
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return InvokeError::Exit(exit.0);
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return InvokeError::Trap(trap.to_string());
    }
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return InvokeError::Instantiate(format!("{error:#}"));
    }
    InvokeError::Trap(format!("{error:#}"))
}
