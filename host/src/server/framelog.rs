//! One channel's outgoing WebSocket frames, written once and read by every client.
//!
//! A publish appends the message's encoded frame to the channel's [`Log`]; each
//! client keeps only a cursor, an offset into the log. Writing a client out is one
//! `writev` of the log from its cursor: consecutive frames sit next to each other
//! in memory, so a round's worth of messages is one or two slices, whatever their
//! number. A publish costs one copy of the frame, not one queue append per client.
//!
//! Offsets are absolute and never reused: the log is a run of [`Chunk`]s, each
//! holding the frames from its `start` on. Frames never span chunks; a frame that
//! does not fit in the last chunk starts a new one. Chunks are dropped from the
//! front once every client's cursor is past them.
//!
//! Readers take a [`View`] (the chunks and the end offset, under the log's lock)
//! and read below its end without the lock. The writer only ever appends past the
//! end, so readers and the writer never touch the same bytes.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes of the first chunk; each new chunk doubles, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 4 << 10;
/// Bytes of a full-size chunk (a larger frame gets a chunk of its own size).
const MAX_CHUNK: usize = 64 << 10;

/// A fixed buffer that is only appended to.
pub struct Chunk {
    /// The log offset of the chunk's first byte.
    start: u64,
    ptr: NonNull<u8>,
    capacity: usize,
    /// Bytes written. Only the log's owner uses it, under its lock (readers go by
    /// their view's end), so relaxed loads and stores are enough.
    filled: AtomicUsize,
}

// SAFETY: the bytes below a reader's view are never written again, and writes go
// only through `&mut Log` (see `Chunk::push`).
unsafe impl Send for Chunk {}
unsafe impl Sync for Chunk {}

impl Chunk {
    fn new(start: u64, capacity: usize) -> Self {
        let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(capacity));
        Self {
            start,
            // A Vec's pointer is never null (dangling but non-null when empty).
            ptr: NonNull::new(buffer.as_mut_ptr()).expect("Vec pointers are non-null"),
            capacity: buffer.capacity(),
            filled: AtomicUsize::new(0),
        }
    }

    fn room(&self) -> usize {
        self.capacity - self.filled.load(Ordering::Relaxed)
    }

    /// Appends `bytes`, which must fit ([`room`](Self::room)).
    ///
    /// # Safety
    /// No other `push` on this chunk may run at the same time. Only
    /// [`Log::append`] calls it, through `&mut Log`, so this holds.
    unsafe fn push(&self, bytes: &[u8]) {
        assert!(bytes.len() <= self.room(), "frame does not fit the chunk");
        let filled = self.filled.load(Ordering::Relaxed);
        // SAFETY: `filled + len <= capacity`, inside the allocation; no reader has a
        // view past `filled`, and the caller guarantees a single writer.
        unsafe {
            self.ptr
                .as_ptr()
                .add(filled)
                .copy_from_nonoverlapping(bytes.as_ptr(), bytes.len());
        }
        self.filled.store(filled + bytes.len(), Ordering::Relaxed);
    }

    /// The bytes at log offsets `range`, which a [`View`] has shown to be written.
    fn bytes(&self, range: Range<u64>) -> &[u8] {
        let from = usize::try_from(range.start - self.start).expect("offset inside the chunk");
        let to = usize::try_from(range.end - self.start).expect("offset inside the chunk");
        assert!(from <= to && to <= self.capacity, "range outside the chunk");
        // SAFETY: inside the allocation, and written before the view that names the
        // range was taken (under the log's lock); never written again.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(from), to - from) }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: the pointer and capacity came from a Vec<u8> that was never freed;
        // a length of 0 drops no elements (bytes need none).
        drop(unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), 0, self.capacity) });
    }
}

/// The frames still wanted by some client.
#[derive(Default)]
pub struct Log {
    /// Oldest first; chunk `i + 1` starts where chunk `i`'s frames end.
    chunks: VecDeque<Arc<Chunk>>,
    /// The same chunks, as views hand them out; rebuilt when the list changes.
    shared: Arc<[Arc<Chunk>]>,
    /// Where each frame still held starts, oldest first.
    frames: VecDeque<u64>,
    /// The offset one past the last frame.
    end: u64,
    /// The capacity of the next new chunk.
    next_chunk: usize,
}

impl Log {
    /// Appends one whole frame; returns the offsets it takes.
    pub fn append(&mut self, frame: &[u8]) -> Range<u64> {
        let start = self.end;
        if self.chunks.back().is_none_or(|c| c.room() < frame.len()) {
            let capacity = self.next_chunk.clamp(FIRST_CHUNK, MAX_CHUNK);
            self.next_chunk = (capacity * 2).min(MAX_CHUNK);
            self.chunks
                .push_back(Arc::new(Chunk::new(start, capacity.max(frame.len()))));
            self.share();
        }
        let last = self.chunks.back().expect("a chunk was just ensured");
        // SAFETY: `&mut self` makes this the only writer of the log's chunks.
        unsafe { last.push(frame) };
        self.frames.push_back(start);
        self.end = start + frame.len() as u64;
        start..self.end
    }

    /// The end offset: where the next frame will start.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// What readers may read now.
    pub fn view(&self) -> View {
        View {
            chunks: self.shared.clone(),
            end: self.end,
        }
    }

    /// Whether the log holds any chunk (so [`trim`](Self::trim) has work).
    pub fn holds_any(&self) -> bool {
        !self.chunks.is_empty()
    }

    /// Drops the chunks whose frames all lie below `low`: every client is past them.
    pub fn trim(&mut self, low: u64) {
        let before = self.chunks.len();
        while let Some(first) = self.chunks.front() {
            let end = self.chunks.get(1).map_or(self.end, |next| next.start);
            if end > low {
                break;
            }
            debug_assert!(first.start <= low);
            self.chunks.pop_front();
        }
        if self.chunks.len() == before {
            return;
        }
        let kept_from = self.chunks.front().map_or(self.end, |c| c.start);
        while self.frames.front().is_some_and(|&f| f < kept_from) {
            self.frames.pop_front();
        }
        if self.frames.is_empty() && self.frames.capacity() > 1024 {
            self.frames = VecDeque::new();
        }
        self.share();
    }

    /// The first frame boundary at or after `at`: where a frame begun before `at` ends.
    pub fn boundary_from(&self, at: u64) -> u64 {
        let index = self.frames.partition_point(|&start| start < at);
        self.frames.get(index).copied().unwrap_or(self.end)
    }

    fn share(&mut self) {
        self.shared = self.chunks.iter().cloned().collect();
    }
}

/// A reader's snapshot of the log: every byte below `end` is written.
pub struct View {
    chunks: Arc<[Arc<Chunk>]>,
    pub end: u64,
}

impl View {
    /// Adds slices of the log's bytes `from..to` (`to <= end`) to `out`, as many as
    /// fit (one per chunk crossed); returns the offset covered up to.
    pub fn slices<'a>(&'a self, from: u64, to: u64, out: &mut Slices<'a>) -> u64 {
        debug_assert!(to <= self.end);
        let mut at = from;
        let mut index = self
            .chunks
            .partition_point(|c| c.start <= at)
            .saturating_sub(1);
        while at < to && !out.full() {
            let Some(chunk) = self.chunks.get(index) else {
                break;
            };
            let chunk_end = self.chunks.get(index + 1).map_or(self.end, |n| n.start);
            let stop = to.min(chunk_end);
            if stop > at {
                out.push(chunk.bytes(at..stop), Piece::Log { from: at, to: stop });
                at = stop;
            }
            index += 1;
        }
        at
    }

    /// Copies the log's bytes `range` (below `end`).
    pub fn copy(&self, range: Range<u64>) -> Vec<u8> {
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        let mut slices = Slices::default();
        let mut at = range.start;
        while at < range.end {
            slices.clear();
            at = self.slices(at, range.end, &mut slices);
            for slice in slices.slices() {
                out.extend_from_slice(slice);
            }
        }
        out
    }
}

/// Slices handed to the kernel per `writev` call.
pub const IOVECS: usize = 64;

/// What one slice of a write is: the log's bytes `from..to`, or (the rest of) a
/// frame of the client's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    Log { from: u64, to: u64 },
    Own,
}

/// The slices of one `writev`, and what each one is.
pub struct Slices<'a> {
    slices: [IoSlice<'a>; IOVECS],
    pieces: [Piece; IOVECS],
    len: usize,
}

impl Default for Slices<'_> {
    fn default() -> Self {
        Self {
            slices: [IoSlice::new(&[]); IOVECS],
            pieces: [Piece::Own; IOVECS],
            len: 0,
        }
    }
}

impl<'a> Slices<'a> {
    pub fn full(&self) -> bool {
        self.len == IOVECS
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn push(&mut self, bytes: &'a [u8], piece: Piece) {
        assert!(!self.full(), "no room for another slice");
        self.slices[self.len] = IoSlice::new(bytes);
        self.pieces[self.len] = piece;
        self.len += 1;
    }

    pub fn slices(&self) -> &[IoSlice<'a>] {
        &self.slices[..self.len]
    }

    /// What each slice is, once the slices themselves are no longer needed.
    pub fn take_pieces(self) -> PieceList {
        PieceList {
            pieces: self.pieces,
            len: self.len,
        }
    }
}

/// The pieces of a write, as [`Slices::take_pieces`] hands them over.
pub struct PieceList {
    pieces: [Piece; IOVECS],
    len: usize,
}

impl std::ops::Deref for PieceList {
    type Target = [Piece];

    fn deref(&self) -> &[Piece] {
        &self.pieces[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, len: usize) -> Vec<u8> {
        vec![tag; len]
    }

    fn read(view: &View, range: Range<u64>) -> Vec<u8> {
        view.copy(range)
    }

    #[test]
    fn frames_stay_whole_and_in_order_across_chunks() {
        let mut log = Log::default();
        let mut expected = Vec::new();
        let mut ranges = Vec::new();
        // Sizes that leave odd gaps at chunk ends, and one larger than any chunk.
        for (i, len) in [100, 3000, 2000, 70_000, 5, 40_000, 30_000]
            .into_iter()
            .enumerate()
        {
            let f = frame(i as u8, len);
            ranges.push(log.append(&f));
            expected.extend_from_slice(&f);
        }
        let view = log.view();
        assert_eq!(view.end, expected.len() as u64);
        assert_eq!(read(&view, 0..view.end), expected);
        for (i, range) in ranges.iter().enumerate() {
            assert!(read(&view, range.clone()).iter().all(|&b| b == i as u8));
            assert_eq!(log.boundary_from(range.start), range.start);
            assert_eq!(log.boundary_from(range.start + 1), range.end);
        }
    }

    #[test]
    fn a_view_reads_the_same_bytes_while_the_log_grows_and_trims() {
        let mut log = Log::default();
        let first = log.append(&frame(1, 3000));
        let view = log.view();
        for i in 0..100 {
            log.append(&frame(i, 1000));
        }
        log.trim(log.end());
        assert!(!log.holds_any(), "everyone is past every frame");
        // The old view still holds its chunks.
        assert_eq!(read(&view, first), frame(1, 3000));
    }

    #[test]
    fn trim_keeps_every_chunk_a_cursor_still_needs() {
        let mut log = Log::default();
        let ranges: Vec<_> = (0..200)
            .map(|i| log.append(&frame(i as u8, 1000)))
            .collect();
        let keep = ranges[150].start + 10; // a cursor inside frame 150
        log.trim(keep);
        let view = log.view();
        assert_eq!(read(&view, keep..view.end).len() as u64, view.end - keep);
        assert_eq!(log.boundary_from(keep), ranges[151].start);
        assert!(view.chunks.first().unwrap().start <= keep);
    }

    #[test]
    fn slices_stop_when_the_write_is_full() {
        let mut log = Log::default();
        // Frames the size of whole chunks: one slice per frame.
        for i in 0..(IOVECS + 10) {
            log.append(&frame(i as u8, MAX_CHUNK));
        }
        let view = log.view();
        let mut slices = Slices::default();
        let covered = view.slices(0, view.end, &mut slices);
        assert!(slices.full());
        assert!(covered < view.end);
        let total: usize = slices.slices().iter().map(|s| s.len()).sum();
        assert_eq!(total as u64, covered);
    }
}
