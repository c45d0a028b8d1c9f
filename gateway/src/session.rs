//! One client connection: the handshake, the request loop, and the writer task that owns the
//! sending half. The loop keeps the connection's state (logged in or not) and hands every
//! request to its handler (`handlers/`).
//!
//! Requests of a logged-in session run concurrently (up to `max_in_flight`), so a file chunk
//! never makes a chat message wait; what a handler must do in the order requests were read
//! (queueing a message) it does before the loop reads the next one. Answers and pushed events
//! share one bounded outbound queue, written by one task that coalesces whatever is queued
//! into one write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::message::{ClientMessage, Request, Response, ServerMessage};
use protocol::{SecureConnection, Timestamp};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::Shared;
use crate::budget::Budget;
use crate::handlers;
use crate::hub::{Outbound, SLOW_READER, SessionHandle};
use crate::telemetry;

/// Bytes queued for one write before the writer flushes, so a burst goes out in few writes.
const FLUSH_AT: usize = 256 * 1024;

/// A random 63-bit number (connection and gateway ids).
pub fn random_u63() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness the id is still unique enough per process: the time.
    if getrandom::fill(&mut bytes).is_err() {
        return Timestamp::now().0;
    }
    u64::from_be_bytes(bytes) >> 1
}

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user: u64,
    /// The epoch account-svc gave this login.
    pub epoch: u64,
    /// The user as friends see them.
    pub me: Arc<proto::common::UserSummary>,
}

/// A connection's state shared by its request tasks.
pub struct Conn {
    /// What every session of the gateway shares.
    pub shared: Arc<Shared>,
    /// The connection's number on this gateway.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Its way out.
    pub outbound: Outbound,
}

impl Conn {
    /// Queues the answer to request `id`.
    fn answer(&self, id: u64, result: Result<Response, protocol::message::Error>) {
        self.outbound.push(ServerMessage::Response { id, result });
    }

    /// Makes `session` the one pushes for its user reach; a session of the user it replaces
    /// on this gateway is kicked.
    fn start(&self, session: &Session) {
        let handle = SessionHandle {
            connection: self.id,
            epoch: session.epoch,
            outbound: self.outbound.clone(),
        };
        let previous = self.shared.hub.insert(session.user, handle);
        if let Some(previous) = previous.filter(|p| p.connection != self.id) {
            previous.outbound.kick(proto::SIGNED_IN_ELSEWHERE);
        }
    }
}

/// Runs one client connection to its end. `pending` is its slot among connections not yet
/// logged in, given back at login.
pub async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    pending: OwnedSemaphorePermit,
) {
    let mut pending = Some(pending);
    let login_deadline =
        tokio::time::Instant::now() + Duration::from_millis(shared.config.login_timeout_ms);
    let _ = stream.set_nodelay(true);
    // The rare steps (handshake, login, registration, logout) are boxed: a task's future is
    // as large as its largest step, and an idle session would keep that size for hours.
    let handshake = Box::pin(SecureConnection::accept(
        stream,
        shared.identity.clone(),
        shared.pool.clone(),
        shared.config.max_frame_len,
        &shared.handshakes,
    ));
    let timeout = Duration::from_millis(shared.config.handshake_timeout_ms);
    let connection = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(connection)) => {
            telemetry::handshake("ok");
            connection
        }
        Ok(Err(err)) => {
            telemetry::handshake("failed");
            tracing::debug!(%peer, %err, "handshake failed");
            return;
        }
        Err(_) => {
            telemetry::handshake("timeout");
            tracing::debug!(%peer, "handshake timed out");
            return;
        }
    };
    let (mut reader, writer) = connection.split(TcpStream::into_split);
    // A connection that has not logged in gets small frames only.
    reader.set_max_frame_len(crate::PRE_LOGIN_MAX_FRAME.min(shared.config.max_frame_len));
    let (outbound, queue) = mpsc::channel(
        shared
            .config
            .outbound_queue
            .clamp(1, Semaphore::MAX_PERMITS),
    );
    let idle = Duration::from_millis(shared.config.idle_timeout_ms);
    let budget = Budget::new(shared.config.outbound_max_bytes);
    let (close, mut closed) = watch::channel(None::<String>);
    // Boxed: an `async fn` keeps a moved-in argument twice (as argument and as local), and
    // the writer's task nests two, so it would hold the 430-byte writer three times.
    let writer = tokio::spawn(write_loop(
        Box::new(writer),
        queue,
        budget.clone(),
        close.clone(),
        idle,
    ));
    let conn = Arc::new(Conn {
        shared: shared.clone(),
        id: random_u63(),
        peer,
        outbound: Outbound {
            queue: outbound,
            close,
            budget,
        },
    });
    let in_flight = Arc::new(Semaphore::new(
        shared.config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut stopping = shared.stopping.clone();
    let mut session: Option<Session> = None;

    loop {
        let message = tokio::select! {
            // A closed connection (kicked, logged out, too slow) reads no more requests.
            biased;
            _ = closed.changed() => break,
            _ = stopping.wait_for(|s| *s) => break,
            read = tokio::time::timeout_at(
                read_deadline(idle, session.is_none().then_some(login_deadline)),
                reader.read_message::<ClientMessage>(),
            ) => read,
        };
        let (id, body) = match message {
            Ok(Ok(Some(ClientMessage::Request { id, body }))) => (id, body),
            Ok(Ok(None)) => break,
            Ok(Err(err)) => {
                // A frame that fails its checks or does not decode ends the connection: the
                // stream can no longer be trusted.
                tracing::debug!(%peer, %err, "connection closed on a bad frame");
                break;
            }
            Err(_) if session.is_none() => {
                tracing::debug!(%peer, "no login in time");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "connection idle too long");
                break;
            }
        };
        match &session {
            None => match body {
                Request::Login(login) => match Box::pin(handlers::login(&conn, login)).await {
                    Ok((logged_in, bundle)) => {
                        conn.start(&logged_in);
                        reader.set_max_frame_len(shared.config.max_frame_len);
                        drop(pending.take());
                        tracing::info!(user = logged_in.user, %peer, "logged in");
                        session = Some(logged_in);
                        conn.answer(id, Ok(Response::LoggedIn(bundle)));
                    }
                    Err(err) => conn.answer(id, Err(err)),
                },
                body => conn.answer(id, Box::pin(handlers::before_login(&conn, body)).await),
            },
            Some(current) => {
                // Backpressure: past `max_in_flight`, the next request waits to be read.
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                // The answer's room in the byte budget; the next request waits for it.
                let bound = handlers::answer_bound(&body, shared.config.max_frame_len);
                let reservation = tokio::select! {
                    biased;
                    _ = closed.changed() => break,
                    reservation = conn.outbound.budget.reserve(bound) => reservation,
                };
                let kind = handlers::kind(&body);
                let started = tokio::time::Instant::now();
                let answer = handlers::dispatch(&conn, current, body).await;
                let conn = conn.clone();
                tokio::spawn(async move {
                    let result = answer.await;
                    telemetry::request(kind, result.is_ok(), started.elapsed());
                    conn.outbound
                        .answer(ServerMessage::Response { id, result }, reservation);
                    drop(permit);
                });
            }
        }
    }

    if let Some(current) = session {
        shared.hub.remove(current.user, conn.id);
        Box::pin(handlers::end_session(&conn, &current)).await;
        tracing::info!(user = current.user, %peer, "logged out");
    }
    // Let started requests answer, then the writer sends what is queued and closes.
    let all = u32::try_from(shared.config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS))
        .unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(crate::DRAIN_TIMEOUT, in_flight.acquire_many(all)).await;
    drop(conn);
    let slow = closed.borrow().as_deref() == Some(SLOW_READER);
    finish_writes(writer, slow).await;
}

/// Lets the writer send what is queued (a `Kicked` event, the last answers) and close, for
/// at most [`DRAIN_TIMEOUT`](crate::DRAIN_TIMEOUT); then stops it, so a client that does not
/// read cannot keep the socket and its queue alive. A reader closed for being slow is not
/// waited for at all: it was closed because it does not read.
async fn finish_writes(mut writer: JoinHandle<()>, slow: bool) {
    if !slow
        && tokio::time::timeout(crate::DRAIN_TIMEOUT, &mut writer)
            .await
            .is_ok()
    {
        return;
    }
    writer.abort();
    let _ = writer.await;
}

/// When the next request must have arrived: within `idle`, and before `login_by` while the
/// connection has not logged in (pings do not move that one).
fn read_deadline(idle: Duration, login_by: Option<tokio::time::Instant>) -> tokio::time::Instant {
    let idle_by = tokio::time::Instant::now() + idle;
    login_by.map_or(idle_by, |login_by| login_by.min(idle_by))
}

/// Writes everything queued for the client, coalescing bursts into one write, and takes what
/// it wrote off the byte budget. Ends when every sender is gone, or a write fails or stalls
/// for `stall` (then it closes the connection, so a session waiting for budget stops).
async fn write_loop(
    writer: Box<protocol::SecureWriter<OwnedWriteHalf>>,
    queue: mpsc::Receiver<Box<ServerMessage>>,
    budget: Arc<Budget>,
    close: watch::Sender<Option<String>>,
    stall: Duration,
) {
    if !write_all(writer, queue, &budget, stall).await {
        close.send_if_modified(|reason| {
            reason.get_or_insert_with(|| SLOW_READER.to_owned());
            true
        });
    }
}

/// The writer's loop; `false` when a write failed or stalled.
async fn write_all(
    mut writer: Box<protocol::SecureWriter<OwnedWriteHalf>>,
    mut queue: mpsc::Receiver<Box<ServerMessage>>,
    budget: &Budget,
    stall: Duration,
) -> bool {
    while let Some(message) = queue.recv().await {
        let mut next = Some(message);
        // What this write takes off the connection's byte budget once it is written.
        let mut written = 0;
        while let Some(message) = next.take() {
            written += crate::hub::weight(&message);
            if let Err(err) = writer.queue(&message) {
                tracing::warn!(%err, "a message could not be encoded; dropped");
            }
            if writer.pending() < FLUSH_AT {
                next = queue.try_recv().ok();
            }
        }
        let flushed = tokio::time::timeout(stall, writer.flush()).await;
        budget.written(written);
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(%err, "write failed");
                return false;
            }
            Err(_) => {
                tracing::debug!("client stopped reading; closing");
                return false;
            }
        }
    }
    let _ = writer.shutdown().await;
    true
}
