//! A reader confined to one length-prefixed region of a packet.
//!
//! Every length the peer claims (remaining length, property length, string
//! length) becomes a child reader over exactly that many bytes, so a lying
//! length can only ever produce "truncated" or "trailing bytes", never a read
//! past the region. Slices are cheap `Bytes` views: no payload copying.

use bytes::{Buf, Bytes};

use super::DecodeError;

/// Largest value a four-byte Variable Byte Integer can hold.
pub(crate) const MAX_VARINT: u32 = 268_435_455;

pub(crate) struct Reader {
    buf: Bytes,
}

const TRUNCATED: DecodeError = DecodeError::Malformed("packet shorter than its contents");

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.buf.try_get_u8().map_err(|_| TRUNCATED)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.buf.try_get_u16().map_err(|_| TRUNCATED)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.buf.try_get_u32().map_err(|_| TRUNCATED)
    }

    /// A Variable Byte Integer (§1.5.5): at most four bytes. Non-minimal
    /// encodings are accepted; the spec does not forbid them on receipt.
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let byte = self.u8()?;
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed(
            "variable byte integer longer than 4 bytes",
        ))
    }

    /// The next `n` bytes as a zero-copy slice.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.buf.len() {
            return Err(TRUNCATED);
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left, e.g. a PUBLISH payload.
    pub(crate) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// A child reader over the next `n` bytes.
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        self.take(n).map(Reader::new)
    }

    /// Binary Data (§1.5.6): two-byte length, then that many bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// UTF-8 Encoded String (§1.5.4). Invalid UTF-8 (which includes encoded
    /// surrogates) and U+0000 are malformed. Other control characters and
    /// non-characters are allowed by the spec and pass.
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.binary()?;
        let s = std::str::from_utf8(&raw)
            .map_err(|_| DecodeError::Malformed("string is not valid UTF-8"))?;
        if s.contains('\0') {
            return Err(DecodeError::Malformed("string contains U+0000"));
        }
        Ok(s.to_owned())
    }

    /// Asserts the region was consumed exactly.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                "trailing bytes after packet contents",
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn varints() {
        assert_eq!(reader(&[0x00]).varint(), Ok(0));
        assert_eq!(reader(&[0x7f]).varint(), Ok(127));
        assert_eq!(reader(&[0x80, 0x01]).varint(), Ok(128));
        assert_eq!(reader(&[0xff, 0xff, 0xff, 0x7f]).varint(), Ok(MAX_VARINT));
        // Non-minimal but legal.
        assert_eq!(reader(&[0x80, 0x00]).varint(), Ok(0));
        assert!(matches!(
            reader(&[0xff, 0xff, 0xff, 0xff, 0x01]).varint(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            reader(&[0x80]).varint(),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn bounded() {
        let mut r = reader(&[0, 3, b'a', b'b']);
        assert!(matches!(r.string(), Err(DecodeError::Malformed(_))));
        let mut r = reader(&[1, 2, 3]);
        let mut sub = r.sub(2).unwrap();
        assert_eq!(sub.u8(), Ok(1));
        assert!(sub.finish().is_err());
        assert_eq!(r.u8(), Ok(3));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn strings() {
        assert_eq!(reader(&[0, 2, b'h', b'i']).string(), Ok("hi".into()));
        assert!(reader(&[0, 1, 0]).string().is_err());
        // An encoded surrogate (U+D800) is not UTF-8.
        assert!(reader(&[0, 3, 0xed, 0xa0, 0x80]).string().is_err());
        assert!(reader(&[0, 1, 0xff]).string().is_err());
    }
}
