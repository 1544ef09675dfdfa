//! `docs/performance.md` from the runs `bench/run` collected.
//!
//! Input is JSON lines, one per measured run: `{"fig": "1", "system": "wisp", "n": 100,
//! "data": {...}}`, where `data` is what a measuring subcommand printed. Every figure in the
//! table is the median of its runs; the individual runs are listed below the table so the
//! spread is visible. Commands come as JSON lines too: `{"fig": "1", "cmd": "..."}`.

use anyhow::Context;
use clap::Args as ClapArgs;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    /// The collected runs (JSON lines)
    #[arg(long)]
    results: PathBuf,
    /// The machine description (a JSON object of strings)
    #[arg(long)]
    machine: PathBuf,
    /// The commands run (JSON lines)
    #[arg(long)]
    commands: PathBuf,
    /// Where to write the markdown
    #[arg(long)]
    out: PathBuf,
    /// Markdown written by people (what the figures mean, what each optimisation bought),
    /// placed after the results table
    #[arg(long)]
    notes: Option<PathBuf>,
}

struct Run {
    fig: String,
    system: String,
    n: Option<u64>,
    data: Value,
}

struct Runs(Vec<Run>);

impl Runs {
    /// One metric of every run of `fig` on `system` (with `n` subscribers, if given).
    fn values(&self, fig: &str, system: &str, n: Option<u64>, key: &str) -> Vec<f64> {
        self.0
            .iter()
            .filter(|r| r.fig == fig && r.system == system && r.n == n)
            .filter_map(|r| r.data.get(key).and_then(Value::as_f64))
            .collect()
    }

    /// Whether any run of `fig` on `system` with `n` matches `test`.
    fn any(&self, fig: &str, system: &str, n: Option<u64>, test: fn(&Value) -> bool) -> bool {
        self.0
            .iter()
            .filter(|r| r.fig == fig && r.system == system && r.n == n)
            .any(|r| test(&r.data))
    }

    /// The median of [`Runs::values`].
    fn median(&self, fig: &str, system: &str, n: Option<u64>, key: &str) -> Option<f64> {
        median(self.values(fig, system, n, key))
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn read_lines(path: &PathBuf) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).with_context(|| format!("bad line in {}: {l}", path.display()))
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<Value> {
    let runs = Runs(
        read_lines(&args.results)?
            .into_iter()
            .map(|v| Run {
                fig: v["fig"].as_str().unwrap_or_default().to_owned(),
                system: v["system"].as_str().unwrap_or_default().to_owned(),
                n: v["n"].as_u64(),
                data: v["data"].clone(),
            })
            .collect(),
    );
    let machine: Value = serde_json::from_str(
        &std::fs::read_to_string(&args.machine)
            .with_context(|| format!("reading {}", args.machine.display()))?,
    )?;
    let commands = read_lines(&args.commands)?;
    let notes = match &args.notes {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => String::new(),
    };
    let markdown = render(&runs, &machine, &commands, &notes);
    std::fs::write(&args.out, &markdown)
        .with_context(|| format!("writing {}", args.out.display()))?;
    print!("{}", table(&runs, &machine));
    Ok(Value::Null)
}

fn render(runs: &Runs, machine: &Value, commands: &[Value], notes: &str) -> String {
    let field = |key: &str| machine[key].as_str().unwrap_or("?").to_owned();
    let mut out = String::new();
    let only = machine["only"].as_str().filter(|only| !only.is_empty());
    let _ = writeln!(
        out,
        "# Performance\n\n\
         Written by `bench/run{}{}` on {}; it took {}. Rerun with `bench/run` (full, three runs \
         per figure) or `bench/run --quick` (one short run per figure, N = 100 only). Every row \
         shows Wisp and its peers from the same run of the script.{}\n",
        if field("mode") == "quick" {
            " --quick"
        } else {
            ""
        },
        only.map_or(String::new(), |only| format!(" --only {only}")),
        field("date"),
        field("elapsed"),
        if only.is_some() {
            " Only the figures named with `--only` were run, so only theirs are shown."
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "## Machine\n\n| CPUs | model | RAM | kernel | rustc |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n",
        field("nproc"),
        field("cpu"),
        field("ram"),
        field("kernel"),
        field("rustc")
    );
    out.push_str(METHOD);
    out.push_str("\n## Results\n\n");
    out.push_str(&table(runs, machine));
    if !notes.trim().is_empty() {
        out.push('\n');
        out.push_str(notes.trim_end());
        out.push('\n');
    }
    out.push_str(
        "\n## Every run\n\nThe table shows the median of these. CPU is the share of one core \
         used while measured (the server is pinned to one core, so 100% means it was the \
         limit).\n\n",
    );
    out.push_str(&every_run(runs));
    out.push_str("\n## Commands\n\nAs run by `bench/run` (ports are picked free at run time).\n\n");
    let mut by_fig: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for command in commands {
        let fig = command["fig"].as_str().unwrap_or("-").to_owned();
        let cmd = command["cmd"].as_str().unwrap_or_default().to_owned();
        let list = by_fig.entry(fig).or_default();
        if !list.contains(&cmd) {
            list.push(cmd);
        }
    }
    for (fig, list) in by_fig {
        let _ = writeln!(out, "Figure {fig}:\n\n```sh");
        for cmd in list {
            let _ = writeln!(out, "{cmd}");
        }
        out.push_str("```\n\n");
    }
    out
}

const METHOD: &str = "## Method\n\n\
- The server under test runs alone on CPU 1 (`taskset -c 1`) and the load generator \
(`wisp-bench`, in `bench/`) on CPU 0 (`taskset -c 0`); every system gets the same single core. \
Servers log at `warn` only.\n\
- HTTP: 64 keep-alive HTTP/1.1 connections, one request at a time each. Throughput is a \
closed loop at full speed; latency is an open loop at half of each system's own maximum, \
latency counted from each request's *intended* send time (wrk2's correction for coordinated \
omission), recorded in HdrHistogram. The three HTTP servers are measured in rounds, each \
round one run of each, with the servers not being measured paused (`SIGSTOP`): a noisy \
stretch of the shared machine falls on all three, and an idle server's timers never run on \
the core another is measured on.\n\
- Fan-out: one publisher sends 64-byte messages at a fixed rate (open loop); each carries its \
intended send time and sequence number, and every subscriber records publish→deliver \
latency from that time. The highest rate is searched by doubling, then bisecting; a step \
passes with 100% delivered to every subscriber and p99 < 50 ms, and a rate counts as failed \
only if it fails twice in a row.\n\
- Every client socket sets TCP_NODELAY; so does every server here (Wisp, hyper, wasmtime \
serve, Redis, NATS, Python's asyncio). Subscriber connections come from several loopback \
source addresses, 250 per address, as distinct clients would.\n\
- Wisp runs with its defaults, except two admission limits: its per-client WebSocket publish \
limit (`--ws-publish-rate`, 1,000 messages/s) is lifted where one publisher stands for many \
(figures 4, 4c, 5, 5c, 7; on both nodes in 4c and 5c), and `--max-connections` is raised for \
figure 6's 10,000 connections.\n\
- Across two nodes (figures 4c and 5c): two Wisp nodes in cluster mode (`--cluster`, the same \
project, so the same channel) and one `nats-server` they share. The publisher connects to \
node A and the N subscribers to node B, so every message goes from node A through NATS to \
node B. All three processes run on CPU 1, the single core every other server gets, so these \
figures are a lower bound for nodes on machines of their own. The server CPU reported for \
them is the sum of the three (node A + node B + NATS; each is listed below, in that order); \
100% means the shared core was the limit.\n\
- Each figure gets a warm-up, then three runs (one with `--quick`); the table shows medians.\n\
- The load generator has one core too: at the highest rates it, not the server, can be what \
saturates. Each run below shows the server's CPU use (100% = its core was the limit); a † \
marks a fan-out search where the publisher itself fell behind its schedule at the first \
failing rate. The raw JSON of every run stays in the `$WORK` folder `bench/run` prints.\n";

/// A rate with thousands separators.
fn count(value: f64) -> String {
    let whole = value.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds as milliseconds.
fn ms(us: Option<f64>) -> String {
    us.map_or("–".into(), |us| format!("{:.2}", us / 1e3))
}

/// CPU use (cores) as a percentage of one core.
fn percent(cores: Option<f64>) -> String {
    cores.map_or("–".into(), |c| format!("{:.0}%", c * 100.0))
}

/// Send lag p99 past which a step's failure is blamed on the load generator, not the server.
const LOADGEN_BEHIND_US: f64 = 5_000.0;

/// Whether, in a fan-out search, the load generator itself fell behind at the first failing
/// rate: then the server might have passed it, and the result is a lower bound.
fn loadgen_bound(data: &Value) -> bool {
    let failed = data.get("first_failing_rate").and_then(Value::as_f64);
    data.get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|step| step.get("rate").and_then(Value::as_f64) == failed)
        .any(|step| {
            step.get("send_lag_p99_us")
                .and_then(Value::as_f64)
                .is_some_and(|lag| lag > LOADGEN_BEHIND_US)
        })
}

/// The parts of a summed server CPU figure (` = 31% + 40% + 24%`), if the run measured several
/// processes; empty otherwise.
fn cpu_each(data: &Value) -> String {
    let each: Vec<String> = data
        .get("server_cpu_each")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| percent(c.as_f64()))
        .collect();
    if each.len() > 1 {
        format!(" = {}", each.join(" + "))
    } else {
        String::new()
    }
}

fn opt(value: Option<f64>) -> String {
    value.map_or("–".into(), count)
}

fn verdict(parts: &[Option<bool>]) -> &'static str {
    if parts.iter().any(Option::is_none) {
        "n/a"
    } else if parts.iter().all(|p| *p == Some(true)) {
        "**met**"
    } else {
        "**not met**"
    }
}

/// A missed target's verdict with what the same run says stands in the way.
fn with_reason(verdict: &'static str, reason: Option<String>) -> String {
    match reason {
        Some(reason) if verdict == "**not met**" => format!("{verdict}: {reason}"),
        _ => verdict.to_owned(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn times(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{r:.2}×"))
}

/// The results table.
fn table(runs: &Runs, machine: &Value) -> String {
    let mut out = String::from(
        "| # | figure | Wisp | compared with, in the same run | target | |\n|---|---|---|---|---|---|\n",
    );
    // `bench/run --only` runs some figures: show only theirs.
    let subset = machine["only"]
        .as_str()
        .is_some_and(|only| !only.is_empty());
    let shown = |fig: &str| !subset || runs.0.iter().any(|r| r.fig == fig);
    let skipped = if machine["mode"].as_str() == Some("quick") {
        "not run with `--quick`"
    } else {
        "no result"
    };
    // 1. HTTP throughput.
    let rps = |s| runs.median("1", s, None, "rps");
    let (wisp, native, wasmtime) = (rps("wisp"), rps("native"), rps("wasmtime"));
    // Native hyper paying wasmtime's floor per request: the bound for any host on it.
    let floor_host = rps("floor");
    let (floor_vs_native, vs_floor) = (ratio(floor_host, native), ratio(wisp, floor_host));
    let vs_wasmtime = ratio(wisp, wasmtime);
    let vs_native = ratio(wisp, native);
    if shown("1") {
        let _ = writeln!(
            out,
            "| 1 | HTTP hello, requests/s (13-byte body, 64 keep-alive connections) | {} | native hyper {} (Wisp = {:.0}%); wasmtime serve {} (Wisp = {}) | ≥ 3× wasmtime serve, ≥ 50% of native | {} |",
            opt(wisp),
            opt(native),
            vs_native.unwrap_or(0.0) * 100.0,
            opt(wasmtime),
            times(vs_wasmtime),
            with_reason(
                verdict(&[vs_wasmtime.map(|r| r >= 3.0), vs_native.map(|r| r >= 0.5)]),
                floor_vs_native
                    .filter(|_| vs_native.is_some_and(|r| r < 0.5))
                    .map(|bound| format!(
                        "native hyper paying only wasmtime's per-event floor serves {:.0}% of native, and Wisp {:.0}% of that (row 1a)",
                        bound * 100.0,
                        vs_floor.unwrap_or(0.0) * 100.0
                    ))
            )
        );
    }
    // 1a. Figure 1's invocation alone, next to wasmtime's own floor and native's request.
    if shown("1a") {
        let us = |k| runs.median("1a", "wisp", None, k);
        let (invocation, floor) = (us("wisp_invocation_us"), us("wasmtime_instance_us"));
        let request = |rps: Option<f64>| rps.filter(|&r| r > 0.0).map(|r| 1e6 / r);
        let native_request = request(native);
        let micros = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2} µs"));
        // At 50% of native a request may take twice native's time: native's own work,
        // plus as much again for everything a wasm host adds. The floor is part of that.
        let budget = match (native_request, floor) {
            (Some(native), Some(floor)) => format!(
                ". At 50% of native a host has {} a request beyond native's own work; wasmtime's floor takes {:.0}% of it",
                micros(native_request),
                floor / native * 100.0
            ),
            _ => String::new(),
        };
        let over_http = floor_vs_native.map_or(String::new(), |of_native| {
            format!(
                "; over HTTP, native hyper paying that floor on every request serves {} req/s ({:.0}% of native; Wisp = {:.0}% of it)",
                opt(floor_host),
                of_native * 100.0,
                vs_floor.unwrap_or(0.0) * 100.0
            )
        });
        let _ = writeln!(
            out,
            "| 1a | figure 1's function invoked in process, no network: time per event | {} | wasmtime alone, same engine and module (new Store, pooled instance, one page of its memory written, drop; nothing called) {}{over_http}; a whole request in figure 1: native hyper {}, Wisp {}{budget} | — | figure only |",
            micros(invocation),
            micros(floor),
            micros(native_request),
            micros(request(wisp)),
        );
    }
    // 2. HTTP latency at half of each system's max.
    if shown("2") {
        let latency = |s| {
            let p = |k| runs.median("2", s, None, k);
            (
                format!(
                    "{} / {} / {} ms at {} req/s",
                    ms(p("p50_us")),
                    ms(p("p99_us")),
                    ms(p("p999_us")),
                    opt(p("target_rate"))
                ),
                p("p99_us"),
            )
        };
        let (wisp_text, wisp_p99) = latency("wisp");
        let (native_text, native_p99) = latency("native");
        let (wasmtime_text, _) = latency("wasmtime");
        let _ = writeln!(
            out,
            "| 2 | HTTP latency p50 / p99 / p99.9 at half of each system's maximum | {wisp_text} | native hyper {native_text}; wasmtime serve {wasmtime_text} | Wisp p99 ≤ 2× native (is {}) | {} |",
            times(ratio(wisp_p99, native_p99)),
            with_reason(
                verdict(&[ratio(wisp_p99, native_p99).map(|r| r <= 2.0)]),
                ratio(native, wisp).map(|slower| format!(
                    "a Wisp request takes {slower:.2}× native's (row 1), and at half load p99 is mostly the wait behind earlier requests"
                ))
            )
        );
    }
    // 3. Start to first response.
    if shown("3") {
        let warm = runs.median("3", "cache", None, "first_response_ms");
        let cold = runs.median("3", "no-cache", None, "first_response_ms");
        let speedup = ratio(cold, warm);
        let _ = writeln!(
            out,
            "| 3 | start to first response, sample project (`config/`) | with cache {} ms; without {} ms ({} faster) | itself | cache ≥ 10× faster | {} |",
            warm.map_or("–".into(), |v| format!("{v:.0}")),
            cold.map_or("–".into(), |v| format!("{v:.0}")),
            times(speedup),
            verdict(&[speedup.map(|r| r >= 10.0)])
        );
    }
    let mark = |fig, s, n| {
        if runs.any(fig, s, n, loadgen_bound) {
            "†"
        } else {
            ""
        }
    };
    // 4. Fan-out.
    for n in [100, 1000].into_iter().filter(|_| shown("4")) {
        let d = |s| runs.median("4", s, Some(n), "deliveries_per_s");
        let (wisp, redis, nats, py) = (d("wisp"), d("redis"), d("nats"), d("pybroker"));
        if wisp.is_none() && redis.is_none() {
            let _ = writeln!(
                out,
                "| 4 | fan-out, N = {n}: deliveries/s | {skipped} | | | |"
            );
            continue;
        }
        let p99 = |s| ms(runs.median("4", s, Some(n), "p99_us"));
        let mark = |s| mark("4", s, Some(n));
        let (wisp_mark, redis_mark, nats_mark, py_mark) =
            (mark("wisp"), mark("redis"), mark("nats"), mark("pybroker"));
        let _ = writeln!(
            out,
            "| 4 | fan-out, one channel, N = {n} subscribers, 64-byte messages: highest deliveries/s with 100% delivered and p99 < 50 ms | {}{wisp_mark} (p99 {} ms) | Redis {}{redis_mark} (Wisp = {}); NATS {}{nats_mark} (Wisp = {:.0}%); Python broker {}{py_mark} (Wisp = {}) | ≥ 2× Redis, ≥ 30% of NATS, ≥ 50× Python | {} |",
            opt(wisp),
            p99("wisp"),
            opt(redis),
            times(ratio(wisp, redis)),
            opt(nats),
            ratio(wisp, nats).unwrap_or(0.0) * 100.0,
            opt(py),
            times(ratio(wisp, py)),
            verdict(&[
                ratio(wisp, redis).map(|r| r >= 2.0),
                ratio(wisp, nats).map(|r| r >= 0.3),
                ratio(wisp, py).map(|r| r >= 50.0)
            ])
        );
    }
    // 4c. Fan-out across two nodes, next to figure 4's single node.
    for n in [100, 1000].into_iter().filter(|_| shown("4c")) {
        let two = runs.median("4c", "wisp", Some(n), "deliveries_per_s");
        let Some(two) = two else {
            let _ = writeln!(
                out,
                "| 4c | fan-out across two nodes, N = {n}: deliveries/s | {skipped} | | | |"
            );
            continue;
        };
        let one = runs.median("4", "wisp", Some(n), "deliveries_per_s");
        let _ = writeln!(
            out,
            "| 4c | fan-out across two cluster nodes and one nats-server (publisher on node A, N = {n} subscribers on node B, all on one core): as figure 4 | {}{} (p99 {} ms) | one node (figure 4) {}{} (two nodes = {}) | — | figure only |",
            count(two),
            mark("4c", "wisp", Some(n)),
            ms(runs.median("4c", "wisp", Some(n), "p99_us")),
            opt(one),
            mark("4", "wisp", Some(n)),
            ratio(Some(two), one).map_or("–".into(), |r| format!("{:.0}%", r * 100.0)),
        );
    }
    let flagged = runs
        .0
        .iter()
        .any(|r| (r.fig == "4" || r.fig == "4c") && loadgen_bound(&r.data));
    // 5. Publish→deliver latency.
    let p = |fig, s, k| runs.median(fig, s, Some(100), k);
    let delivered = |fig, s| {
        p(fig, s, "delivered_fraction").map_or("–".into(), |f| format!("{:.2}%", f * 100.0))
    };
    let latency = |fig, s| {
        format!(
            "{} / {} ms ({} delivered)",
            ms(p(fig, s, "p50_us")),
            ms(p(fig, s, "p99_us")),
            delivered(fig, s)
        )
    };
    if shown("5") {
        let vs_nats = ratio(p("5", "wisp", "p99_us"), p("5", "nats", "p99_us"));
        let _ = writeln!(
            out,
            "| 5 | publish→deliver latency p50 / p99, 100 subscribers × 1,000 msg/s | {} | NATS {} | Wisp p99 ≤ 2× NATS (is {}) | {} |",
            latency("5", "wisp"),
            latency("5", "nats"),
            times(vs_nats),
            verdict(&[vs_nats.map(|r| r <= 2.0)])
        );
    }
    // 5c. The same across two nodes, next to figure 5's single node.
    if shown("5c") {
        let _ = writeln!(
            out,
            "| 5c | publish→deliver latency p50 / p99 across two cluster nodes and one nats-server (publisher on node A, 100 subscribers on node B, all on one core), 1,000 msg/s | {} | one node (figure 5) {} | — | figure only |",
            latency("5c", "wisp"),
            latency("5", "wisp"),
        );
    }
    // 6. Idle connection memory.
    if shown("6") {
        let kib = runs.median("6", "wisp", None, "per_connection_kib");
        let opened = runs.median("6", "wisp", None, "still_open");
        let _ = writeln!(
            out,
            "| 6 | memory per idle WebSocket connection (RSS growth / N, N = 10,000) | {} KiB ({} connections held) | itself | ≤ 8 KiB | {} |",
            kib.map_or("–".into(), |k| format!("{k:.1}")),
            opt(opened),
            verdict(&[kib.map(|k| k <= 8.0 && opened.unwrap_or(0.0) >= 10_000.0)])
        );
    }
    // 7. Pub/sub-triggered invocations.
    if shown("7") {
        let invocations = runs.median("7", "wisp", None, "invocations_per_s");
        let share = ratio(invocations, wisp);
        let _ = writeln!(
            out,
            "| 7 | pub/sub-triggered function invocations/s (the function reads the data) | {} | figure 1's Wisp rate {} (= {:.0}%) | ≥ 50% of the HTTP function rate | {} |",
            opt(invocations),
            opt(wisp),
            share.unwrap_or(0.0) * 100.0,
            verdict(&[share.map(|r| r >= 0.5)])
        );
    }
    if shown("8") {
        let m = |key| runs.median("8", "wisp", None, key);
        let (put, get) = (m("wisp_put_per_s"), m("wisp_get_per_s"));
        let (redis_put, redis_get) = (m("redis_put_per_s"), m("redis_get_per_s"));
        let share = ratio(get, redis_get);
        let _ = writeln!(
            out,
            "| 8 | database calls from a guest per second (in process, SQLite, 100-byte values, 1,000 keys): get / put | {} / {} | Redis GET / SET from a native client, one command at a time over loopback: {} / {} (get = {:.0}%) | get ≥ 50% of Redis | {} |",
            opt(get),
            opt(put),
            opt(redis_get),
            opt(redis_put),
            share.unwrap_or(0.0) * 100.0,
            verdict(&[share.map(|r| r >= 0.5)])
        );
    }
    if shown("9") {
        let m = |key| runs.median("9", "wisp", None, key);
        let (wisp, native) = (m("wisp_requests_per_s"), m("native_requests_per_s"));
        let share = ratio(wisp, native);
        let _ = writeln!(
            out,
            "| 9 | outbound HTTP GETs from a guest per second (one at a time, pooled, to a local hyper server) | {} | native hyper client, same server, same run: {} (= {:.0}%) | ≥ 50% of native | {} |",
            opt(wisp),
            opt(native),
            share.unwrap_or(0.0) * 100.0,
            verdict(&[share.map(|r| r >= 0.5)])
        );
    }
    if shown("10") {
        figure_10(&mut out, runs, skipped);
    }
    if shown("11") {
        figure_11(&mut out, runs);
    }
    if flagged {
        out.push_str(
            "\n† In at least one run the load generator itself fell behind its schedule at the \
             first rate that failed (send lag p99 over 5 ms), so the system may sustain more: \
             the figure is a lower bound.\n",
        );
    }
    out
}

/// Figure 10's rows: fan-out with history on against off, publishes into a history channel
/// beside JetStream, and many clients resuming at once.
fn figure_10(out: &mut String, runs: &Runs, skipped: &str) {
    // The fan-out runs at the largest N of the run (1,000; 100 with `--quick`).
    let n = runs
        .0
        .iter()
        .filter(|r| r.fig == "10")
        .filter_map(|r| r.n)
        .max();
    let d = |s| runs.median("10", s, n, "deliveries_per_s");
    let (on, off) = (d("bench-history"), d("bench-fanout"));
    let share = ratio(on, off);
    let _ = writeln!(
        out,
        "| 10a | fan-out to a channel that keeps history (1,000 kept, SQLite), N = {}: as figure 4 | {} (p99 {} ms) | the same server's channel without history: {} (history on = {}) | ≥ 70% | {} |",
        n.map_or("–".into(), |n| n.to_string()),
        if on.is_none() { skipped.to_owned() } else { opt(on) },
        ms(runs.median("10", "bench-history", n, "p99_us")),
        opt(off),
        share.map_or("–".into(), |r| format!("{:.0}%", r * 100.0)),
        verdict(&[share.map(|r| r >= 0.7)])
    );
    let m = |key| runs.median("10", "history", None, key);
    let (wisp, jetstream) = (m("wisp_publish_per_s"), m("jetstream_publish_per_s"));
    let share = ratio(wisp, jetstream);
    let _ = writeln!(
        out,
        "| 10b | publishes/s into a channel that keeps history (100-byte messages from one WebSocket client; counted when a subscriber has the last, each stored before delivery) | {} | NATS JetStream publish of the same size to a file-stored stream keeping as many, acks pipelined (256 in flight): {} (Wisp = {}) | ≥ JetStream | {} |",
        opt(wisp),
        opt(jetstream),
        share.map_or("–".into(), |r| format!("{:.0}%", r * 100.0)),
        verdict(&[share.map(|r| r >= 1.0)])
    );
    let (clients, behind) = (m("clients"), m("behind"));
    let _ = writeln!(
        out,
        "| 10c | {} clients that missed {} messages reconnect at once with `?since=`: time until every one has them all | {} ms | all connected after {} ms | — | figure only |",
        opt(clients),
        opt(behind),
        m("reconnect_caught_up_ms").map_or("–".into(), |v| format!("{v:.0}")),
        m("reconnect_connected_ms").map_or("–".into(), |v| format!("{v:.0}")),
    );
}

/// A median with the range of the runs it is the median of: `12,345 (11,000–13,000)`; the
/// value alone for one run.
fn with_range(values: &[f64]) -> String {
    let low = values.iter().copied().reduce(f64::min);
    let high = values.iter().copied().reduce(f64::max);
    match (median(values.to_vec()), low, high) {
        (Some(mid), Some(low), Some(high)) if values.len() > 1 => {
            format!("{} ({}–{})", count(mid), count(low), count(high))
        }
        (mid, _, _) => opt(mid),
    }
}

/// Figure 11's row: WebSocket handshakes per second on a public channel and on a private one
/// (a token checked per connection), beside nats-server's WebSocket listener.
fn figure_11(out: &mut String, runs: &Runs) {
    let values = |key: &str| runs.values("11", "handshake", None, key);
    let rate = |system: &str| values(&format!("{system}_per_s"));
    let (public, private, nats) = (rate("wisp_public"), rate("wisp_private"), rate("nats"));
    let share = ratio(median(private.clone()), median(public.clone()));
    let percent_of = |r: Option<f64>| r.map_or("–".into(), |r| format!("{:.0}%", r * 100.0));
    let micros =
        |key: &str| median(values(key)).map_or("–".into(), |v: f64| format!("{v:.1} µs"));
    // What a handshake costs the server's core, whatever limited the rate, and the part of
    // a private one that is the token check itself (timed in the load generator's process).
    let cost = format!(
        "server CPU a handshake: public {}, private {}, the token check alone {}",
        micros("wisp_public_server_cpu_us"),
        micros("wisp_private_server_cpu_us"),
        micros("token_check_us")
    );
    let _ = writeln!(
        out,
        "| 11 | WebSocket handshakes/s ({} connections opened at once, each dropped at its 101; median of the rounds, their range in brackets) | public channel {}; private channel, a distinct token (HMAC-SHA256) checked per connection: {} (private = {}); {cost} | nats-server's WebSocket listener {} (Wisp public = {}) | private ≥ 80% of public | {} |",
        opt(median(values("connectors"))),
        with_range(&public),
        with_range(&private),
        percent_of(share),
        with_range(&nats),
        percent_of(ratio(median(public.clone()), median(nats.clone()))),
        with_reason(
            verdict(&[share.map(|r| r >= 0.8)]),
            Some("the private handshake's extra server CPU (beside) is what lowers its rate".into())
        )
    );
}

/// Figure 11's run: each target's rate, server CPU and what failed.
fn describe_handshakes(data: &Value) -> String {
    let f = |k: String| data.get(&k).and_then(Value::as_f64);
    let target = |system: &str, name: &str| {
        let failed = f(format!("{system}_failed")).unwrap_or(0.0);
        format!(
            "{name} {} /s (server {} CPU, {:.1} µs a handshake, p99 {} ms{})",
            opt(f(format!("{system}_per_s"))),
            percent(f(format!("{system}_server_cpu"))),
            f(format!("{system}_server_cpu_us")).unwrap_or(0.0),
            ms(f(format!("{system}_p99_us"))),
            if failed > 0.0 {
                format!(", {} failed", count(failed))
            } else {
                String::new()
            }
        )
    };
    format!(
        "{}, {} (= {:.0}%; token check {:.2} µs), {}",
        target("wisp_public", "public"),
        target("wisp_private", "private"),
        f("private_vs_public".into()).unwrap_or(0.0) * 100.0,
        f("token_check_us".into()).unwrap_or(0.0),
        target("nats", "NATS")
    )
}

/// Every run's headline number, per figure and system.
fn every_run(runs: &Runs) -> String {
    let mut out = String::from("| # | system | N | runs |\n|---|---|---|---|\n");
    let mut keys: Vec<(String, String, Option<u64>)> = runs
        .0
        .iter()
        .map(|r| (r.fig.clone(), r.system.clone(), r.n))
        .collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    for (fig, system, n) in keys {
        let describe = |data: &Value| -> String {
            let f = |k: &str| data.get(k).and_then(Value::as_f64);
            match fig.as_str() {
                "1" => format!(
                    "{} req/s (server {} CPU, load generator {})",
                    opt(f("rps")),
                    percent(f("server_cpu")),
                    percent(f("loadgen_cpu"))
                ),
                "1a" => format!(
                    "{:.2} µs per invocation, wasmtime alone {:.2} µs",
                    f("wisp_invocation_us").unwrap_or(0.0),
                    f("wasmtime_instance_us").unwrap_or(0.0)
                ),
                "2" => format!(
                    "{}/{}/{} ms",
                    ms(f("p50_us")),
                    ms(f("p99_us")),
                    ms(f("p999_us"))
                ),
                "3" => format!("{:.0} ms", f("first_response_ms").unwrap_or(0.0)),
                // Figure 10's fan-out rows are figure 4's search; its other row is not.
                "4" | "4c" | "10" if fig != "10" || data.get("max_rate").is_some() => format!(
                    "{} msg/s = {} deliveries/s (p99 {} ms, server {} CPU{}){}",
                    opt(f("max_rate")),
                    opt(f("deliveries_per_s")),
                    ms(f("p99_us")),
                    percent(f("server_cpu")),
                    cpu_each(data),
                    if loadgen_bound(data) { " †" } else { "" }
                ),
                "5" => format!(
                    "{}/{} ms, {:.2}% delivered",
                    ms(f("p50_us")),
                    ms(f("p99_us")),
                    f("delivered_fraction").unwrap_or(0.0) * 100.0
                ),
                "5c" => format!(
                    "{}/{} ms, {:.2}% delivered (server {} CPU{})",
                    ms(f("p50_us")),
                    ms(f("p99_us")),
                    f("delivered_fraction").unwrap_or(0.0) * 100.0,
                    percent(f("server_cpu")),
                    cpu_each(data)
                ),
                "6" => format!(
                    "{:.2} KiB ({} held)",
                    f("per_connection_kib").unwrap_or(0.0),
                    opt(f("still_open"))
                ),
                "7" => format!(
                    "{} /s (server {} CPU)",
                    opt(f("invocations_per_s")),
                    percent(f("server_cpu"))
                ),
                "8" => format!(
                    "get {} /s, put {} /s; Redis GET {} /s, SET {} /s",
                    opt(f("wisp_get_per_s")),
                    opt(f("wisp_put_per_s")),
                    opt(f("redis_get_per_s")),
                    opt(f("redis_put_per_s"))
                ),
                "9" => format!(
                    "guest {} /s; native {} /s",
                    opt(f("wisp_requests_per_s")),
                    opt(f("native_requests_per_s"))
                ),
                "10" => format!(
                    "publishes {} /s, JetStream {} /s; {} clients caught up in {:.0} ms",
                    opt(f("wisp_publish_per_s")),
                    opt(f("jetstream_publish_per_s")),
                    opt(f("clients")),
                    f("reconnect_caught_up_ms").unwrap_or(0.0)
                ),
                "11" => describe_handshakes(data),
                _ => data.to_string(),
            }
        };
        let list: Vec<String> = runs
            .0
            .iter()
            .filter(|r| r.fig == fig && r.system == system && r.n == n)
            .map(|r| describe(&r.data))
            .collect();
        let _ = writeln!(
            out,
            "| {fig} | {system} | {} | {} |",
            n.map_or(String::new(), |n| n.to_string()),
            list.join("; ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missed_target_carries_its_reason() {
        let why = || Some("the floor".to_owned());
        assert_eq!(with_reason("**not met**", why()), "**not met**: the floor");
        assert_eq!(with_reason("**met**", why()), "**met**");
        assert_eq!(with_reason("**not met**", None), "**not met**");
    }

    #[test]
    fn medians_and_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(999.0), "999");
    }

    fn run(fig: &str, n: Option<u64>, data: Value) -> Run {
        Run {
            fig: fig.into(),
            system: "wisp".into(),
            n,
            data,
        }
    }

    /// Figures 4c and 5c sit next to figures 4 and 5, with their single-node values.
    #[test]
    fn cross_node_rows() {
        let runs = Runs(vec![
            run(
                "4",
                Some(100),
                serde_json::json!({"deliveries_per_s": 2_000_000.0, "p99_us": 9000.0}),
            ),
            run(
                "4c",
                Some(100),
                serde_json::json!({"deliveries_per_s": 500_000.0, "p99_us": 20000.0,
                    "server_cpu": 0.97, "server_cpu_each": [0.25, 0.5, 0.22]}),
            ),
            run(
                "5",
                Some(100),
                serde_json::json!({"p50_us": 400.0, "p99_us": 1200.0, "delivered_fraction": 1.0}),
            ),
            run(
                "5c",
                Some(100),
                serde_json::json!({"p50_us": 800.0, "p99_us": 3000.0, "delivered_fraction": 1.0}),
            ),
        ]);
        let quick = serde_json::json!({"mode": "quick"});
        let table = table(&runs, &quick);
        assert!(table.contains(
            "| 500,000 (p99 20.00 ms) | one node (figure 4) 2,000,000 (two nodes = 25%) | — | figure only |"
        ));
        assert!(table.contains(
            "| 4c | fan-out across two nodes, N = 1000: deliveries/s | not run with `--quick` |"
        ));
        assert!(table.contains(
            "| 0.80 / 3.00 ms (100.00% delivered) | one node (figure 5) 0.40 / 1.20 ms (100.00% delivered) | — | figure only |"
        ));
        let rows: Vec<&str> = table
            .lines()
            .map(|l| l.split(" | ").next().unwrap_or(""))
            .collect();
        let position = |row| rows.iter().position(|r| *r == row);
        assert!(position("| 4") < position("| 4c") && position("| 4c") < position("| 5"));
        assert!(position("| 5") < position("| 5c") && position("| 5c") < position("| 6"));
        assert!(every_run(&runs).contains("server 97% CPU = 25% + 50% + 22%"));

        // `--only 4c,5c`: only the figures that ran.
        let subset = serde_json::json!({"mode": "quick", "only": "4c,5c"});
        let runs = Runs(
            runs.0
                .into_iter()
                .filter(|r| r.fig.ends_with('c'))
                .collect(),
        );
        let table = super::table(&runs, &subset);
        let figs: Vec<&str> = table
            .lines()
            .skip(2)
            .map(|l| l.split(" | ").next().unwrap_or(""))
            .collect();
        assert_eq!(figs, ["| 4c", "| 4c", "| 5c"]);
        assert!(table.contains("one node (figure 4) – (two nodes = –)"));
    }

    /// Figure 11's row: medians with their range, the private share, the verdict and, when
    /// missed, the CPU each kind of handshake costs.
    #[test]
    fn handshake_row() {
        let round = |public: f64, private: f64, nats: f64| Run {
            fig: "11".into(),
            system: "handshake".into(),
            n: None,
            data: serde_json::json!({"connectors": 64, "wisp_public_per_s": public,
                "wisp_private_per_s": private, "nats_per_s": nats,
                "wisp_public_server_cpu_us": 40.0, "wisp_private_server_cpu_us": 60.0,
                "token_check_us": 1.5}),
        };
        let runs = Runs(vec![
            round(10_000.0, 6_000.0, 20_000.0),
            round(12_000.0, 6_500.0, 21_000.0),
            round(11_000.0, 7_000.0, 19_000.0),
        ]);
        let subset = serde_json::json!({"mode": "full", "only": "11"});
        let table = table(&runs, &subset);
        assert!(table.contains("(64 connections opened at once"), "{table}");
        assert!(
            table.contains("public channel 11,000 (10,000–12,000)"),
            "{table}"
        );
        assert!(
            table.contains(": 6,500 (6,000–7,000) (private = 59%)"),
            "{table}"
        );
        assert!(table.contains("listener 20,000 (19,000–21,000) (Wisp public = 55%)"));
        assert!(table.contains("server CPU a handshake: public 40.0 µs, private 60.0 µs, the token check alone 1.5 µs"), "{table}");
        assert!(table.contains("**not met**: the private handshake's extra server CPU"));
        let quick = Runs(vec![round(10_000.0, 9_000.0, 20_000.0)]);
        let table = super::table(&quick, &subset);
        assert!(table.contains("public channel 10,000; private"), "{table}");
        assert!(table.contains("| **met** |"), "{table}");
    }
}
