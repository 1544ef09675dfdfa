//! Functions that misbehave on purpose, one export each, for the host's limits and error paths.
//!
//! | export | does |
//! |---|---|
//! | `ok` | writes `ok`, status 200 |
//! | `trap` | executes the wasm `unreachable` instruction |
//! | `spin` | loops forever |
//! | `grow` | allocates 1 MiB chunks until memory runs out |
//! | `deep` | recurses until the stack overflows |
//! | `badptr` | calls host functions with wild pointers, reports the errnos |
//! | `sleepy` | sleeps `?ms=` milliseconds, writes `slept` |
//! | `status_after_write` | writes `bad request`, then sets status 400 |
//! | `fail` | returns `Err("something broke")` |

use std::hint::black_box;
use std::ptr;
use std::time::Duration;

use wisp_sdk::{sys, Event, Result};

#[wisp_sdk::function]
fn ok(event: Event) -> Result<()> {
    let http = event.http()?;
    http.write(b"ok")?;
    http.return_code(200)
}

#[wisp_sdk::function]
fn trap(_event: Event) {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!("`trap` only traps on wasm32");
}

/// A Rust panic: std prints its place, message and advice to stderr, then traps.
#[wisp_sdk::function]
fn panics(_event: Event) {
    let answer = std::hint::black_box(42);
    panic!("the answer was {answer}");
}

#[wisp_sdk::function]
fn spin(_event: Event) {
    // `black_box` keeps the optimiser from proving the loop has no effect.
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

#[wisp_sdk::function]
fn grow(_event: Event) {
    const CHUNK: usize = 1 << 20;
    const PAGE: usize = 4096;
    let mut chunks = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        // Touch every page so the memory is really used.
        for byte in chunk.iter_mut().step_by(PAGE) {
            *byte = 1;
        }
        chunks.push(black_box(chunk));
    }
}

#[wisp_sdk::function]
fn deep(_event: Event) {
    black_box(recurse(0));
}

/// Recursion that cannot become a loop: the result is used after the call, and `black_box` hides
/// that the condition is always true. Frames are kept small so the engine's call stack runs out
/// (a "call stack exhausted" trap) before Rust's 1 MiB shadow stack in linear memory does (which
/// would show as an out-of-bounds memory access instead).
fn recurse(depth: u64) -> u64 {
    if black_box(true) {
        recurse(depth + 1).wrapping_mul(3) ^ depth
    } else {
        depth
    }
}

/// Wild pointers near the top of the 4 GiB address space: past the end of any memory the host
/// grants, and (with their lengths) wrapping past 2^32.
const WILD_WRITE: usize = 0xFFFF_FF00;
const WILD_BUF: usize = 0xFFFF_FFF0;
const WILD_SIZE_PTR: usize = 0xFFFF_FFFF;

#[wisp_sdk::function]
fn badptr(event: Event) -> Result<()> {
    let id = event.id();
    let mut written = 0usize;
    let mut value = [0u8; 64];
    // SAFETY: deliberately invalid guest pointers; the host must check them and answer with an
    // errno (or trap this instance). Nothing in this module's memory is written through them.
    let (write, method, header, method_size) = unsafe {
        (
            sys::eventHttpWrite(id, ptr::without_provenance(WILD_WRITE), 4096, &mut written),
            sys::getHttpEventMethod(id, ptr::without_provenance_mut(WILD_BUF), 64),
            sys::getHttpEventHeaders(
                id,
                ptr::without_provenance(WILD_BUF),
                64,
                value.as_mut_ptr(),
                value.len(),
            ),
            sys::getHttpEventMethodSize(id, ptr::without_provenance_mut(WILD_SIZE_PTR)),
        )
    };
    let report =
        format!("write:{write}\nmethod:{method}\nheader:{header}\nmethodsize:{method_size}\n");
    let http = event.http()?;
    http.write(report.as_bytes())?;
    http.return_code(200)
}

#[wisp_sdk::function]
fn sleepy(event: Event) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let http = event.http()?;
    let raw = http.query().get("ms")?;
    let ms: u64 = raw
        .parse()
        .map_err(|_| format!("`ms` must be a number of milliseconds, not `{raw}`"))?;
    wisp_sdk::sleep(Duration::from_millis(ms));
    http.write(b"slept")?;
    Ok(())
}

#[wisp_sdk::function]
fn status_after_write(event: Event) -> Result<()> {
    let http = event.http()?;
    http.write(b"bad request")?;
    // Taubyte loses a status set after a write; Wisp keeps it.
    http.return_code(400)
}

#[wisp_sdk::function]
fn fail(_event: Event) -> std::result::Result<(), &'static str> {
    Err("something broke")
}

/// Writes 1 MiB chunks until the host refuses one (its response limit), then
/// reports how much got through.
#[wisp_sdk::function]
fn huge_write(event: Event) -> Result<()> {
    let http = event.http()?;
    let chunk = vec![b'w'; 1 << 20];
    let mut written = 0usize;
    while written < (1 << 30) {
        match http.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    // The response is over its limit: nothing more can be written, so the status
    // says what happened.
    http.return_code(if written < (1 << 30) { 507 } else { 200 })
}

/// Publishes an 8 MiB message to `?channel=`; answers the host's verdict.
#[wisp_sdk::function]
fn huge_publish(event: Event) -> Result<()> {
    let http = event.http()?;
    let channel = wisp_sdk::pubsub::channel(&http.query().get("channel")?)?;
    let outcome = channel.publish(&vec![b'p'; 8 << 20]);
    http.return_code(if outcome.is_err() { 413 } else { 200 })?;
    http.write(match outcome {
        Ok(()) => b"published".as_slice(),
        Err(_) => b"refused".as_slice(),
    })?;
    Ok(())
}

/// Tries what a sandboxed guest must not be able to do, and reports each outcome.
#[wisp_sdk::function]
fn sandbox(event: Event) -> Result<()> {
    let http = event.http()?;
    let file = match std::fs::read_to_string("/etc/passwd") {
        Ok(_) => "read".to_owned(),
        Err(e) => format!("denied ({})", e.kind()),
    };
    let dir = match std::fs::read_dir("/") {
        Ok(_) => "listed".to_owned(),
        Err(e) => format!("denied ({})", e.kind()),
    };
    let write = match std::fs::write("/tmp/wisp-escape", b"x") {
        Ok(()) => "written".to_owned(),
        Err(e) => format!("denied ({})", e.kind()),
    };
    let env = std::env::vars().count();
    let args = std::env::args().count();
    let start = std::time::Instant::now();
    let mut finest = u128::MAX;
    let mut last = start.elapsed().as_nanos();
    for _ in 0..100_000 {
        let now = start.elapsed().as_nanos();
        if now != last {
            finest = finest.min(now - last);
            last = now;
        }
    }
    let report = format!("file:{file}\ndir:{dir}\nwrite:{write}\nenv:{env}\nargs:{args}\nclock_step_ns:{finest}\n");
    http.write(report.as_bytes())?;
    Ok(())
}
