//! One connection to the server: requests with ids and timeouts over the encrypted
//! connection, answers matched to their requests, events passed on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protocol::message::{
    ClientMessage, Error as ServerError, Event, Request, Response, ServerMessage,
};
use protocol::{Fingerprint, SecureConnection, ServerCertificate};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::ClientError;

/// Longest a TCP connect and handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests queued for the writer.
const OUTBOUND_QUEUE: usize = 256;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Response, ServerError>>>>>;

/// A live connection.
#[derive(Debug)]
pub struct Link {
    next_id: AtomicU64,
    pending: Pending,
    outbound: mpsc::Sender<ClientMessage>,
    closed: watch::Receiver<bool>,
    /// Set, before the link closes, when the server said the session was replaced.
    kicked: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
}

impl Link {
    /// Connects to `server`, checks its key against `pinned`, and starts the reader and
    /// writer. Events go to `events`.
    pub async fn open(
        server: &str,
        pinned: Option<Fingerprint>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<(Arc<Self>, ServerCertificate), ClientError> {
        let connect = async {
            let stream = TcpStream::connect(server)
                .await
                .map_err(|e| ClientError::Disconnected(format!("cannot reach {server}: {e}")))?;
            let _ = stream.set_nodelay(true);
            Ok::<_, ClientError>(
                SecureConnection::connect(stream, pinned, protocol::frame::DEFAULT_MAX_FRAME_LEN)
                    .await?,
            )
        };
        let (connection, certificate) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| ClientError::Timeout)??;
        let (mut reader, mut writer) = connection.split(TcpStream::into_split);
        let (outbound, mut queue) = mpsc::channel::<ClientMessage>(OUTBOUND_QUEUE);
        let (closed_tx, closed) = watch::channel(false);
        let pending: Pending = Arc::default();

        let mut writer_closed = closed.clone();
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    message = queue.recv() => message,
                    _ = writer_closed.wait_for(|c| *c) => None,
                    _ = stopped.wait_for(|s| *s) => None,
                };
                let Some(message) = message else { break };
                if writer.queue(&message).is_err() {
                    break;
                }
                while let Ok(more) = queue.try_recv() {
                    if writer.queue(&more).is_err() {
                        break;
                    }
                }
                if writer.flush().await.is_err() {
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });

        let reader_pending = pending.clone();
        let kicked = Arc::new(AtomicBool::new(false));
        let reader_kicked = kicked.clone();
        tokio::spawn(async move {
            loop {
                match reader.read_message::<ServerMessage>().await {
                    Ok(Some(ServerMessage::Response { id, result })) => {
                        let waiter = reader_pending
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(result);
                        }
                    }
                    Ok(Some(ServerMessage::Event(event))) => {
                        // Known before the close is: the event itself may wait behind others.
                        if matches!(event, Event::Kicked { .. }) {
                            reader_kicked.store(true, Ordering::Release);
                        }
                        if events.send(event).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        tracing::debug!(%err, "connection ended");
                        break;
                    }
                }
            }
            // Waiters see the closed channel and report a disconnect.
            reader_pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            closed_tx.send_replace(true);
        });

        let link = Arc::new(Self {
            next_id: AtomicU64::new(1),
            pending,
            outbound,
            closed,
            kicked,
            stop,
        });
        Ok((link, certificate))
    }

    /// Whether the server kicked this session (it said so before closing): a link that ends
    /// so must not be restored, or the two logins would take turns kicking each other.
    pub fn kicked(&self) -> bool {
        self.kicked.load(Ordering::Acquire)
    }

    /// Sends `body` and waits up to `timeout` for its answer.
    pub async fn request(&self, body: Request, timeout: Duration) -> Result<Response, ClientError> {
        if self.is_closed() {
            return Err(ClientError::Disconnected("the connection is closed".into()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, reply);
        let sent = self
            .outbound
            .send(ClientMessage::Request { id, body })
            .await;
        if sent.is_err() {
            self.forget(id);
            return Err(ClientError::Disconnected("the connection is closed".into()));
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(error))) => Err(ClientError::Server(error)),
            Ok(Err(_)) => Err(ClientError::Disconnected("the connection was lost".into())),
            Err(_) => {
                self.forget(id);
                Err(ClientError::Timeout)
            }
        }
    }

    fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Whether the connection ended.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves when the connection ends.
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
    }

    /// Closes the connection: the writer shuts the stream down, the server closes its side,
    /// and the reader ends.
    pub fn close(&self) {
        self.stop.send_replace(true);
    }
}
