//! A secure connection over any byte stream: the handshake, then typed messages in frames.
//!
//! Layers, bottom up: the stream (TCP in production, an in-memory duplex in tests) → frames
//! ([`FrameSealer`], [`FrameOpener`]) → messages ([`codec`](crate::codec)). Reading is
//! cancel-safe: a `read_*` future dropped in a `select!` loses no bytes, so the same call can
//! be made again. Writing queues sealed frames in a buffer and [`SecureWriter::flush`] sends
//! them in one write, so a burst of messages costs one system call.

use std::sync::Arc;

use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::codec;
use crate::crypto::dh::EphemeralPool;
use crate::error::{ConnectionError, HandshakeError};
use crate::frame::{FrameOpener, FrameSealer};
use crate::handshake::{
    CLIENT_HELLO_LEN, ClientHandshake, ClientHello, MAX_SERVER_FLIGHT_LEN, NONCE_LEN,
    server_respond, version_rejection,
};
use crate::identity::{Fingerprint, ServerCertificate, ServerIdentity};

/// Read buffer growth step.
const READ_CHUNK: usize = 8 * 1024;

/// What a reader holding no part of a frame reads first: a frame's header. A quiet
/// connection waits with this much allocated instead of [`READ_CHUNK`], which matters with
/// thousands of idle sessions; a busy one pays one short read when its buffer runs dry.
const IDLE_READ: usize = crate::frame::HEADER_LEN;

/// Send buffers larger than this are given back after a flush rather than kept for the next
/// message, so that a connection that once sent something large does not hold its size
/// while it is quiet.
const RETAINED_SEND_BUF: usize = 4 * 1024;

/// The receiving half: reads and opens frames, decodes messages.
pub struct SecureReader<R> {
    stream: R,
    buf: BytesMut,
    opener: FrameOpener,
}

impl<R: AsyncRead + Unpin> SecureReader<R> {
    /// Reads the next frame's plaintext; `Ok(None)` when the peer closed cleanly between
    /// frames. Cancel-safe.
    pub async fn read_frame(&mut self) -> Result<Option<BytesMut>, ConnectionError> {
        read_frame(&mut self.stream, &mut self.buf, &mut self.opener).await
    }

    /// Bytes of buffer this half holds (allocated, used or not).
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// Reads and decodes the next message; `Ok(None)` when the peer closed cleanly.
    /// Cancel-safe.
    pub async fn read_message<M: DeserializeOwned>(
        &mut self,
    ) -> Result<Option<M>, ConnectionError> {
        decode_frame(self.read_frame().await?)
    }

    /// Changes the largest frame accepted from now on.
    pub fn set_max_frame_len(&mut self, max_frame_len: usize) {
        self.opener.set_max_len(max_frame_len);
    }
}

async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    opener: &mut FrameOpener,
) -> Result<Option<BytesMut>, ConnectionError> {
    loop {
        if let Some(plain) = opener.open(buf)? {
            return Ok(Some(plain));
        }
        if buf.is_empty() {
            // Nothing of a frame is held: wait for the next one with a small buffer.
            if buf.capacity() > IDLE_READ {
                *buf = BytesMut::new();
            }
            buf.reserve(IDLE_READ);
        } else if buf.capacity() - buf.len() < READ_CHUNK {
            buf.reserve(READ_CHUNK);
        }
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ConnectionError::UnexpectedEof)
            };
        }
    }
}

fn decode_frame<M: DeserializeOwned>(
    frame: Option<BytesMut>,
) -> Result<Option<M>, ConnectionError> {
    match frame {
        Some(plain) => Ok(Some(codec::decode(&plain)?)),
        None => Ok(None),
    }
}

/// The sending half: encodes messages, seals them into frames, writes them.
pub struct SecureWriter<W> {
    stream: W,
    out: Outbound,
}

impl<W: AsyncWrite + Unpin> SecureWriter<W> {
    /// Encodes and seals a message into the send buffer without writing it.
    pub fn queue<M: Serialize>(&mut self, message: &M) -> Result<(), ConnectionError> {
        self.out.queue(message)
    }

    /// Returns how many sealed bytes wait to be written.
    pub fn pending(&self) -> usize {
        self.out.buf.len()
    }

    /// Bytes of buffer this half holds (allocated, used or not).
    pub fn buffered(&self) -> usize {
        self.out.capacity()
    }

    /// Writes every queued frame in one go and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), ConnectionError> {
        self.out.flush(&mut self.stream).await
    }

    /// Queues one message and flushes.
    pub async fn send<M: Serialize>(&mut self, message: &M) -> Result<(), ConnectionError> {
        self.queue(message)?;
        self.flush().await
    }

    /// Flushes and shuts the stream's write side down.
    pub async fn shutdown(&mut self) -> Result<(), ConnectionError> {
        self.flush().await?;
        self.stream.shutdown().await?;
        Ok(())
    }
}

/// Sealed frames waiting to be written, and the sealer that makes them.
struct Outbound {
    buf: Vec<u8>,
    scratch: Vec<u8>,
    sealer: FrameSealer,
}

impl Outbound {
    fn new(sealer: FrameSealer) -> Self {
        Self {
            buf: Vec::new(),
            scratch: Vec::new(),
            sealer,
        }
    }

    fn capacity(&self) -> usize {
        self.buf.capacity() + self.scratch.capacity()
    }

    fn queue<M: Serialize>(&mut self, message: &M) -> Result<(), ConnectionError> {
        self.scratch.clear();
        codec::encode_into(message, &mut self.scratch)?;
        self.sealer.seal_into(&self.scratch, &mut self.buf)?;
        Ok(())
    }

    async fn flush<W: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut W,
    ) -> Result<(), ConnectionError> {
        if !self.buf.is_empty() {
            stream.write_all(&self.buf).await?;
            self.buf.clear();
        }
        for buf in [&mut self.buf, &mut self.scratch] {
            if buf.capacity() > RETAINED_SEND_BUF {
                *buf = Vec::new();
            }
        }
        stream.flush().await?;
        Ok(())
    }
}

/// Both halves over one stream, as the handshake leaves them.
pub struct SecureConnection<S> {
    stream: S,
    read_buf: BytesMut,
    opener: FrameOpener,
    out: Outbound,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SecureConnection<S> {
    /// Runs the client's handshake over `stream`. `pinned` is the fingerprint remembered for
    /// this server (trust on first use: `None` the first time, then the returned
    /// certificate's fingerprint).
    pub async fn connect(
        mut stream: S,
        pinned: Option<Fingerprint>,
        max_frame_len: usize,
    ) -> Result<(Self, ServerCertificate), ConnectionError> {
        let handshake = ClientHandshake::new(pinned)?;
        stream.write_all(handshake.hello()).await?;
        stream.flush().await?;

        let mut buf = BytesMut::with_capacity(MAX_SERVER_FLIGHT_LEN);
        let flight_len = loop {
            if let Some(len) = ClientHandshake::flight_len(&buf)? {
                break len;
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(ConnectionError::UnexpectedEof);
            }
        };
        let flight = buf.split_to(flight_len);
        let established = handshake.finish(&flight)?;
        let (sealer, opener) = established.keys.client_codec(max_frame_len);
        let connection = Self {
            stream,
            read_buf: buf,
            opener,
            out: Outbound::new(sealer),
        };
        Ok((connection, established.server))
    }

    /// Runs the server's handshake over `stream`. The two exponentiations run on tokio's
    /// blocking pool so they do not stall other connections, and only while holding a permit
    /// of `compute` (so a flood of handshakes queues instead of taking every core). A client
    /// of another protocol version is told so before the stream is dropped.
    ///
    /// Callers bound the whole handshake, the wait for a permit included, with a timeout.
    pub async fn accept(
        mut stream: S,
        identity: Arc<ServerIdentity>,
        pool: Arc<EphemeralPool>,
        max_frame_len: usize,
        compute: &tokio::sync::Semaphore,
    ) -> Result<Self, ConnectionError> {
        let mut hello = [0u8; CLIENT_HELLO_LEN];
        let (preamble, rest) = hello.split_at_mut(ClientHello::PREAMBLE_LEN);
        read_exact(&mut stream, preamble).await?;
        match ClientHello::check_preamble(preamble) {
            Ok(()) => {}
            Err(e @ HandshakeError::UnsupportedVersion { .. }) => {
                // Best effort: the client gets a clear reason, then the stream is dropped.
                let _ = stream.write_all(&version_rejection()).await;
                let _ = stream.shutdown().await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
        read_exact(&mut stream, rest).await?;

        let _permit = compute
            .acquire()
            .await
            .map_err(|_| ConnectionError::Cancelled)?;
        let (flight, keys) = tokio::task::spawn_blocking(move || {
            let ephemeral = pool.take().map_err(HandshakeError::from)?;
            let mut nonce = [0u8; NONCE_LEN];
            getrandom::fill(&mut nonce).map_err(|_| HandshakeError::Dh(crate::DhError::Random))?;
            server_respond(&identity, &ephemeral, nonce, &hello)
        })
        .await
        .map_err(|_| ConnectionError::Cancelled)??;
        stream.write_all(&flight).await?;
        stream.flush().await?;
        let (sealer, opener) = keys.server_codec(max_frame_len);
        Ok(Self {
            stream,
            read_buf: BytesMut::new(),
            opener,
            out: Outbound::new(sealer),
        })
    }

    /// Reads and decodes the next message; `Ok(None)` when the peer closed cleanly.
    /// Cancel-safe.
    pub async fn read_message<M: DeserializeOwned>(
        &mut self,
    ) -> Result<Option<M>, ConnectionError> {
        decode_frame(read_frame(&mut self.stream, &mut self.read_buf, &mut self.opener).await?)
    }

    /// Bytes of buffer this connection holds (allocated, used or not).
    pub fn buffered(&self) -> usize {
        self.read_buf.capacity() + self.out.capacity()
    }

    /// Encodes and seals a message into the send buffer without writing it.
    pub fn queue<M: Serialize>(&mut self, message: &M) -> Result<(), ConnectionError> {
        self.out.queue(message)
    }

    /// Writes every queued frame in one go and flushes the stream.
    pub async fn flush(&mut self) -> Result<(), ConnectionError> {
        self.out.flush(&mut self.stream).await
    }

    /// Queues one message and flushes.
    pub async fn write_message<M: Serialize>(
        &mut self,
        message: &M,
    ) -> Result<(), ConnectionError> {
        self.queue(message)?;
        self.flush().await
    }

    /// Splits the connection into its reading and writing halves with `split`
    /// (`TcpStream::into_split`, or `tokio::io::split` for any stream).
    pub fn split<R, W>(
        self,
        split: impl FnOnce(S) -> (R, W),
    ) -> (SecureReader<R>, SecureWriter<W>) {
        let (read, write) = split(self.stream);
        (
            SecureReader {
                stream: read,
                buf: self.read_buf,
                opener: self.opener,
            },
            SecureWriter {
                stream: write,
                out: self.out,
            },
        )
    }
}

async fn read_exact<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
) -> Result<(), ConnectionError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ConnectionError::UnexpectedEof)
        }
        Err(e) => Err(e.into()),
    }
}
