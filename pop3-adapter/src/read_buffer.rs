//! The drivers' adaptive read buffer: small while a session is idle,
//! doubling while reads fill it (bodies, listings), back to small once
//! the session expects nothing more.

/// A read buffer whose size follows the traffic: [`ReadBuffer::MIN`] bytes
/// while replies are short, doubled (up to [`ReadBuffer::MAX`]) every time a
/// read fills it completely, and shrunk back to `MIN` by
/// [`ReadBuffer::idle`] once the session expects no more bytes. An idle
/// logged-in session so costs `MIN` bytes, a bulk transfer reads in
/// `MAX`-sized chunks after a few reads.
#[derive(Debug)]
pub struct ReadBuffer {
    buf: Box<[u8]>,
}

impl ReadBuffer {
    /// The size while idle (and at the start).
    pub const MIN: usize = 4 * 1024;
    /// The largest size, reached during bulk transfers.
    pub const MAX: usize = 64 * 1024;

    /// A buffer of [`ReadBuffer::MIN`] bytes.
    pub fn new() -> ReadBuffer {
        ReadBuffer {
            buf: vec![0; Self::MIN].into_boxed_slice(),
        }
    }

    /// The current size.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The space to read into (its whole size).
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The first `n` bytes (what a read returned).
    pub fn data(&self, n: usize) -> &[u8] {
        &self.buf[..n.min(self.buf.len())]
    }

    /// Records that a read returned `n` bytes (after they were consumed):
    /// a read that filled the buffer doubles it, up to [`ReadBuffer::MAX`].
    pub fn filled(&mut self, n: usize) {
        let len = self.buf.len();
        if n >= len && len < Self::MAX {
            // Free the old buffer first: never both at once.
            self.buf = Box::default();
            self.buf = vec![0; (len * 2).min(Self::MAX)].into_boxed_slice();
        }
    }

    /// The session expects no more bytes: back to [`ReadBuffer::MIN`].
    pub fn idle(&mut self) {
        if self.buf.len() > Self::MIN {
            self.buf = Box::default();
            self.buf = vec![0; Self::MIN].into_boxed_slice();
        }
    }
}

impl Default for ReadBuffer {
    fn default() -> ReadBuffer {
        ReadBuffer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::ReadBuffer;

    #[test]
    fn grows_while_reads_fill_it_and_shrinks_when_idle() {
        let mut b = ReadBuffer::new();
        assert_eq!(b.capacity(), ReadBuffer::MIN);
        b.filled(100);
        assert_eq!(
            b.capacity(),
            ReadBuffer::MIN,
            "a short read does not grow it"
        );
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let n = b.space().len();
            b.filled(n);
            sizes.push(b.capacity());
        }
        assert_eq!(sizes, [8192, 16384, 32768, 65536, 65536, 65536]);
        b.filled(10);
        assert_eq!(b.capacity(), ReadBuffer::MAX, "stays big during a transfer");
        b.idle();
        assert_eq!(b.capacity(), ReadBuffer::MIN);
        assert_eq!(b.data(3).len(), 3);
    }
}
