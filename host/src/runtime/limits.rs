//! Per-event resource limits enforced inside the Store.

use wasmtime::ResourceLimiter;

/// Why a guest was stopped by the host rather than by its own trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    /// The guest tried to grow its memory past `execution.memory`.
    #[error("memory limit exceeded")]
    Memory,
    /// The guest ran past `execution.timeout`.
    #[error("deadline exceeded")]
    Deadline,
}

/// Caps a guest's linear memory at the function's `execution.memory`.
///
/// Growing past the cap traps the instance at once (instead of letting
/// `memory.grow` return -1), so an allocation loop ends with a precise error rather
/// than however the guest's allocator reacts to failure.
pub struct MemoryLimiter {
    max_bytes: usize,
}

impl MemoryLimiter {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            return Err(LimitHit::Memory.into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        /// Tables hold function references; no real guest needs more than this.
        const MAX_TABLE_ELEMENTS: usize = 1 << 20;
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
