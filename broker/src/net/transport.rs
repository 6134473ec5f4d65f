//! Framing over any byte stream: a read buffer that `decode` consumes and a
//! write buffer flushed in one write per batch of packets.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec::{self, DecodeError, EncodeError, Packet, Protocol};

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
    /// the future is dropped, no byte is lost.
    pub async fn fill(&mut self) -> Result<(), ReadError> {
        if self.read_buf.capacity() - self.read_buf.len() < 512 {
            // Grow with what is buffered: small for chatty small packets,
            // larger while a big packet is arriving.
            self.read_buf
                .reserve(self.read_buf.len().clamp(2048, 64 * 1024));
        }
        match self.stream.read_buf(&mut self.read_buf).await? {
            0 => Err(ReadError::Closed),
            _ => Ok(()),
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
