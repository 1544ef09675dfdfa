//! Figure 11: WebSocket handshakes per second.
//!
//! `--connectors` tasks each open a TCP connection, send a WebSocket upgrade, wait for the
//! `101 Switching Protocols` (its `Sec-WebSocket-Accept` checked), and drop the connection,
//! then open the next. A connection counts when its 101 has arrived inside the window. Three
//! targets, with the same client code:
//!
//! - `wisp_public`: a Wisp channel anyone may join;
//! - `wisp_private`: a channel of the same server whose messaging resource says
//!   `wisp: {private: true}`; every connection carries its own `?token=` (a distinct user
//!   each, HMAC-SHA256 under the server's `--ws-token-secret`, made with the host crate's own
//!   [`Tokens::issue`] before the window opens), so every handshake is a real check;
//! - `nats`: nats-server's WebSocket listener (`websocket { no_tls: true }`), which sends its
//!   INFO after the 101; it is not read.
//!
//! A connection is dropped with `SO_LINGER` 0, so the client sends RST rather than FIN: the
//! server's socket is gone from the kernel at once (no half-closed socket waiting for the
//! server to notice a FIN, no TIME_WAIT on either side to run the client's ephemeral ports
//! dry at thousands a second), and the server's read fails at once, so it frees the
//! connection without a close handshake. Both servers get the same. The server's open file
//! descriptors are counted before and after each window to show that nothing piles up.
//!
//! The targets take turns in windows of `--slice` seconds (public, private, NATS, public,
//! ...) until each has had `--duration`, after a warm-up of `--warmup` seconds each: the
//! machine is shared, and a noisy stretch of it then falls on all three rather than on
//! whichever was being measured. The tokens of a private window are made just before it,
//! enough for [`TOKEN_HEADROOM`] times the best public rate seen so far.
//!
//! Before any window, the private channel is shown to check tokens: no token gets 401, a
//! token signed with another key or for another channel 403, and a right token 101.

use crate::cpu::CpuClock;
use crate::{net, pace, stats};
use anyhow::{bail, ensure, Context};
use bytes::BytesMut;
use clap::Args as ClapArgs;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use wisp::messaging::hash::project_hash;
use wisp::messaging::token::{now_secs, Tokens};

#[derive(ClapArgs)]
pub struct Args {
    /// Wisp's address (HOST:PORT)
    #[arg(long)]
    wisp: String,
    /// The project Wisp serves: its `config.yaml` id scopes the tokens
    #[arg(long)]
    project: PathBuf,
    /// The WebSocket prefix Wisp's banner printed (`/ws-<hash>`), checked against the
    /// project's hash so that a token made here is one the server can accept
    #[arg(long)]
    ws_prefix: Option<String>,
    /// A channel of the project anyone may join
    #[arg(long, default_value = "bench-handshake")]
    public: String,
    /// A channel of the project whose messaging resource is `wisp: {private: true}`
    #[arg(long, default_value = "bench-private")]
    private: String,
    /// A file holding Wisp's `--ws-token-secret` (kept off the command line)
    #[arg(long)]
    token_secret_file: PathBuf,
    /// nats-server's WebSocket listener (HOST:PORT), measured beside Wisp
    #[arg(long)]
    nats: Option<String>,
    /// Connections being opened at once
    #[arg(long, default_value_t = 64)]
    connectors: usize,
    /// Seconds measured per target
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of one window: the targets take turns, a window each, until each has had
    /// `--duration`
    #[arg(long, default_value_t = 1.0)]
    slice: f64,
    /// Seconds of the same load per target before measuring
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Wisp's process id, for its CPU use and open descriptors
    #[arg(long)]
    wisp_pid: Option<u32>,
    /// nats-server's process id, likewise
    #[arg(long)]
    nats_pid: Option<u32>,
}

/// The handshake key every upgrade sends: RFC 6455's sample nonce. Neither server keeps
/// anything by key, so one key costs them the same as a fresh one, and the load generator
/// need not hash a new one per connection to check the answer.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The private rate a window's tokens allow for, as a multiple of the best public rate seen:
/// the tokens are made before the window, so there must be enough for a private window that
/// outruns the public ones in a noisy run.
const TOKEN_HEADROOM: f64 = 2.0;

/// How long a made token lasts: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Tokens checked in process to time [`Tokens::check`].
const CHECK_SAMPLES: usize = 20_000;

/// One handshake waiting longer than this has stalled the run.
const STALL: Duration = Duration::from_secs(10);

pub async fn run(args: Args) -> anyhow::Result<Value> {
    ensure!(args.connectors > 0, "--connectors must be at least 1");
    ensure!(args.slice > 0.0, "--slice must be more than 0 seconds");
    let mut targets = Targets::open(&args).await?;
    // Warm-up: each target once, not counted. The public rate it sees sizes the first tokens.
    for target in targets.order().into_iter().filter(|_| args.warmup > 0.0) {
        targets.window(target, args.warmup).await?;
    }
    let slices = (args.duration / args.slice).ceil().max(1.0) as usize;
    let seconds = args.duration / slices as f64;
    let mut measured: Vec<(Target, Measured)> = targets
        .order()
        .into_iter()
        .map(|target| (target, Measured::default()))
        .collect();
    for _ in 0..slices {
        for (target, total) in &mut measured {
            total.add(targets.window(*target, seconds).await?);
        }
    }
    let mut result = json!({
        "connectors": args.connectors,
        "duration_s": args.duration,
        "slices": slices,
        "warmup_s": args.warmup,
        "tokens": targets.next_user - 1,
        "token_check_us": targets.project.check_cost(&args)?,
    });
    for (target, total) in &measured {
        total.write(target.name(), &mut result);
    }
    let rate = |key: &str| result[key].as_f64().unwrap_or(0.0);
    let share = rate("wisp_private_per_s") / rate("wisp_public_per_s").max(1.0);
    result["private_vs_public"] = json!(share);
    Ok(result)
}

/// What is measured: one of the three servers and channels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    WispPublic,
    WispPrivate,
    Nats,
}

impl Target {
    /// The prefix of the target's keys in the JSON.
    fn name(self) -> &'static str {
        match self {
            Self::WispPublic => "wisp_public",
            Self::WispPrivate => "wisp_private",
            Self::Nats => "nats",
        }
    }
}

/// The targets of a run, and what makes their requests.
struct Targets<'a> {
    args: &'a Args,
    project: Project,
    public: Arc<Requests>,
    /// nats-server's WebSocket listener and its upgrade.
    nats: Option<(&'a str, Arc<Requests>)>,
    /// The next private connection's user: every token is for a user of its own (the
    /// check before the run used user 0).
    next_user: usize,
    /// The highest public rate seen, per second: it sizes each private window's tokens.
    public_rate: f64,
}

impl<'a> Targets<'a> {
    /// Reads the project, and checks that every target answers as it should before any
    /// window: 101 on the public channel and from NATS, the private channel's refusals.
    async fn open(args: &'a Args) -> anyhow::Result<Self> {
        let project = Project::open(args)?;
        let public = Requests::repeat(upgrade(&args.wisp, &project.path(&args.public, None)));
        expect(&args.wisp, &public.list[0], 101, "the public channel").await?;
        project.verify_private(args).await?;
        let nats = match &args.nats {
            Some(addr) => {
                let request = Requests::repeat(upgrade(addr, "/"));
                let what = "nats-server's WebSocket listener";
                expect(addr, &request.list[0], 101, what).await?;
                Some((addr.as_str(), Arc::new(request)))
            }
            None => None,
        };
        Ok(Self {
            args,
            project,
            public: Arc::new(public),
            nats,
            next_user: 1,
            public_rate: 0.0,
        })
    }

    /// Public, private, then NATS if given: the order of every round of windows.
    fn order(&self) -> Vec<Target> {
        let mut order = vec![Target::WispPublic, Target::WispPrivate];
        if self.nats.is_some() {
            order.push(Target::Nats);
        }
        order
    }

    /// One window of `seconds` on `target`; a private one's tokens are made just before it.
    async fn window(&mut self, target: Target, seconds: f64) -> anyhow::Result<Measured> {
        let args = self.args;
        let (addr, requests, pid) = match target {
            Target::WispPublic => (&*args.wisp, self.public.clone(), args.wisp_pid),
            Target::WispPrivate => (&*args.wisp, Arc::new(self.tokens(seconds)), args.wisp_pid),
            Target::Nats => {
                let (addr, request) = self.nats.clone().context("no --nats given")?;
                (addr, request, args.nats_pid)
            }
        };
        let measured = measure(addr, requests, pid, args.connectors, seconds).await?;
        if target == Target::WispPublic {
            self.public_rate = self.public_rate.max(measured.per_s());
        }
        Ok(measured)
    }

    /// Upgrades with fresh tokens, enough for a private window of `seconds` at
    /// [`TOKEN_HEADROOM`] times the public rate.
    fn tokens(&mut self, seconds: f64) -> Requests {
        let count =
            (self.public_rate * seconds * TOKEN_HEADROOM) as usize + 4 * self.args.connectors;
        let users = self.next_user..self.next_user + count;
        self.next_user += count;
        self.project.private_requests(self.args, users)
    }
}

/// The upgrade request for `ws://{addr}{path}`, as a browser would send it (less the
/// headers neither server reads).
fn upgrade(addr: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// The upgrade requests of one run: one used over and over (public channels), or one per
/// connection (private: each carries its own token), never used twice.
struct Requests {
    list: Vec<Vec<u8>>,
    reuse: bool,
}

impl Requests {
    fn repeat(request: Vec<u8>) -> Self {
        Self {
            list: vec![request],
            reuse: true,
        }
    }

    /// The request of the `n`th connection; `None` once one-use requests have run out.
    fn get(&self, n: usize) -> Option<&[u8]> {
        match self.reuse {
            true => self.list.first(),
            false => self.list.get(n),
        }
        .map(Vec::as_slice)
    }
}

/// Wisp's side: the project's scope (its hash) and the key its private channel's tokens are
/// signed with.
struct Project {
    /// The project's hash, the token's scope and the URL's `/ws-<hash>`.
    scope: String,
    tokens: Tokens,
    /// Whom the tokens are for: the `Host` header and the one that refuses bad ones.
    addr: String,
}

impl Project {
    /// Reads the project (with the host crate's own loader) and the secret; checks that the
    /// channels are the project's, the private one private, and the banner's hash the same.
    fn open(args: &Args) -> anyhow::Result<Self> {
        let loaded = wisp::project::load(&args.project);
        let Some(project) = loaded.project else {
            let problems: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
            bail!(
                "project {} does not load: {}",
                args.project.display(),
                problems.join("; ")
            );
        };
        let resource = |channel: &str| {
            project
                .messaging
                .iter()
                .find(|m| m.application.is_none() && m.websocket && m.matcher.matches(channel))
                .with_context(|| {
                    format!(
                        "no WebSocket messaging resource of {} covers channel `{channel}`",
                        args.project.display()
                    )
                })
        };
        ensure!(
            !resource(&args.public)?.private,
            "channel `{}` is private; --public needs one anyone may join",
            args.public
        );
        ensure!(
            resource(&args.private)?.private,
            "channel `{}` is not private (`wisp: {{private: true}}`)",
            args.private
        );
        let scope = project_hash(&project.id, None);
        if let Some(prefix) = &args.ws_prefix {
            let served = prefix.strip_prefix("/ws-").unwrap_or(prefix);
            ensure!(served == scope, "Wisp serves /ws-{served}, but project id `{}` hashes to {scope}: is it serving {}?", project.id, args.project.display());
        }
        let secret = std::fs::read_to_string(&args.token_secret_file).with_context(|| {
            format!(
                "reading the token secret {}",
                args.token_secret_file.display()
            )
        })?;
        Ok(Self {
            scope,
            tokens: Tokens::new(secret.trim().as_bytes().to_vec()),
            addr: args.wisp.clone(),
        })
    }

    /// `/ws-<hash>/<channel>`, with `?token=` if a token is given.
    fn path(&self, channel: &str, token: Option<&str>) -> String {
        let query = token.map_or(String::new(), |token| format!("?token={token}"));
        format!("/ws-{}/{channel}{query}", self.scope)
    }

    /// A token for user number `n`.
    fn token(&self, tokens: &Tokens, channel: &str, n: usize) -> String {
        let user = format!("bench-user-{n}");
        tokens.issue(&self.scope, channel, &user, TOKEN_TTL, true, now_secs())
    }

    /// Upgrades to the private channel, one for each of `users`, each with its own token.
    fn private_requests(&self, args: &Args, users: std::ops::Range<usize>) -> Requests {
        let list = users
            .map(|n| {
                let token = self.token(&self.tokens, &args.private, n);
                upgrade(&self.addr, &self.path(&args.private, Some(&token)))
            })
            .collect();
        Requests { list, reuse: false }
    }

    /// Microseconds the host crate's own [`Tokens::check`] takes for one token here, in this
    /// process: how much of a private handshake's extra cost is the check itself.
    fn check_cost(&self, args: &Args) -> anyhow::Result<f64> {
        let tokens: Vec<String> = (0..CHECK_SAMPLES)
            .map(|n| self.token(&self.tokens, &args.private, n))
            .collect();
        let now = now_secs();
        let started = Instant::now();
        let admitted = tokens
            .iter()
            .filter(|token| {
                self.tokens
                    .check(&self.scope, &args.private, token, now)
                    .is_ok()
            })
            .count();
        let elapsed = started.elapsed();
        ensure!(
            admitted == CHECK_SAMPLES,
            "{admitted} of {CHECK_SAMPLES} tokens made here check"
        );
        Ok(elapsed.as_secs_f64() * 1e6 / CHECK_SAMPLES as f64)
    }

    /// Shows that the server checks: no token gets 401, one signed with another key 403,
    /// one for the public channel 403, and a right one 101.
    async fn verify_private(&self, args: &Args) -> anyhow::Result<()> {
        let channel = &args.private;
        let forged = Tokens::new(b"not the server's key, not the server's key".to_vec());
        let cases = [
            (None, 401, "no token"),
            (
                Some(self.token(&forged, channel, 0)),
                403,
                "a token signed with another key",
            ),
            (
                Some(self.token(&self.tokens, &args.public, 0)),
                403,
                "a token for another channel",
            ),
            (
                Some(self.token(&self.tokens, channel, 0)),
                101,
                "a right token",
            ),
        ];
        for (token, status, what) in cases {
            let request = upgrade(&self.addr, &self.path(channel, token.as_deref()));
            expect(
                &self.addr,
                &request,
                status,
                &format!("the private channel with {what}"),
            )
            .await?;
        }
        Ok(())
    }
}

/// One handshake with `request`, whose answer must have `status`.
async fn expect(addr: &str, request: &[u8], status: u16, what: &str) -> anyhow::Result<()> {
    let mut buf = BytesMut::new();
    let got = tokio::time::timeout(STALL, handshake(addr, 0, request, &mut buf))
        .await
        .with_context(|| format!("{what}: no answer within {STALL:?}"))??;
    ensure!(got == status, "{what}: answered {got}, not {status}");
    Ok(())
}

/// One connection: connect (as connection `n`, see [`net::connect`]), send `request`, read
/// the answer's head. Its status; a 101 only with the right `Sec-WebSocket-Accept`. The
/// connection is then dropped with RST (see the module's doc).
async fn handshake(
    addr: &str,
    n: usize,
    request: &[u8],
    buf: &mut BytesMut,
) -> anyhow::Result<u16> {
    let stream = net::connect(addr, n)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_zero_linger().context("setting SO_LINGER 0")?;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(request)
        .await
        .context("sending the upgrade")?;
    buf.clear();
    loop {
        if !net::read_more(&mut reader, buf)
            .await
            .context("reading the answer")?
        {
            bail!("the server closed the connection before answering");
        }
        if let Some(status) = answer(buf)? {
            return Ok(status);
        }
    }
}

/// The status of a complete answer head in `buf` (checking a 101's accept key), or `None`
/// while it is incomplete.
fn answer(buf: &[u8]) -> anyhow::Result<Option<u16>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    if response
        .parse(buf)
        .context("a malformed answer")?
        .is_partial()
    {
        return Ok(None);
    }
    let status = response.code.context("an answer without a status")?;
    if status == 101 {
        let accept = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|h| h.value);
        ensure!(
            accept == Some(derive_accept_key(KEY.as_bytes()).as_bytes()),
            "a 101 without the right Sec-WebSocket-Accept"
        );
    }
    Ok(Some(status))
}

/// What one target's windows measured, added up.
struct Measured {
    tally: Tally,
    /// Seconds measured.
    seconds: f64,
    /// CPU seconds the server used meanwhile, and the load generator.
    server_cpu_s: Option<f64>,
    loadgen_cpu_s: Option<f64>,
    /// The server's open descriptors after a window less those before, the most of any.
    fds_left: Option<i64>,
}

impl Default for Measured {
    fn default() -> Self {
        Self {
            tally: Tally::default(),
            seconds: 0.0,
            server_cpu_s: Some(0.0),
            loadgen_cpu_s: Some(0.0),
            fds_left: Some(0),
        }
    }
}

impl Measured {
    fn per_s(&self) -> f64 {
        self.tally.handshakes as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }

    fn add(&mut self, other: Measured) {
        self.tally.add(other.tally);
        self.seconds += other.seconds;
        let sum = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a + b);
        self.server_cpu_s = sum(self.server_cpu_s, other.server_cpu_s);
        self.loadgen_cpu_s = sum(self.loadgen_cpu_s, other.loadgen_cpu_s);
        self.fds_left =
            self.fds_left
                .zip(other.fds_left)
                .map(|(a, b)| if b.abs() > a.abs() { b } else { a });
    }

    /// Adds these numbers to `result`, each key prefixed with `name`.
    fn write(&self, name: &str, result: &mut Value) {
        let per_s = self.per_s();
        let share = |cpu: Option<f64>| cpu.map(|cpu| cpu / self.seconds.max(f64::MIN_POSITIVE));
        // The server's CPU time per handshake: what each cost it, whatever limited the rate.
        let cpu_us = self
            .server_cpu_s
            .filter(|_| self.tally.handshakes > 0)
            .map(|cpu| cpu / self.tally.handshakes as f64 * 1e6);
        let latency = stats::summary(&self.tally.latency);
        let fields = [
            ("per_s", json!(per_s)),
            ("handshakes", json!(self.tally.handshakes)),
            ("failed", json!(self.tally.failed)),
            ("first_error", json!(self.tally.first_error)),
            ("server_cpu", json!(share(self.server_cpu_s))),
            ("server_cpu_us", json!(cpu_us)),
            ("loadgen_cpu", json!(share(self.loadgen_cpu_s))),
            ("server_fds_left", json!(self.fds_left)),
            ("p50_us", latency["p50_us"].clone()),
            ("p99_us", latency["p99_us"].clone()),
        ];
        for (key, value) in fields {
            result[format!("{name}_{key}")] = value;
        }
    }
}

/// `connectors` tasks opening connections to `addr` for `seconds`.
async fn measure(
    addr: &str,
    requests: Arc<Requests>,
    pid: Option<u32>,
    connectors: usize,
    seconds: f64,
) -> anyhow::Result<Measured> {
    let next = Arc::new(AtomicUsize::new(0));
    let fds_before = pid.and_then(open_fds);
    let (server, loadgen) = (CpuClock::start(pid), CpuClock::start(None));
    let started = Instant::now();
    let end = started + pace::seconds(seconds);
    let tasks: Vec<_> = (0..connectors)
        .map(|_| {
            let (addr, requests, next) = (addr.to_owned(), requests.clone(), next.clone());
            tokio::spawn(async move { connector(&addr, &requests, &next, end).await })
        })
        .collect();
    pace::wait_until(end).await;
    let cpu_seconds = |clock: Option<CpuClock>| {
        let wall = started.elapsed().as_secs_f64();
        clock.and_then(|c| c.utilization()).map(|u| u * wall)
    };
    let (server_cpu_s, loadgen_cpu_s) = (cpu_seconds(server), cpu_seconds(loadgen));
    let mut tally = Tally::default();
    for task in tasks {
        tally.add(task.await.context("a connector task")??);
    }
    // The server has had the last connection's RST by now; give it a moment to free it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fds_left = fds_before
        .zip(pid.and_then(open_fds))
        .map(|(before, after)| after as i64 - before as i64);
    Ok(Measured {
        tally,
        seconds,
        server_cpu_s,
        loadgen_cpu_s,
        fds_left,
    })
}

/// Handshakes counted, and what failed.
struct Tally {
    handshakes: u64,
    failed: u64,
    first_error: Option<String>,
    latency: hdrhistogram::Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            handshakes: 0,
            failed: 0,
            first_error: None,
            latency: stats::histogram(),
        }
    }
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.handshakes += other.handshakes;
        self.failed += other.failed;
        self.first_error = self.first_error.take().or(other.first_error);
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    fn fail(&mut self, error: String) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }
}

/// Opens connections one after another until `end`; counts those answered 101 by then. A
/// failed one counts as failed and the next is opened.
async fn connector(
    addr: &str,
    requests: &Requests,
    next: &AtomicUsize,
    end: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let started = Instant::now();
        if started >= end {
            return Ok(tally);
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(n) else {
            bail!(
                "the {} tokens made ran out: private handshakes outran {TOKEN_HEADROOM}× the public rate",
                requests.list.len()
            );
        };
        let outcome = tokio::time::timeout(STALL, handshake(addr, n, request, &mut buf)).await;
        let done = Instant::now();
        if done > end {
            return Ok(tally);
        }
        match outcome {
            Ok(Ok(101)) => {
                tally.handshakes += 1;
                stats::record(&mut tally.latency, done - started);
            }
            Ok(Ok(status)) => tally.fail(format!("answered {status}")),
            Ok(Err(error)) => tally.fail(format!("{error:#}")),
            Err(_) => tally.fail(format!("no answer within {STALL:?}")),
        }
    }
}

/// How many descriptors process `pid` has open.
fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_once_complete_and_a_101_must_accept_the_key() {
        let accept = derive_accept_key(KEY.as_bytes());
        let ok = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\nINFO {{}}");
        assert_eq!(answer(ok.as_bytes()).unwrap(), Some(101));
        assert_eq!(answer(&ok.as_bytes()[..20]).unwrap(), None);
        let wrong = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n";
        assert!(answer(wrong.as_bytes()).is_err());
        let refused = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(answer(refused.as_bytes()).unwrap(), Some(403));
    }

    #[test]
    fn one_use_requests_run_out_and_reused_ones_do_not() {
        let once = Requests {
            list: vec![b"a".to_vec()],
            reuse: false,
        };
        assert!(once.get(0).is_some() && once.get(1).is_none());
        assert!(Requests::repeat(b"a".to_vec()).get(1_000).is_some());
    }
}
