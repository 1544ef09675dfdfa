//! A file's bytes as a response body, read from disk a chunk at a time.

use crate::abi::http_event::BoxError;
use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The most of a file a response holds in memory at once. hyper asks for the next
/// chunk only once its write buffer has room, so a client that reads slowly holds
/// about this much of the file (and hyper's buffer), never the whole of it.
pub(super) const CHUNK: usize = 64 * 1024;

/// The next `left` bytes of `file`, from where it is positioned.
pub(super) struct FileChunks {
    file: tokio::fs::File,
    left: u64,
    /// The chunk being read; it leaves as a frame once filled.
    chunk: BytesMut,
}

impl FileChunks {
    pub fn new(file: tokio::fs::File, len: u64) -> Self {
        Self {
            file,
            left: len,
            chunk: BytesMut::new(),
        }
    }
}

impl Body for FileChunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.left).map_or(CHUNK, |left| left.min(CHUNK));
        this.chunk.resize(want, 0);
        let mut buf = ReadBuf::new(&mut this.chunk);
        match Pin::new(&mut this.file).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len();
                if read == 0 {
                    // The file shrank under the response: its length is already out,
                    // so the only honest end is a cut-off body.
                    this.left = 0;
                    let error = io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank");
                    return Poll::Ready(Some(Err(error.into())));
                }
                this.left -= read as u64;
                this.chunk.truncate(read);
                Poll::Ready(Some(Ok(Frame::data(this.chunk.split().freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}
