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
    let markdown = render(&runs, &machine, &commands);
    std::fs::write(&args.out, &markdown)
        .with_context(|| format!("writing {}", args.out.display()))?;
    print!("{}", table(&runs, &machine));
    Ok(Value::Null)
}

fn render(runs: &Runs, machine: &Value, commands: &[Value]) -> String {
    let field = |key: &str| machine[key].as_str().unwrap_or("?").to_owned();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Performance\n\n\
         Written by `bench/run{}` on {}; it took {}. Rerun with `bench/run` (full, three runs per \
         figure) or `bench/run --quick` (one short run per figure, N = 100 only). Every row \
         shows Wisp and its peers from the same run of the script.\n",
        if field("mode") == "quick" {
            " --quick"
        } else {
            ""
        },
        field("date"),
        field("elapsed"),
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
omission), recorded in HdrHistogram.\n\
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
(figures 4, 5, 7), and `--max-connections` is raised for figure 6's 10,000 connections.\n\
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
    // 1. HTTP throughput.
    let rps = |s| runs.median("1", s, None, "rps");
    let (wisp, native, wasmtime) = (rps("wisp"), rps("native"), rps("wasmtime"));
    let vs_wasmtime = ratio(wisp, wasmtime);
    let vs_native = ratio(wisp, native);
    let _ = writeln!(
        out,
        "| 1 | HTTP hello, requests/s (13-byte body, 64 keep-alive connections) | {} | native hyper {} (Wisp = {:.0}%); wasmtime serve {} (Wisp = {}) | ≥ 3× wasmtime serve, ≥ 50% of native | {} |",
        opt(wisp),
        opt(native),
        vs_native.unwrap_or(0.0) * 100.0,
        opt(wasmtime),
        times(vs_wasmtime),
        verdict(&[vs_wasmtime.map(|r| r >= 3.0), vs_native.map(|r| r >= 0.5)])
    );
    // 2. HTTP latency at half of each system's max.
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
        verdict(&[ratio(wisp_p99, native_p99).map(|r| r <= 2.0)])
    );
    // 3. Start to first response.
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
    // 4. Fan-out.
    for n in [100, 1000] {
        let d = |s| runs.median("4", s, Some(n), "deliveries_per_s");
        let (wisp, redis, nats, py) = (d("wisp"), d("redis"), d("nats"), d("pybroker"));
        if wisp.is_none() && redis.is_none() {
            let skipped = if machine["mode"].as_str() == Some("quick") {
                "not run with `--quick`"
            } else {
                "no result"
            };
            let _ = writeln!(
                out,
                "| 4 | fan-out, N = {n}: deliveries/s | {skipped} | | | |"
            );
            continue;
        }
        let p99 = |s| ms(runs.median("4", s, Some(n), "p99_us"));
        let mark = |s| {
            if runs.any("4", s, Some(n), loadgen_bound) {
                "†"
            } else {
                ""
            }
        };
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
    let flagged = ["wisp", "redis", "nats", "pybroker"].iter().any(|s| {
        [100, 1000]
            .iter()
            .any(|&n| runs.any("4", s, Some(n), loadgen_bound))
    });
    // 5. Publish→deliver latency.
    let p = |s, k| runs.median("5", s, Some(100), k);
    let delivered =
        |s| p(s, "delivered_fraction").map_or("–".into(), |f| format!("{:.2}%", f * 100.0));
    let _ = writeln!(
        out,
        "| 5 | publish→deliver latency p50 / p99, 100 subscribers × 1,000 msg/s | {} / {} ms ({} delivered) | NATS {} / {} ms ({} delivered) | Wisp p99 ≤ 2× NATS (is {}) | {} |",
        ms(p("wisp", "p50_us")),
        ms(p("wisp", "p99_us")),
        delivered("wisp"),
        ms(p("nats", "p50_us")),
        ms(p("nats", "p99_us")),
        delivered("nats"),
        times(ratio(p("wisp", "p99_us"), p("nats", "p99_us"))),
        verdict(&[ratio(p("wisp", "p99_us"), p("nats", "p99_us")).map(|r| r <= 2.0)])
    );
    // 6. Idle connection memory.
    let kib = runs.median("6", "wisp", None, "per_connection_kib");
    let opened = runs.median("6", "wisp", None, "still_open");
    let _ = writeln!(
        out,
        "| 6 | memory per idle WebSocket connection (RSS growth / N, N = 10,000) | {} KiB ({} connections held) | itself | ≤ 8 KiB | {} |",
        kib.map_or("–".into(), |k| format!("{k:.1}")),
        opt(opened),
        verdict(&[kib.map(|k| k <= 8.0 && opened.unwrap_or(0.0) >= 10_000.0)])
    );
    // 7. Pub/sub-triggered invocations.
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
    if flagged {
        out.push_str(
            "\n† In at least one run the load generator itself fell behind its schedule at the \
             first rate that failed (send lag p99 over 5 ms), so the system may sustain more: \
             the figure is a lower bound.\n",
        );
    }
    out
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
                "2" => format!(
                    "{}/{}/{} ms",
                    ms(f("p50_us")),
                    ms(f("p99_us")),
                    ms(f("p999_us"))
                ),
                "3" => format!("{:.0} ms", f("first_response_ms").unwrap_or(0.0)),
                "4" => format!(
                    "{} msg/s = {} deliveries/s (p99 {} ms, server {} CPU){}",
                    opt(f("max_rate")),
                    opt(f("deliveries_per_s")),
                    ms(f("p99_us")),
                    percent(f("server_cpu")),
                    if loadgen_bound(data) { " †" } else { "" }
                ),
                "5" => format!(
                    "{}/{} ms, {:.2}% delivered",
                    ms(f("p50_us")),
                    ms(f("p99_us")),
                    f("delivered_fraction").unwrap_or(0.0) * 100.0
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
    fn medians_and_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(999.0), "999");
    }
}
