//! What the fan-out's unit tests share: a broker with feeds on it, connected
//! socket pairs, and a reader of the frames a client gets.

use super::feed::Feeds;
use super::flusher::Flushers;
use super::stream::ClientStream;
use crate::messaging::broker::{Broker, LocalBroker, SinkId};
use crate::messaging::Message;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A broker, the feeds on it with `flushers` flushers, and a listener for
/// connections.
pub async fn fixture(flushers: usize) -> (Arc<dyn Broker>, Feeds, TcpListener) {
    let broker: Arc<dyn Broker> = Arc::new(LocalBroker::new());
    let feeds = Feeds::new(broker.clone(), Flushers::start(flushers));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (broker, feeds, listener)
}

/// A connected pair: the server's side and the client's.
pub async fn pair(listener: &TcpListener) -> (ClientStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (server, client) = tokio::join!(listener.accept(), client);
    (server.unwrap().0.into(), client.unwrap())
}

/// Reads whole unmasked frames until `count` payloads have come.
pub async fn payloads(client: &mut TcpStream, count: usize) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < count {
        let mut chunk = [0; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut chunk))
            .await
            .expect("frames within 5 s")
            .unwrap();
        assert!(n > 0, "closed after {} of {count} frames", out.len());
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 2 && buf.len() >= 2 + usize::from(buf[1]) {
            let len = usize::from(buf[1]);
            assert!(len < 126, "test frames are short");
            out.push(buf[2..2 + len].to_vec());
            buf.drain(..2 + len);
        }
    }
    assert!(buf.is_empty(), "nothing past the expected frames");
    out
}

/// A message on channel `c`, published by connection `origin` if given.
pub fn message(text: &str, origin: Option<u64>) -> Arc<Message> {
    Arc::new(Message::new(
        "c",
        Bytes::copy_from_slice(text.as_bytes()),
        None,
        origin.map(SinkId::Socket),
    ))
}
