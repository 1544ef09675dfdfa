//! The one wasmtime `Engine` Wisp runs every guest on.

use anyhow::Context;
use std::time::Duration;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
};

/// How often the epoch ticks. A running guest checks its deadline and yields to the
/// async executor at each tick, so this bounds both timeout precision and how long
/// one busy guest can hold a worker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Linear memory kept resident per pool slot between events (see `build_engine`).
const KEEP_RESIDENT: usize = 2 << 20;

/// Engine-wide settings, fixed for the life of the process.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Instances alive at once (the pooling allocator's slots): the bound on
    /// concurrent invocations.
    pub max_instances: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_instances: 1000,
        }
    }
}

/// Builds the engine: pooling allocator (instances come from pre-reserved slots,
/// no mmap per request) and epoch interruption (deadlines without fuel's cost).
pub fn build_engine(settings: &EngineSettings) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(settings.max_instances)
        .total_memories(settings.max_instances)
        .total_tables(settings.max_instances)
        .total_stacks(settings.max_instances)
        .total_component_instances(0)
        // The whole 32-bit address space: each function's own `execution.memory`
        // is enforced per Store by the limiter, with a clearer error than the pool's.
        .max_memory_size(1 << 32)
        // Keep what a typical guest touches resident between events (a Rust guest
        // has a 1 MiB stack below its data): resetting a page costs less than
        // faulting it back in, the more so in a VM. With PAGEMAP_SCAN (Linux
        // 6.7+) only the pages a guest actually dirtied are reset.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(16 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine")
}

/// Ticks the engine's epoch on a background thread for as long as the engine lives.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wisp-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect(
            "spawning the epoch thread at start-up cannot fail unless the OS is out of threads",
        );
}
