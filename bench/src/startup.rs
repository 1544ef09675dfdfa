//! Start to first response (figure 3): spawns the server command, then asks `--url` every
//! millisecond until it answers 2xx; the time from spawn to that answer is the figure. The
//! server is killed afterwards.

use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use hyper::Uri;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

#[derive(ClapArgs)]
pub struct Args {
    /// URL that answers 2xx once the server is ready, e.g. http://127.0.0.1:8080/ping
    #[arg(long)]
    url: String,
    /// Seconds to wait for the first answer
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// The server command and its arguments (after `--`)
    #[arg(trailing_var_arg = true, required = true)]
    command: Vec<String>,
}

/// Time between attempts: short against a start that takes tens of milliseconds.
const POLL: Duration = Duration::from_millis(1);

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let uri: Uri = args.url.parse().context("parsing --url")?;
    let authority = uri.authority().context("--url needs a host")?.clone();
    let addr = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n",
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let (program, rest) = args.command.split_first().context("no command")?;
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let deadline = started + crate::pace::seconds(args.timeout);
    let answered = loop {
        if let Ok(Some(status)) = get(&addr, &request).await {
            if (200..300).contains(&status) {
                break started.elapsed();
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("{program} exited ({status}) before answering {}", args.url);
        }
        if Instant::now() > deadline {
            bail!("{} did not answer 2xx within {}s", args.url, args.timeout);
        }
        tokio::time::sleep(POLL).await;
    };
    child.start_kill()?;
    child.wait().await?;
    Ok(json!({"url": args.url, "first_response_ms": answered.as_secs_f64() * 1e3}))
}

/// One GET on a fresh connection; the status code, or `None` if nobody is listening yet.
async fn get(addr: &str, request: &str) -> anyhow::Result<Option<u16>> {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return Ok(None);
    };
    stream.write_all(request.as_bytes()).await?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).await?;
    Ok(line.split(' ').nth(1).and_then(|code| code.parse().ok()))
}
