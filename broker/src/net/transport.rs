//! Framing over any byte stream: a read buffer that `decode` consumes and a
//! write buffer flushed in one write per batch of packets.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::codec::{self, DecodeError, EncodeError, Packet, Protocol};

/// The most a read into an empty, released buffer takes at once (on the
/// stack; a busier connection reads straight into its growing buffer).
const UNBUFFERED_READ: usize = 4096;
/// The least a read buffer grows by while a packet is arriving.
const MIN_READ_BUF: usize = 2048;

pub(crate) struct Transport<S> {
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("connection closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Transport<S> {
    /// Buffers start empty and grow with use, so an idle connection costs
    /// little memory.
    pub fn new(stream: S) -> Transport<S> {
        Transport {
            stream,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
        }
    }

    /// Reads more bytes into the connection's own buffer. Cancel-safe: if
    /// the future is dropped, no byte is lost (bytes only ever land in the
    /// buffer within one poll).
    ///
    /// An idle connection holds no read buffer: when a read would block
    /// with nothing buffered, the buffer is given back, and the next
    /// readable event reads into the stack first and allocates only what
    /// arrived. Thousands of idle connections would otherwise each keep
    /// a few KiB they are not using.
    pub async fn fill(&mut self) -> Result<(), ReadError> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ReadError>> {
        if self.read_buf.capacity() == 0 {
            return self.poll_fill_unbuffered(cx);
        }
        if self.read_buf.capacity() - self.read_buf.len() < 512 {
            // Grow with what is buffered: small for chatty small packets,
            // larger while a big packet is arriving.
            self.read_buf
                .reserve(self.read_buf.len().clamp(MIN_READ_BUF, 64 * 1024));
        }
        let polled = {
            let read = self.stream.read_buf(&mut self.read_buf);
            std::pin::pin!(read).poll(cx)
        };
        match polled {
            Poll::Pending => {
                if self.read_buf.is_empty() {
                    self.read_buf = BytesMut::new();
                }
                Poll::Pending
            }
            Poll::Ready(Ok(0)) => Poll::Ready(Err(ReadError::Closed)),
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
        }
    }

    /// Reads into a stack buffer, then copies what arrived into a new heap
    /// buffer of exactly that size: decoded packets keep slices of the
    /// buffer, so a queued message pins the whole allocation, and a small
    /// message in a larger buffer would pin room nobody uses.
    fn poll_fill_unbuffered(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ReadError>> {
        let mut stack = [MaybeUninit::<u8>::uninit(); UNBUFFERED_READ];
        let mut buf = ReadBuf::uninit(&mut stack);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Err(ReadError::Closed)),
            Poll::Ready(Ok(())) => {
                let filled = buf.filled();
                self.read_buf = BytesMut::from(filled);
                Poll::Ready(Ok(()))
            }
        }
    }

    /// The next complete packet already buffered, if any.
    pub fn next_packet(
        &mut self,
        protocol: Option<Protocol>,
        max_packet_size: u32,
    ) -> Result<Option<Packet>, DecodeError> {
        codec::decode(&mut self.read_buf, protocol, max_packet_size)
    }

    /// Reads until one packet is complete.
    pub async fn read_packet(
        &mut self,
        protocol: Option<Protocol>,
        max_packet_size: u32,
    ) -> Result<Packet, ReadError> {
        loop {
            if let Some(packet) = self.next_packet(protocol, max_packet_size)? {
                return Ok(packet);
            }
            self.fill().await?;
        }
    }

    /// Encodes a packet into the write buffer; returns its size.
    pub fn queue(&mut self, packet: &Packet, protocol: Protocol) -> Result<usize, EncodeError> {
        let before = self.write_buf.len();
        codec::encode(packet, protocol, &mut self.write_buf)?;
        Ok(self.write_buf.len() - before)
    }

    pub fn has_pending_writes(&self) -> bool {
        !self.write_buf.is_empty()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.write_buf.is_empty() {
            self.stream.write_all(&self.write_buf).await?;
            self.write_buf.clear();
            // A burst may have grown it a lot; don't keep that while idle.
            if self.write_buf.capacity() > 256 * 1024 {
                self.write_buf = BytesMut::new();
            }
            self.stream.flush().await?;
        }
        Ok(())
    }

    /// Flushes and closes the write side (best effort).
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn an_idle_connection_holds_no_read_buffer() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut t = Transport::new(server);
        let max = 1024 * 1024;

        // PINGREQ: read through the stack into a buffer of exactly its size.
        client.write_all(&[0xC0, 0x00]).await.expect("write");
        t.fill().await.expect("fill");
        assert_eq!(t.read_buf.capacity(), 2);
        assert!(matches!(
            t.next_packet(Some(Protocol::V311), max),
            Ok(Some(Packet::PingReq))
        ));

        // A second PINGREQ after the first was consumed.
        client.write_all(&[0xC0, 0x00]).await.expect("write");
        t.fill().await.expect("fill");
        assert!(matches!(
            t.next_packet(Some(Protocol::V311), max),
            Ok(Some(Packet::PingReq))
        ));
        assert!(matches!(t.next_packet(Some(Protocol::V311), max), Ok(None)));

        // A packet arriving in two parts: the partial one stays buffered.
        client.write_all(&[0xC0]).await.expect("write");
        t.fill().await.expect("fill");
        assert!(matches!(t.next_packet(Some(Protocol::V311), max), Ok(None)));
        client.write_all(&[0x00]).await.expect("write");
        t.fill().await.expect("fill");
        assert!(matches!(
            t.next_packet(Some(Protocol::V311), max),
            Ok(Some(Packet::PingReq))
        ));

        // Nothing buffered and nothing to read: the buffer is given back.
        assert!(t.fill().now_or_never().is_none());
        assert_eq!(t.read_buf.capacity(), 0);

        drop(client);
        assert!(matches!(t.fill().await, Err(ReadError::Closed)));
    }
}
