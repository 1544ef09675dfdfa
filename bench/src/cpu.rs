//! CPU use of a process over an interval, to tell which side of a run was saturated.
//!
//! A server at 100% of its core at the highest rate is what limits that rate; one well below
//! means something else did (often the load generator, which has one core too). Read from
//! `/proc/<pid>/stat` (user + system time of all threads), so Linux only; elsewhere the
//! figures are simply missing.

use std::time::Instant;

/// Kernel clock ticks per second for `/proc` times: 100 on every Linux this runs on (the
/// value is fixed by the kernel ABI, `USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// A process's CPU time at a moment.
pub struct CpuClock {
    pid: Option<u32>,
    cpu: f64,
    wall: Instant,
}

impl CpuClock {
    /// Starts measuring process `pid` (this process if `None`); `None` if it cannot be read.
    pub fn start(pid: Option<u32>) -> Option<Self> {
        Some(Self {
            pid,
            cpu: cpu_seconds(pid)?,
            wall: Instant::now(),
        })
    }

    /// CPU seconds used per wall second since the start (1.0 = one core busy all the time).
    pub fn utilization(&self) -> Option<f64> {
        let wall = self.wall.elapsed().as_secs_f64();
        let used = cpu_seconds(self.pid)? - self.cpu;
        (wall > 0.0).then(|| used / wall)
    }
}

/// Several processes measured together (the nodes of a cluster and their NATS server).
pub struct CpuClocks(Vec<CpuClock>);

impl CpuClocks {
    /// Starts measuring every process in `pids`; `None` if there are none or one cannot be read.
    pub fn start(pids: &[u32]) -> Option<Self> {
        if pids.is_empty() {
            return None;
        }
        pids.iter()
            .map(|&pid| CpuClock::start(Some(pid)))
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    /// Each process's [`CpuClock::utilization`], in the order of the pids.
    pub fn utilization(&self) -> Option<Vec<f64>> {
        self.0.iter().map(CpuClock::utilization).collect()
    }
}

/// User + system CPU seconds of process `pid` (or this one).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces; the fields after it are plain numbers.
    // utime and stime are fields 14 and 15, so the 12th and 13th after the name.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let clock = CpuClock::start(None).expect("/proc/self/stat is readable on Linux");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(clock.utilization().is_some_and(|u| u >= 0.0));
    }

    #[test]
    fn reads_several_processes() {
        let me = std::process::id();
        let clocks = CpuClocks::start(&[me, me]).expect("this process is readable twice");
        assert_eq!(clocks.utilization().map(|u| u.len()), Some(2));
        assert!(CpuClocks::start(&[]).is_none());
    }
}
