//! The native ceiling (figure 1): plain hyper answering `Hello, World!` with no wasm, no
//! routing and no per-request work, on the same HTTP/1.1 keep-alive stack Wisp uses.
//!
//! With `--wasm-floor`, the same server also pays wasmtime's floor for a function on every
//! request (figure 1a's [`Floor`]: a new Store, a pooled instance with a page of its memory
//! written, both dropped) and nothing else: what a host doing no work of its own beyond
//! wasmtime's would serve.

use crate::invoke::{load_function, Floor};
use bytes::Bytes;
use clap::Args as ClapArgs;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(ClapArgs)]
pub struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Also pay wasmtime's floor for a function of this project on every request
    #[arg(long, value_name = "PROJECT")]
    wasm_floor: Option<PathBuf>,
    /// The function whose floor `--wasm-floor` pays (its name in config/functions)
    #[arg(long, default_value = "hello", requires = "wasm_floor")]
    function: String,
}

/// The body every hello server in the benchmark answers: 13 bytes.
const BODY: &[u8] = b"Hello, World!";

/// Serves until killed.
pub async fn run(args: Args) -> anyhow::Result<Value> {
    let floor = match &args.wasm_floor {
        Some(project) => {
            let (app, index) = load_function(project, &args.function, Default::default())?;
            Some(Arc::new(Floor::new(
                &app.hub().deployment().functions[index],
            )?))
        }
        None => None,
    };
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!("native-hello: serving on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("native-hello: accept failed: {error}");
                continue;
            }
        };
        stream.set_nodelay(true)?;
        let floor = floor.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                let paid = floor.as_ref().map_or(Ok(()), |floor| floor.once());
                async move {
                    // No headers beyond hyper's own (content-length, date), as Wisp answers.
                    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
                    if let Err(error) = paid {
                        eprintln!("native-hello: wasmtime's floor failed: {error:#}");
                        *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    Ok::<_, Infallible>(response)
                }
            });
            // A client that goes away mid-request is not the server's problem.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
