//! A WebSocket client's connection as the fan-out reads and writes it: TCP, or TLS
//! over TCP ([`ClientStream`]).
//!
//! The flushers write clients without waiting and without owning their sockets
//! (see [`cursor`](super::cursor)), so the stream offers the socket's non-blocking
//! calls rather than `AsyncWrite`: a write takes what the socket takes now, or says
//! it would block. Over TLS a write is encrypted into the session first, and the
//! session's records go to the socket; records the socket would not take wait in the
//! session (at most [`TLS_BUFFER`]), and the next write or [`ClientStream::try_flush`]
//! sends them before anything new is taken. Plain TCP pays one branch per call.

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rustls::ServerConnection;
use std::io::{self, IoSlice, Read, Write};
use std::sync::{Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

/// Encrypted bytes a TLS client's session may hold for a socket that would block,
/// beyond what the client's send queue counts: rustls's own default, and about what
/// a socket's kernel buffer holds, so a stalled TLS client costs at most twice a
/// plain one.
pub const TLS_BUFFER: usize = 64 << 10;

/// A client's connection: the server's TCP stream, or a TLS session over one.
pub enum ClientStream {
    Plain(TcpStream),
    /// Boxed: a session is a kilobyte or so, which plain clients need not carry.
    Tls(Box<Encrypted>),
}

/// A TLS session over a TCP stream, shared by the client's reader (its connection's
/// task) and its writers (a flusher, or that task), each holding the lock only for
/// one non-blocking step.
pub struct Encrypted {
    tcp: TcpStream,
    session: Mutex<ServerConnection>,
}

impl From<TcpStream> for ClientStream {
    fn from(tcp: TcpStream) -> Self {
        Self::Plain(tcp)
    }
}

impl ClientStream {
    /// The connection under a WebSocket upgrade, and what hyper read past the request,
    /// taken back from hyper; the upgrade as it was if it is neither kind.
    pub fn from_upgrade(upgraded: Upgraded) -> Result<(Self, Bytes), Upgraded> {
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => return Ok((Self::Plain(parts.io.into_inner()), parts.read_buf)),
            Err(upgraded) => upgraded,
        };
        let parts = upgraded.downcast::<TokioIo<tokio_rustls::server::TlsStream<TcpStream>>>()?;
        // Plaintext the session decrypted and hyper did not read stays in the session,
        // where the reads below find it first.
        let (tcp, session) = parts.io.into_inner().into_inner();
        Ok((Self::tls(tcp, session), parts.read_buf))
    }

    /// The TLS session `session` over `tcp`, its handshake done.
    pub fn tls(tcp: TcpStream, mut session: ServerConnection) -> Self {
        session.set_buffer_limit(Some(TLS_BUFFER));
        let session = Mutex::new(session);
        Self::Tls(Box::new(Encrypted { tcp, session }))
    }

    /// Reads what the client sent, waiting for it: `Ok` with nothing added at the end.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Plain(tcp) => loop {
                ready!(tcp.poll_read_ready(cx))?;
                match tcp.try_read(buf.initialize_unfilled()) {
                    Ok(n) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(error) => return Poll::Ready(Err(error)),
                }
            },
            Self::Tls(tls) => tls.poll_read(cx, buf),
        }
    }

    /// Writes what the socket takes now of `bufs`, in order: how many bytes of them
    /// were taken (over TLS: encrypted, and sent or held in the session), or
    /// `WouldBlock`.
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.try_write_vectored(bufs),
            Self::Tls(tls) => tls.try_write_vectored(bufs),
        }
    }

    /// Sends what an earlier write left in the TLS session: `WouldBlock` while some is
    /// left. Nothing to do on plain TCP.
    #[inline]
    pub fn try_flush(&self) -> io::Result<()> {
        match self {
            Self::Plain(_) => Ok(()),
            Self::Tls(tls) => tls.try_flush(&mut tls.session()),
        }
    }

    /// Waits until the socket may take more.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Plain(tcp) => tcp.poll_write_ready(cx),
            Self::Tls(tls) => tls.tcp.poll_write_ready(cx),
        }
    }
}

impl Encrypted {
    fn session(&self) -> MutexGuard<'_, ServerConnection> {
        // Every step under the lock leaves the session whole or failed (rustls keeps
        // its own error state), so a panic elsewhere while it was held changes nothing.
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut session = self.session();
            match session.reader().read(buf.initialize_unfilled()) {
                // Zero: the client sent close_notify.
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: the connection ended without close_notify.
                Err(error) => return Poll::Ready(Err(error)),
            }
            match session.read_tls(&mut TryRead(&self.tcp)) {
                // The socket's end: the reader says how it ended, next time round.
                Ok(0) => continue,
                Ok(_) => {
                    if let Err(error) = session.process_new_packets() {
                        // The alert rustls queued is the client's last word from us.
                        let _ = self.try_flush(&mut session);
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
                    }
                    // A key update's answer, say. If the socket would block it goes
                    // out with the next write, which a ping brings at the latest.
                    if session.wants_write() {
                        let _ = self.try_flush(&mut session);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    drop(session);
                    ready!(self.tcp.poll_read_ready(cx))?;
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut session = self.session();
        // What is held goes first; while it cannot, nothing new is taken.
        self.try_flush(&mut session)?;
        let taken = session.writer().write_vectored(bufs)?;
        if taken == 0 && bufs.iter().any(|buf| !buf.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.try_flush(&mut session) {
            // What the socket did not take waits in the session for the next call.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(error) => Err(error),
            Ok(()) => Ok(taken),
        }
    }

    fn try_flush(&self, session: &mut ServerConnection) -> io::Result<()> {
        while session.wants_write() {
            if session.write_tls(&mut TryWrite(&self.tcp))? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

/// A socket's non-blocking reads as `io::Read`, for rustls.
struct TryRead<'a>(&'a TcpStream);

impl Read for TryRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// A socket's non-blocking writes as `io::Write`, for rustls.
struct TryWrite<'a>(&'a TcpStream);

impl Write for TryWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{PrivateKeyDer, ServerName};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpSocket;

    /// Small socket buffers, so that a client that does not read blocks the writer soon.
    const SMALL: u32 = 16 << 10;

    /// A TLS connection over loopback with small buffers: the server's side as a
    /// [`ClientStream`], the client's as tokio-rustls has it.
    async fn tls_pair() -> (ClientStream, tokio_rustls::client::TlsStream<TcpStream>) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

        let listening = TcpSocket::new_v4().unwrap();
        // Accepted sockets take the listener's send buffer.
        listening.set_send_buffer_size(SMALL).unwrap();
        listening.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listening.local_addr().unwrap();
        let listener = listening.listen(8).unwrap();
        let connecting = TcpSocket::new_v4().unwrap();
        connecting.set_recv_buffer_size(SMALL).unwrap();
        let connect = async {
            let tcp = connecting.connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
            connector.connect(name, tcp).await.unwrap()
        };
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
            acceptor.accept(tcp).await.unwrap()
        };
        let (client, server) = tokio::join!(connect, accept);
        let (tcp, session) = server.into_inner();
        (ClientStream::tls(tcp, session), client)
    }

    async fn writable(stream: &ClientStream) {
        std::future::poll_fn(|cx| stream.poll_write_ready(cx))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_tls_client_gets_every_byte_in_order_through_a_full_socket() {
        let (server, mut client) = tls_pair().await;
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let len = data.len();
        let reader = tokio::spawn(async move {
            // Not reading at first: the socket fills and the session holds the rest.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut got = vec![0; len];
            client.read_exact(&mut got).await.unwrap();
            got
        });
        let (mut at, mut blocked) = (0, 0);
        while at < len {
            // As the cursor writes: several slices at once.
            let cut = (at + 3000).min(len);
            let end = (cut + 5000).min(len);
            let slices = [IoSlice::new(&data[at..cut]), IoSlice::new(&data[cut..end])];
            match server.try_write_vectored(&slices) {
                Ok(n) => at += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    blocked += 1;
                    writable(&server).await;
                }
                Err(error) => panic!("write failed: {error}"),
            }
        }
        // What the last write left in the session.
        loop {
            match server.try_flush() {
                Ok(()) => break,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => writable(&server).await,
                Err(error) => panic!("flush failed: {error}"),
            }
        }
        assert!(blocked > 0, "the socket never filled up");
        assert!(reader.await.unwrap() == data, "the bytes came changed");
    }

    /// What one read of `server` gives.
    async fn read(server: &ClientStream) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = std::future::poll_fn(|cx| {
            let mut read = ReadBuf::new(&mut buf);
            ready!(server.poll_read(cx, &mut read))?;
            Poll::Ready(Ok::<_, io::Error>(read.filled().len()))
        })
        .await
        .unwrap();
        buf[..n].to_vec()
    }

    #[tokio::test]
    async fn reads_come_out_of_the_session_until_the_client_closes() {
        let (server, mut client) = tls_pair().await;
        client.write_all(b"hello").await.unwrap();
        client.flush().await.unwrap();
        assert_eq!(read(&server).await, b"hello");
        // close_notify: the end, as a plain socket's end reads.
        client.shutdown().await.unwrap();
        assert_eq!(read(&server).await, b"");
    }
}
