//! Figure 8: database puts and gets from a guest, against Redis `SET` and `GET` from a
//! native client, in the same run.
//!
//! The guest (`bench/guests/kv`) runs `--per-call` database calls per invocation, in this
//! process, through the same runtime and SQLite engine `wisp serve` uses (a file in a
//! fresh folder): the rate counts every call and the invocations around them. The Redis
//! side is one connection issuing one command at a time and waiting for each answer, the
//! way a function would call it; same 1,000 keys, same 100-byte values. Redis answers over
//! loopback, so its rate includes a round trip per command that Wisp's in-process calls
//! do not pay: that is the difference between the two designs, and what the figure shows.

use crate::invoke::{invoke_http, load_function};
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(ClapArgs)]
pub struct Args {
    /// The project with the `kv` function and its `bench` database
    #[arg(long, default_value = "bench/project")]
    project: PathBuf,
    /// A Redis server to compare with (HOST:PORT); without it only Wisp is measured
    #[arg(long)]
    redis: Option<String>,
    /// Seconds to measure each of the four loops
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Database calls per invocation
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    per_call: u64,
}

/// Keys cycled through, as the guest does.
const KEYS: u64 = 1000;

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let duration = Duration::from_secs_f64(args.duration);
    let (app, index) = load_function(&args.project, "kv", Default::default())?;
    let mut result = json!({ "per_invocation": args.per_call });
    for op in ["put", "get"] {
        let head = hyper::Request::get(format!("/kv?op={op}&n={}", args.per_call))
            .header(hyper::header::HOST, "bench")
            .body(())
            .context("building the benchmark's request")?
            .into_parts()
            .0;
        // Warm-up; for `get`, the puts before it have filled every key.
        invoke_http(&app, index, &head).await?;
        let started = Instant::now();
        let mut calls = 0;
        while started.elapsed() < duration {
            invoke_http(&app, index, &head).await?;
            calls += args.per_call;
        }
        result[format!("wisp_{op}_per_s")] = json!(calls as f64 / started.elapsed().as_secs_f64());
    }
    if let Some(addr) = &args.redis {
        let mut redis = Redis::connect(addr).await?;
        let value = "v".repeat(100);
        for op in ["put", "get"] {
            let started = Instant::now();
            let mut calls = 0u64;
            while started.elapsed() < duration {
                for _ in 0..100 {
                    let key = format!("k{}", calls % KEYS);
                    match op {
                        "put" => redis.command(&["SET", &key, &value]).await?,
                        _ => redis.command(&["GET", &key]).await?,
                    }
                    calls += 1;
                }
            }
            result[format!("redis_{op}_per_s")] =
                json!(calls as f64 / started.elapsed().as_secs_f64());
        }
    }
    Ok(result)
}

/// Just enough of a Redis client: one command at a time, in RESP, the answer read whole.
struct Redis {
    stream: BufReader<TcpStream>,
    line: String,
}

impl Redis {
    async fn connect(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to Redis at {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            line: String::new(),
        })
    }

    async fn command(&mut self, parts: &[&str]) -> anyhow::Result<()> {
        let mut out = format!("*{}\r\n", parts.len());
        for part in parts {
            out.push_str(&format!("${}\r\n{part}\r\n", part.len()));
        }
        self.stream.get_mut().write_all(out.as_bytes()).await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        match self.line.as_bytes().first() {
            Some(b'+') | Some(b':') => Ok(()),
            // A bulk string: its bytes and CRLF follow (none for a missing key, `$-1`).
            Some(b'$') => {
                let len: i64 = self.line[1..].trim().parse()?;
                if len >= 0 {
                    let mut rest = vec![0; len as usize + 2];
                    tokio::io::AsyncReadExt::read_exact(&mut self.stream, &mut rest).await?;
                }
                Ok(())
            }
            _ => bail!("Redis answered {:?}", self.line.trim_end()),
        }
    }
}
