//! Bounds-checked access to a guest's linear memory.
//!
//! Guest pointers and lengths are untrusted input. Every host call goes through
//! [`GuestMemory`], which checks each `(ptr, len)` against the memory's current size
//! before touching it: a bad pointer becomes an errno for the guest, never a host
//! panic and never a write outside the guest's memory.

use wisp_abi::Errno;

/// A guest's linear memory, borrowed for the duration of one host call.
pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

impl<'a> GuestMemory<'a> {
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Self { bytes }
    }

    /// The range `ptr..ptr+len`, if it lies wholly inside the memory.
    fn range(&self, ptr: i32, len: i32) -> Result<std::ops::Range<usize>, Errno> {
        // Both arrive as i32 but are u32 addresses and sizes on wasm32.
        let start = ptr as u32 as usize;
        let len = len as u32 as usize;
        let end = start.checked_add(len).ok_or(Errno::AddressOutOfMemory)?;
        if end > self.bytes.len() {
            return Err(Errno::AddressOutOfMemory);
        }
        Ok(start..end)
    }

    /// Reads `len` bytes at `ptr`.
    pub fn slice(&self, ptr: i32, len: i32) -> Result<&[u8], Errno> {
        let range = self.range(ptr, len)?;
        Ok(&self.bytes[range])
    }

    /// Reads a UTF-8 string at `ptr`, or `None` if the bytes are not UTF-8 (for
    /// names that must be exact, such as channels).
    pub fn utf8(&self, ptr: i32, len: i32) -> Result<Option<String>, Errno> {
        Ok(std::str::from_utf8(self.slice(ptr, len)?)
            .ok()
            .map(str::to_owned))
    }

    /// Reads a UTF-8 string at `ptr`; invalid UTF-8 is replaced, never trusted.
    pub fn string(&self, ptr: i32, len: i32) -> Result<String, Errno> {
        Ok(String::from_utf8_lossy(self.slice(ptr, len)?).into_owned())
    }

    /// Writes `data` at `ptr`.
    pub fn write(&mut self, ptr: i32, data: &[u8]) -> Result<(), Errno> {
        let range = self.range(ptr, data.len() as i32)?;
        self.bytes[range].copy_from_slice(data);
        Ok(())
    }

    /// Checks that a u32 out-value fits at `ptr`, before a call acts on anything. A
    /// null out-pointer is `NilAddress`: no guest SDK ever passes one on purpose.
    pub fn check_u32(&self, ptr: i32) -> Result<(), Errno> {
        if ptr == 0 {
            return Err(Errno::NilAddress);
        }
        self.range(ptr, 4).map(drop)
    }

    /// Writes a little-endian u32 out-value at `ptr`.
    pub fn write_u32(&mut self, ptr: i32, value: u32) -> Result<(), Errno> {
        self.check_u32(ptr)?;
        self.write(ptr, &value.to_le_bytes())
    }

    /// Copies `value` into the guest buffer `buf` of capacity `cap`, the second half
    /// of the `xxxSize` / `xxx` two-call pattern.
    pub fn write_sized(&mut self, buf: i32, cap: i32, value: &[u8]) -> Result<(), Errno> {
        if value.len() > cap as u32 as usize {
            return Err(Errno::BufferTooSmall);
        }
        self.write(buf, value)
    }

    /// The `len` bytes at `ptr`, to write into, for calls that hand over a
    /// buffer and its capacity to fill.
    pub fn slice_mut(&mut self, ptr: i32, len: i32) -> Result<&mut [u8], Errno> {
        let range = self.range(ptr, len)?;
        Ok(&mut self.bytes[range])
    }
}

/// The end of a streamed read (`(..., buf, bufLen, countPtr)`): writes the chunk read and
/// its length; errno 8 (EOF) comes with the last bytes.
pub fn hand_over(
    mem: &mut GuestMemory<'_>,
    buf: i32,
    count_ptr: i32,
    read: Result<(bytes::Bytes, bool), Errno>,
) -> Result<(), Errno> {
    let (chunk, last) = read?;
    mem.write(buf, &chunk)?;
    mem.write_u32(count_ptr, chunk.len() as u32)?;
    if last {
        Err(Errno::Eof)
    } else {
        Ok(())
    }
}

/// Joins names the way Taubyte passes string lists: each name followed by a NUL.
pub fn nul_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_bounds_and_overflowing_ranges() {
        let mut bytes = vec![0u8; 16];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(mem.slice(8, 8).unwrap().len(), 8);
        assert_eq!(mem.slice(8, 9), Err(Errno::AddressOutOfMemory));
        assert_eq!(mem.slice(-1, 2), Err(Errno::AddressOutOfMemory));
        assert_eq!(mem.slice(4, -1), Err(Errno::AddressOutOfMemory));
        assert_eq!(mem.write_u32(0, 1), Err(Errno::NilAddress));
        assert_eq!(mem.write_u32(13, 1), Err(Errno::AddressOutOfMemory));
        mem.write_u32(12, 0x0403_0201).unwrap();
        assert_eq!(mem.slice(12, 4).unwrap(), &[1, 2, 3, 4]);
    }

    #[test]
    fn sized_write_refuses_a_small_buffer() {
        let mut bytes = vec![0u8; 16];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(mem.write_sized(0, 2, b"abc"), Err(Errno::BufferTooSmall));
        mem.write_sized(1, 8, b"abc").unwrap();
        assert_eq!(mem.slice(1, 3).unwrap(), b"abc");
    }

    #[test]
    fn nul_list_terminates_each_name() {
        assert_eq!(nul_list(["a", "bc"]), b"a\0bc\0");
        assert!(nul_list([]).is_empty());
    }
}
