//! Taubyte's `env` module: `_ready`, `_sleep` and `_log`, and how guest lines reach the
//! host's log ([`log_line`]; the runtime sends WASI stdout and stderr the same way).
//!
//! What a guest prints is the guest's (and often its clients') to choose, so each line
//! is written escaped ([`escape_line`]): a newline or a terminal escape in it cannot
//! forge a host log line or recolour an operator's terminal. And each function has a
//! budget of lines a second ([`GUEST_LINES_PER_SECOND`]): a function that prints each
//! message of a publish flood would otherwise grow the log as fast as clients publish.

use super::{split, View, ENV_MODULE};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Caller, Linker};
use wisp_abi::imports::name;

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: impl View<T>,
) -> anyhow::Result<()> {
    // TinyGo guests signal readiness; there is nothing for the host to do.
    linker.func_wrap(ENV_MODULE, name::_ready, || {})?;
    linker.func_wrap_async(
        ENV_MODULE,
        name::_sleep,
        move |mut caller: Caller<'_, T>, (nanos,): (i64,)| {
            // Never sleep past the deadline: the invocation would only time out.
            let left = view(caller.data_mut())
                .deadline
                .saturating_duration_since(Instant::now());
            let wanted = Duration::from_nanos(nanos.max(0) as u64);
            Box::new(tokio::time::sleep(wanted.min(left)))
        },
    )?;
    linker.func_wrap(
        ENV_MODULE,
        name::_log,
        move |mut caller: Caller<'_, T>, ptr: i32, len: i32| {
            let (memory, state) = split(&mut caller, view);
            match memory.string(ptr, len) {
                // Escaped and rate-limited like the guest's stdout.
                Ok(line) => log_line(&state.function, None, &line),
                Err(errno) => {
                    tracing::debug!(function = %state.function, ?errno, "_log with a bad pointer")
                }
            }
        },
    )?;
    Ok(())
}

/// Lines one function may write into the host's log in a second (stdout, stderr
/// and `_log` together). Past it, lines are dropped until the next second, with a
/// line saying so when it starts and one saying how many were dropped when the
/// function next writes.
pub const GUEST_LINES_PER_SECOND: u32 = 100;

/// A rate limit on log lines: at most `per_second` in each one-second window, and
/// a count of those held back.
#[derive(Debug)]
pub struct LineBudget {
    per_second: u32,
    window: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// What [`LineBudget::admit`] decided for one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write the line; first say that `suppressed` lines (if any) were dropped
    /// since the last one written.
    Write { suppressed: u64 },
    /// Drop the line: the first dropped since one was written, so say that lines
    /// are being suppressed.
    FirstSuppressed,
    /// Drop the line, saying nothing.
    Suppressed,
}

impl LineBudget {
    pub const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: None,
            written: 0,
            suppressed: 0,
        }
    }

    /// Decides for a line at `now` (passed in, so tests need no clock).
    pub fn admit(&mut self, now: Instant) -> Verdict {
        let fresh = self
            .window
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1));
        if fresh {
            self.window = Some(now);
            self.written = 0;
        }
        if self.written < self.per_second {
            self.written += 1;
            Verdict::Write {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += 1;
            if self.suppressed == 1 {
                Verdict::FirstSuppressed
            } else {
                Verdict::Suppressed
            }
        }
    }
}

/// `line` with its control characters other than tab escaped (`\n`, `\u{1b}`), so
/// that it stays one line and cannot drive a terminal.
pub fn escape_line(line: &str) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() && c != '\t';
    if !line.chars().any(escaped) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if escaped(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Each function's [`LineBudget`], by name. Held for the process, as the log is: a
/// function's budget spans its invocations, which each get a fresh writer. Names
/// are a project's function names, so this grows only with the projects loaded.
static BUDGETS: Mutex<Option<HashMap<Arc<str>, LineBudget>>> = Mutex::new(None);

/// Writes one line a guest printed (`stream`: `stdout` or `stderr`, `None` for
/// `env._log`), escaped and within its function's budget.
pub fn log_line(function: &Arc<str>, stream: Option<&'static str>, line: &str) {
    let verdict = {
        let mut budgets = BUDGETS.lock().unwrap_or_else(|p| p.into_inner());
        budgets
            .get_or_insert_with(HashMap::new)
            .entry(function.clone())
            .or_insert_with(|| LineBudget::new(GUEST_LINES_PER_SECOND))
            .admit(Instant::now())
    };
    match verdict {
        Verdict::Write { suppressed } => {
            if suppressed > 0 {
                tracing::warn!(target: "guest", function = %function, suppressed,
                    "{suppressed} lines from this function suppressed");
            }
            let line = escape_line(line);
            match stream {
                Some(stream) => tracing::info!(target: "guest", function = %function,
                    stream, "{line}"),
                None => tracing::info!(target: "guest", function = %function, "{line}"),
            }
        }
        Verdict::FirstSuppressed => tracing::warn!(target: "guest", function = %function,
            "over {GUEST_LINES_PER_SECOND} lines a second; suppressing the rest of this second's"),
        Verdict::Suppressed => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::abi::testing::logged;

    #[test]
    fn a_budget_writes_its_lines_then_suppresses_then_counts_what_it_dropped() {
        let mut budget = LineBudget::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(budget.admit(start), Verdict::Write { suppressed: 0 });
        }
        assert_eq!(budget.admit(start), Verdict::FirstSuppressed);
        let later = start + Duration::from_millis(999);
        for _ in 0..4 {
            assert_eq!(budget.admit(later), Verdict::Suppressed);
        }
        let next = start + Duration::from_secs(1);
        assert_eq!(budget.admit(next), Verdict::Write { suppressed: 5 });
        assert_eq!(budget.admit(next), Verdict::Write { suppressed: 0 });
        assert_eq!(budget.admit(next), Verdict::Write { suppressed: 0 });
        assert_eq!(budget.admit(next), Verdict::FirstSuppressed);
    }

    #[test]
    fn a_line_with_a_newline_and_a_terminal_escape_is_logged_escaped() {
        let function: Arc<str> = "escape_test_function".into();
        let log = logged(|| log_line(&function, None, "one\ntwo: \x1b[31mred\tend"));
        assert_eq!(log.lines().count(), 1, "{log:?}");
        assert!(log.contains(r"one\ntwo: \u{1b}[31mred"), "{log:?}");
        assert!(log.contains("red\tend"), "a tab stays a tab: {log:?}");
        assert!(!log.contains('\x1b'), "{log:?}");
        assert!(log.contains("function=escape_test_function"), "{log:?}");
    }

    #[test]
    fn a_flood_of_lines_is_cut_to_the_budget_and_says_so() {
        let function: Arc<str> = "flood_test_function".into();
        let log = logged(|| {
            for i in 0..(GUEST_LINES_PER_SECOND * 20) {
                log_line(&function, Some("stdout"), &format!("line {i}"));
            }
        });
        let lines = log.lines().count() as u32;
        // However slowly this runs, it cannot take 10 s per window's worth.
        assert!(lines < GUEST_LINES_PER_SECOND * 10, "{lines} lines");
        assert!(
            log.contains("suppressing the rest of this second's"),
            "{log}"
        );
    }
}
