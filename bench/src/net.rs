//! Client sockets: TCP_NODELAY, and source addresses spread over 127.0.0.0/8.
//!
//! Every client connection gets `TCP_NODELAY`, as the servers set it on their side, so no
//! small message waits for Nagle's algorithm.
//!
//! Against a loopback server, connections are spread over several source addresses (Linux
//! routes all of 127.0.0.0/8 to `lo`), [`PER_SOURCE`] to each. The N subscribers of a fan-out
//! stand for N different clients: a server that limits connections per client address (Wisp
//! does) must see them as such, and 10,000 connections must not exhaust one address's
//! ephemeral ports.

use anyhow::Context;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::{lookup_host, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket over a plain TCP connection.
pub type WebSocket = WebSocketStream<TcpStream>;

/// Bytes asked of the kernel per read by the clients that parse in place.
const READ_CHUNK: usize = 16 << 10;

/// Reads more of `reader` onto the end of `buf`, for clients that parse messages in place
/// out of one buffer; `false` once the connection has ended.
pub async fn read_more(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut bytes::BytesMut,
) -> io::Result<bool> {
    use tokio::io::AsyncReadExt;
    buf.reserve(READ_CHUNK);
    Ok(reader.read_buf(buf).await? > 0)
}

/// Connections that share one source address.
pub const PER_SOURCE: usize = 250;

/// Connects connection number `index` to `addr` (`host:port`).
pub async fn connect(addr: &str, index: usize) -> io::Result<TcpStream> {
    let target = resolve(addr).await?;
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if target.ip().is_loopback() && target.is_ipv4() {
        socket.bind(SocketAddr::new(source_address(index), 0))?;
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens a WebSocket to `ws://{addr}{path}` as connection number `index` (see [`connect`]).
pub async fn websocket(
    addr: &str,
    path: &str,
    index: usize,
    config: Option<WebSocketConfig>,
) -> anyhow::Result<WebSocket> {
    let stream = connect(addr, index)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let url = format!("ws://{addr}{path}");
    // tungstenite zeroes its whole read buffer before every read: its 128 KiB default
    // made zeroing the load generator's largest cost. A round of fan-out messages
    // fits in a few KiB.
    let config = config.unwrap_or_else(|| WebSocketConfig::default().read_buffer_size(8 << 10));
    let (socket, _) =
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
            .await
            .with_context(|| format!("WebSocket handshake with {url}"))?;
    Ok(socket)
}

/// The first address `addr` resolves to.
pub async fn resolve(addr: &str) -> io::Result<SocketAddr> {
    lookup_host(addr).await?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{addr} resolves to nothing"),
        )
    })
}

/// 127.0.0.1 for the first [`PER_SOURCE`] connections, then 127.0.0.2, ... 127.0.1.1, ...
fn source_address(index: usize) -> IpAddr {
    let group = index / PER_SOURCE;
    // 254 hosts per /24 (skip .0 and .255), 256 /24s: far more than any run needs.
    let third = u8::try_from(group / 254 % 256).unwrap_or(0);
    let fourth = u8::try_from(group % 254 + 1).unwrap_or(1);
    IpAddr::V4(Ipv4Addr::new(127, 0, third, fourth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_change_every_per_source_connections() {
        assert_eq!(source_address(0).to_string(), "127.0.0.1");
        assert_eq!(source_address(PER_SOURCE - 1).to_string(), "127.0.0.1");
        assert_eq!(source_address(PER_SOURCE).to_string(), "127.0.0.2");
        assert_eq!(source_address(PER_SOURCE * 254).to_string(), "127.0.1.1");
    }
}
