//! One client connection: the handshake, the request loop with its one dispatch `match`, and
//! the writer task that owns the sending half.
//!
//! Requests of a logged-in session run concurrently (up to `max_in_flight`), so a file chunk
//! never makes a chat message wait; the one exception is that a message is queued for storage
//! in the order read (then only its wait runs beside the rest), so one sender's messages keep
//! their order. Answers and pushed events share one bounded outbound queue, written by one
//! task that coalesces whatever is queued into one write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::account::{GetCertificatesRequest, LoginRequest, LogoutRequest, RegisterRequest};
use proto::common::PeerAddr;
use proto::message::{
    AckRequest, ConversationStatesRequest, DownloadRequest, HistoryRequest, SendRequest,
    SyncRequest, UploadChunkRequest, UploadStartRequest, UploadStatusRequest,
};
use proto::social::{
    AddFriendRequest, CreateRoomRequest, Decision, DeleteFriendRequest, JoinRoomRequest,
    ListFriendsRequest, ListRoomsRequest, PendingRequestsRequest, ResolveFriendRequestRequest,
    RoomMembersRequest, SearchUsersRequest,
};
use protocol::message::{
    ClientMessage, Error, ErrorCode, Field, FieldError, FriendDecision, Login, LoginBundle,
    Register, Request, Response, SendMessage, ServerMessage, StoredMessage,
};
use protocol::{AttachmentId, ConversationId, PublicKey, SecureConnection, Seq, Timestamp, UserId};
use serde_bytes::ByteBuf;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::Shared;
use crate::convert::{self, status_to_error, unavailable};
use crate::hub::{Outbound, SessionHandle};
use crate::sends::QueuedSend;

/// Bytes queued for one write before the writer flushes, so a burst goes out in few writes.
const FLUSH_AT: usize = 256 * 1024;

/// Room left in a frame for everything of a message page but the envelopes.
const PAGE_OVERHEAD: usize = 64 * 1024;

/// Bytes of per-message framing counted against a page besides its envelope.
const MESSAGE_OVERHEAD: usize = 64;

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
struct Session {
    user: u64,
    epoch: u64,
    me: Arc<proto::common::UserSummary>,
}

/// A logged-in session's request once read: a message already queued in its lane, or any
/// other request, to run.
enum Work {
    Send(ConversationId, Result<QueuedSend, Error>),
    Request(Request),
}

/// The answer to a queued message, once it is stored.
async fn accepted(
    conversation: ConversationId,
    queued: Result<QueuedSend, Error>,
) -> Result<Response, Error> {
    let stored = queued?.stored().await?;
    Ok(Response::MessageAccepted {
        conversation,
        seq: Seq(stored.seq),
        sent_at: Timestamp(stored.sent_at),
    })
}

/// A connection's state shared by its request tasks.
struct Conn {
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    outbound: Outbound,
}

/// Runs one client connection to its end.
pub async fn run(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let handshake = SecureConnection::accept(
        stream,
        shared.identity.clone(),
        shared.pool.clone(),
        shared.config.max_frame_len,
    );
    let timeout = Duration::from_millis(shared.config.handshake_timeout_ms);
    let connection = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => {
            tracing::debug!(%peer, %err, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out");
            return;
        }
    };
    let (mut reader, writer) = connection.split(TcpStream::into_split);
    let (outbound, queue) = mpsc::channel(
        shared
            .config
            .outbound_queue
            .clamp(1, Semaphore::MAX_PERMITS),
    );
    let idle = Duration::from_millis(shared.config.idle_timeout_ms);
    let writer = tokio::spawn(write_loop(writer, queue, idle));
    let (close, mut closed) = watch::channel(None::<String>);
    let conn = Arc::new(Conn {
        shared: shared.clone(),
        id: random_u63(),
        peer,
        outbound: Outbound {
            queue: outbound,
            close,
        },
    });
    let in_flight = Arc::new(Semaphore::new(
        shared.config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut stopping = shared.stopping.clone();
    let mut session: Option<Session> = None;

    loop {
        let message = tokio::select! {
            read = tokio::time::timeout(idle, reader.read_message::<ClientMessage>()) => read,
            _ = closed.changed() => break,
            _ = stopping.wait_for(|s| *s) => break,
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
            Err(_) => {
                tracing::debug!(%peer, "connection idle too long");
                break;
            }
        };
        match (session.clone(), body) {
            (_, Request::Ping { nonce }) => conn.answer(id, Ok(Response::Pong { nonce })),
            (None, Request::Register(register)) => {
                let result = conn.register(register).await;
                conn.answer(id, result);
            }
            (None, Request::Login(login)) => match conn.login(login).await {
                Ok((logged_in, bundle)) => {
                    session = Some(logged_in.clone());
                    let handle = SessionHandle {
                        connection: conn.id,
                        epoch: logged_in.epoch,
                        outbound: conn.outbound.clone(),
                    };
                    let previous = shared.hub.insert(logged_in.user, handle);
                    if let Some(previous) = previous.filter(|p| p.connection != conn.id) {
                        previous.outbound.kick(proto::SIGNED_IN_ELSEWHERE);
                    }
                    tracing::info!(user = logged_in.user, %peer, "logged in");
                    conn.answer(id, Ok(Response::LoggedIn(bundle)));
                }
                Err(err) => conn.answer(id, Err(err)),
            },
            (None, _) => conn.answer(id, Err(Error::new(ErrorCode::NotLoggedIn, "log in first"))),
            (Some(_), Request::Register(_) | Request::Login(_)) => conn.answer(
                id,
                Err(Error::new(
                    ErrorCode::AlreadyLoggedIn,
                    "this connection is already logged in",
                )),
            ),
            (Some(current), Request::Logout) => {
                conn.logout(&current).await;
                session = None;
                shared.hub.remove(current.user, conn.id);
                conn.answer(id, Ok(Response::Done));
                break;
            }
            (Some(current), body) => {
                // Backpressure: past `max_in_flight`, the next request waits to be read.
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                // A message is queued here, in the order read, so one sender's pipelined
                // messages are stored in the order sent; only the wait for its commit runs
                // beside the other requests.
                let work = match body {
                    Request::SendMessage(send) => {
                        let conversation = send.conversation;
                        Work::Send(conversation, conn.queue_send(&current, send).await)
                    }
                    other => Work::Request(other),
                };
                let conn = conn.clone();
                tokio::spawn(async move {
                    let result = match work {
                        Work::Send(conversation, queued) => accepted(conversation, queued).await,
                        Work::Request(body) => conn.dispatch(current, body).await,
                    };
                    conn.answer(id, result);
                    drop(permit);
                });
            }
        }
    }

    if let Some(current) = session {
        shared.hub.remove(current.user, conn.id);
        conn.logout(&current).await;
        tracing::info!(user = current.user, %peer, "logged out");
    }
    // Let started requests answer, then the writer sends what is queued and closes.
    let all = u32::try_from(shared.config.max_in_flight.clamp(1, Semaphore::MAX_PERMITS))
        .unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(crate::DRAIN_TIMEOUT, in_flight.acquire_many(all)).await;
    drop(conn);
    let _ = tokio::time::timeout(crate::DRAIN_TIMEOUT, writer).await;
}

/// Writes everything queued for the client, coalescing bursts into one write. Ends when every
/// sender is gone or a write fails or stalls for `stall`.
async fn write_loop(
    mut writer: protocol::SecureWriter<OwnedWriteHalf>,
    mut queue: mpsc::Receiver<ServerMessage>,
    stall: Duration,
) {
    while let Some(message) = queue.recv().await {
        let mut next = Some(message);
        while let Some(message) = next.take() {
            if let Err(err) = writer.queue(&message) {
                tracing::warn!(%err, "a message could not be encoded; dropped");
            }
            if writer.pending() < FLUSH_AT {
                next = queue.try_recv().ok();
            }
        }
        match tokio::time::timeout(stall, writer.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(%err, "write failed");
                return;
            }
            Err(_) => {
                tracing::debug!("client stopped reading; closing");
                return;
            }
        }
    }
    let _ = writer.shutdown().await;
}

/// Bounds a service call by the request timeout and maps its failure.
async fn call<T>(
    shared: &Shared,
    future: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Error> {
    match tokio::time::timeout(shared.request_timeout(), future).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(status_to_error(&status)),
        Err(_) => Err(unavailable()),
    }
}

fn rate_limited(what: &str) -> Error {
    Error::new(
        ErrorCode::RateLimited,
        format!("too many {what}; wait a little and try again"),
    )
}

/// Keeps the first messages whose envelopes fit in one frame; says whether any were cut.
fn fit_page(messages: &mut Vec<StoredMessage>, max_frame_len: usize) -> bool {
    let budget = max_frame_len.saturating_sub(PAGE_OVERHEAD);
    let mut used = 0;
    let keep = messages
        .iter()
        .take_while(|m| {
            used += m.envelope.len() + MESSAGE_OVERHEAD;
            used <= budget
        })
        .count()
        .max(1);
    let cut = keep < messages.len();
    messages.truncate(keep);
    cut
}

impl Conn {
    /// Queues the answer to request `id`.
    fn answer(&self, id: u64, result: Result<Response, Error>) {
        self.outbound.push(ServerMessage::Response { id, result });
    }

    fn peer_addr(&self) -> PeerAddr {
        PeerAddr {
            ip: self.peer.ip().to_string(),
            port: u32::from(self.peer.port()),
        }
    }

    async fn register(&self, register: Register) -> Result<Response, Error> {
        let shared = &self.shared;
        if !shared.limits.auth.allow(&self.peer.ip()) {
            return Err(rate_limited("registrations and logins from this address"));
        }
        // account-svc checks the key's length; its value must be an element of the group.
        if PublicKey::from_bytes(&register.public_key).is_err() {
            return Err(Error {
                code: ErrorCode::InvalidField,
                message: "some fields are not valid".to_owned(),
                fields: vec![FieldError {
                    field: Field::PublicKey,
                    message: "not a valid public key (256 bytes, a value from 2 to p-2)".to_owned(),
                }],
            });
        }
        let request = RegisterRequest {
            username: register.username,
            password: register.password,
            email: register.email,
            sex: convert::sex_to_proto(register.sex).into(),
            age: u32::from(register.age),
            public_key: register.public_key.into_vec(),
        };
        let mut account = shared.services.account.clone();
        let registered = call(shared, account.register(request)).await?;
        if !registered.field_errors.is_empty() {
            return Err(convert::field_errors(&registered.field_errors));
        }
        tracing::info!(user = registered.user_id, peer = %self.peer, "registered");
        Ok(Response::Registered {
            user: UserId(registered.user_id),
            server_certificate: ByteBuf::from(shared.identity.encoded_certificate().to_vec()),
        })
    }

    async fn login(&self, login: Login) -> Result<(Session, LoginBundle), Error> {
        let shared = &self.shared;
        if !shared.limits.auth.allow(&self.peer.ip()) {
            return Err(rate_limited("registrations and logins from this address"));
        }
        let request = LoginRequest {
            username: login.username,
            password: login.password,
            gateway_id: shared.gateway_id.clone(),
            session_id: self.id,
            peer: Some(self.peer_addr()),
        };
        let mut account = shared.services.account.clone();
        let logged_in = call(shared, account.login(request)).await?;
        let user = logged_in.user.unwrap_or_default();
        let bundle = self.bundle(user.id, &user).await?;
        let session = Session {
            user: user.id,
            epoch: logged_in.epoch,
            me: Arc::new(user),
        };
        Ok((session, bundle))
    }

    async fn logout(&self, session: &Session) {
        let mut account = self.shared.services.account.clone();
        let request = LogoutRequest {
            user_id: session.user,
            epoch: session.epoch,
        };
        if let Err(err) = call(&self.shared, account.logout(request)).await {
            tracing::warn!(user = session.user, %err, "logout not recorded; the lease will expire it");
        }
    }

    /// Everything a client shows after logging in: friends, groups, pending requests, counters.
    async fn bundle(
        &self,
        user_id: u64,
        me: &proto::common::UserSummary,
    ) -> Result<LoginBundle, Error> {
        let shared = &self.shared;
        let (mut social_a, mut social_b, mut social_c) = (
            shared.services.social.clone(),
            shared.services.social.clone(),
            shared.services.social.clone(),
        );
        let mut message = shared.services.message.clone();
        let (friends, rooms, pending, states) = tokio::join!(
            call(
                shared,
                social_a.list_friends(ListFriendsRequest { user_id })
            ),
            call(shared, social_b.list_rooms(ListRoomsRequest { user_id })),
            call(
                shared,
                social_c.pending_requests(PendingRequestsRequest { user_id })
            ),
            call(
                shared,
                message.conversation_states(ConversationStatesRequest { user_id })
            ),
        );
        Ok(LoginBundle {
            me: convert::user(me),
            friends: friends?.friends.iter().map(convert::friend).collect(),
            rooms: rooms?.rooms.iter().map(convert::room).collect(),
            pending_requests: pending?.requesters.iter().map(convert::user).collect(),
            conversations: states?
                .states
                .iter()
                .map(convert::conversation_state)
                .collect(),
        })
    }

    /// Queues a message in the gateway's send lanes (see `sends.rs`), after the rate limit.
    async fn queue_send(&self, session: &Session, send: SendMessage) -> Result<QueuedSend, Error> {
        if !self.shared.limits.messages.allow(&session.user) {
            return Err(rate_limited("messages"));
        }
        let request = SendRequest {
            sender_id: session.user,
            conversation_id: send.conversation.0,
            client_msg_id: send.client_msg_id.0.to_vec(),
            envelope: send.envelope.into_vec(),
        };
        self.shared.sends.queue(request).await
    }

    /// The one dispatch of a logged-in session's requests to the services.
    async fn dispatch(&self, session: Session, body: Request) -> Result<Response, Error> {
        let shared = &self.shared;
        let services = &shared.services;
        let user_id = session.user;
        match body {
            Request::Register(_) | Request::Login(_) => Err(Error::new(
                ErrorCode::AlreadyLoggedIn,
                "this connection is already logged in",
            )),
            Request::Logout => Ok(Response::Done),
            Request::Ping { nonce } => Ok(Response::Pong { nonce }),
            Request::SearchUsers { query } => {
                if !shared.limits.searches.allow(&user_id) {
                    return Err(rate_limited("searches"));
                }
                let request = SearchUsersRequest {
                    user_id,
                    query,
                    limit: 0,
                };
                let found = call(shared, services.social.clone().search_users(request)).await?;
                Ok(Response::Users(
                    found.users.iter().map(convert::user).collect(),
                ))
            }
            Request::AddFriend { user } => {
                if !shared.limits.friend_requests.allow(&user_id) {
                    return Err(rate_limited("friend requests"));
                }
                let request = AddFriendRequest {
                    user_id,
                    friend_id: user.0,
                };
                let added = call(shared, services.social.clone().add_friend(request)).await?;
                Ok(Response::FriendRequestSent {
                    friend: added.friend.as_ref().map(convert::friend),
                })
            }
            Request::ResolveFriendRequest { from, decision } => {
                let request = ResolveFriendRequestRequest {
                    user_id,
                    requester_id: from.0,
                    decision: match decision {
                        FriendDecision::Accept => Decision::Accept,
                        FriendDecision::Reject => Decision::Reject,
                        FriendDecision::Later => Decision::Later,
                    }
                    .into(),
                };
                let resolved = call(
                    shared,
                    services.social.clone().resolve_friend_request(request),
                )
                .await?;
                Ok(match resolved.friend {
                    Some(friend) => Response::Friend(convert::friend(&friend)),
                    None => Response::Done,
                })
            }
            Request::DeleteFriend { friend } => {
                let request = DeleteFriendRequest {
                    user_id,
                    friend_id: friend.0,
                };
                call(shared, services.social.clone().delete_friend(request)).await?;
                Ok(Response::Done)
            }
            Request::CreateRoom { name } => {
                let request = CreateRoomRequest { user_id, name };
                let created = call(shared, services.social.clone().create_room(request)).await?;
                room_response(created.room.as_ref())
            }
            Request::JoinRoom { room } => {
                let request = JoinRoomRequest {
                    user_id,
                    room_id: room.0,
                };
                let joined = call(shared, services.social.clone().join_room(request)).await?;
                room_response(joined.room.as_ref())
            }
            Request::RoomMembers { room } => {
                let request = RoomMembersRequest {
                    user_id,
                    room_id: room.0,
                };
                let members = call(shared, services.social.clone().room_members(request)).await?;
                Ok(Response::Members(
                    members.members.iter().map(convert::user).collect(),
                ))
            }
            Request::GetCertificates { users } => {
                let request = GetCertificatesRequest {
                    user_ids: users.iter().map(|u| u.0).collect(),
                    usernames: Vec::new(),
                };
                let found =
                    call(shared, services.account.clone().get_certificates(request)).await?;
                Ok(Response::Certificates(
                    found
                        .certificates
                        .into_iter()
                        .map(convert::certificate)
                        .collect(),
                ))
            }
            Request::SendMessage(send) => {
                let conversation = send.conversation;
                accepted(conversation, self.queue_send(&session, send).await).await
            }
            Request::Sync { cursors, limit } => {
                let request = SyncRequest {
                    user_id,
                    cursors: cursors
                        .iter()
                        .map(|c| proto::message::Cursor {
                            conversation_id: c.conversation.0,
                            seq: c.seq.0,
                        })
                        .collect(),
                    limit,
                };
                let synced = call(shared, services.message.clone().sync(request)).await?;
                self.page(synced.messages, synced.more)
            }
            Request::AckDelivered { conversation, seq } => {
                let request = ack(user_id, conversation, seq);
                call(shared, services.message.clone().ack_delivered(request)).await?;
                Ok(Response::Done)
            }
            Request::AckRead { conversation, seq } => {
                let request = ack(user_id, conversation, seq);
                call(shared, services.message.clone().ack_read(request)).await?;
                Ok(Response::Done)
            }
            Request::History {
                conversation,
                before,
                limit,
            } => {
                let request = HistoryRequest {
                    user_id,
                    conversation_id: conversation.0,
                    before: before.0,
                    limit,
                };
                let history = call(shared, services.message.clone().history(request)).await?;
                self.page(history.messages, history.more)
            }
            Request::UploadStart { size, sha256 } => {
                let request = UploadStartRequest {
                    user_id,
                    size,
                    sha256: sha256.to_vec(),
                };
                let started = call(shared, services.message.clone().upload_start(request)).await?;
                Ok(Response::UploadStarted {
                    attachment: AttachmentId(started.attachment_id),
                    chunk_size: started.chunk_size,
                })
            }
            Request::UploadChunk {
                attachment,
                offset,
                data,
            } => {
                let request = UploadChunkRequest {
                    user_id,
                    attachment_id: attachment.0,
                    offset,
                    data: data.into_vec(),
                };
                let progress = call(shared, services.message.clone().upload_chunk(request)).await?;
                Ok(upload_progress(progress))
            }
            Request::UploadStatus { attachment } => {
                let request = UploadStatusRequest {
                    user_id,
                    attachment_id: attachment.0,
                };
                let progress =
                    call(shared, services.message.clone().upload_status(request)).await?;
                Ok(upload_progress(progress))
            }
            Request::Download {
                attachment,
                offset,
                max_len,
            } => {
                let request = DownloadRequest {
                    user_id,
                    attachment_id: attachment.0,
                    offset,
                    max_len,
                };
                let chunk = call(shared, services.message.clone().download(request)).await?;
                Ok(Response::Chunk {
                    attachment,
                    offset: chunk.offset,
                    total: chunk.total,
                    data: ByteBuf::from(chunk.data),
                })
            }
            Request::Contacts => Ok(Response::Contacts(self.bundle(user_id, &session.me).await?)),
        }
    }

    /// A page of messages that fits in one frame.
    fn page(
        &self,
        messages: Vec<proto::message::StoredMessage>,
        more: bool,
    ) -> Result<Response, Error> {
        let mut messages: Vec<StoredMessage> =
            messages.into_iter().filter_map(convert::message).collect();
        let cut = fit_page(&mut messages, self.shared.config.max_frame_len);
        Ok(Response::Messages {
            messages,
            more: more || cut,
        })
    }
}

fn ack(user_id: u64, conversation: ConversationId, seq: Seq) -> AckRequest {
    AckRequest {
        user_id,
        conversation_id: conversation.0,
        seq: seq.0,
    }
}

fn room_response(room: Option<&proto::common::Room>) -> Result<Response, Error> {
    room.map(|r| Response::Room(convert::room(r)))
        .ok_or_else(|| Error::new(ErrorCode::Internal, "internal error"))
}

fn upload_progress(progress: proto::message::UploadProgress) -> Response {
    Response::UploadProgress {
        attachment: AttachmentId(progress.attachment_id),
        received: progress.received,
        complete: progress.complete,
    }
}
