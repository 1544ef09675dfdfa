//! The native ceiling (figure 1): plain hyper answering `Hello, World!` with no wasm, no
//! routing and no per-request work, on the same HTTP/1.1 keep-alive stack Wisp uses.

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
use tokio::net::TcpListener;

#[derive(ClapArgs)]
pub struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
}

/// The body every hello server in the benchmark answers: 13 bytes.
const BODY: &[u8] = b"Hello, World!";

/// Serves until killed.
pub async fn run(args: Args) -> anyhow::Result<Value> {
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
        tokio::spawn(async move {
            let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                // No headers beyond hyper's own (content-length, date), as Wisp answers.
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
            });
            // A client that goes away mid-request is not the server's problem.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
