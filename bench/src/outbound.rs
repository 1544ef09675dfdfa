//! Figure 9: outbound HTTP calls from a guest, against a native hyper client, to the same
//! local server, in the same run.
//!
//! The upstream is a hyper HTTP/1.1 server in this process answering `hello`. The guest
//! (`bench/guests/fetch`) sends `--per-call` GETs per invocation, one after another on one
//! client, reading each body: the rate counts every request and the invocations around
//! them. The native side is hyper's pooled client in this process sending one GET at a time
//! and reading each body, the way the guest does.

use crate::invoke::{invoke_http, load_function};
use anyhow::Context;
use bytes::Bytes;
use clap::Args as ClapArgs;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(ClapArgs)]
pub struct Args {
    /// The project with the `fetch` function
    #[arg(long, default_value = "bench/project")]
    project: PathBuf,
    /// Seconds to measure each side
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Requests per invocation
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    per_call: u64,
}

/// Serves `hello` on 127.0.0.1:0, on this runtime.
async fn upstream() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"hello",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let duration = Duration::from_secs_f64(args.duration);
    let addr = upstream().await?;
    let url = format!("http://{addr}/hello");
    let (app, index) = load_function(&args.project, "fetch", Default::default())?;
    let head = hyper::Request::get(format!("/fetch?url={url}&n={}", args.per_call))
        .header(hyper::header::HOST, "bench")
        .body(())
        .context("building the benchmark's request")?
        .into_parts()
        .0;
    invoke_http(&app, index, &head).await?; // warm-up: the pool holds a connection
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < duration {
        invoke_http(&app, index, &head).await?;
        requests += args.per_call;
    }
    let wisp = requests as f64 / started.elapsed().as_secs_f64();

    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = url.parse()?;
    let get = || async {
        let response = client.get(uri.clone()).await?;
        anyhow::ensure!(
            response.status() == 200,
            "the upstream answered {}",
            response.status()
        );
        response.into_body().collect().await?;
        anyhow::Ok(())
    };
    get().await?;
    let started = Instant::now();
    let mut requests = 0u64;
    while started.elapsed() < duration {
        for _ in 0..100 {
            get().await?;
            requests += 1;
        }
    }
    let native = requests as f64 / started.elapsed().as_secs_f64();
    Ok(json!({
        "per_invocation": args.per_call,
        "wisp_requests_per_s": wisp,
        "native_requests_per_s": native,
    }))
}
