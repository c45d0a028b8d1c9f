//! One function per client request. The session loop (`session.rs`) answers the requests that
//! change the connection's state; every request of a logged-in session comes to [`dispatch`],
//! whose arms each name one handler.
//!
//! A handler that must act in the order requests were read (queueing a message, so one
//! sender's pipelined messages are stored in the order sent) does that part before
//! `dispatch` returns; the rest of every answer is an [`Answer`] the session awaits beside
//! the connection's other requests.

mod account;
mod files;
mod message;
mod social;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use protocol::message::{Error, ErrorCode, Request, Response};

pub use account::{end_session, login};

use crate::session::{Conn, Session};

/// An answer still to be awaited.
pub type Answer = Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

/// A logged-in request's context: its connection and its session.
#[derive(Clone)]
pub struct Ctx {
    conn: Arc<Conn>,
    session: Session,
}

impl Ctx {
    fn user_id(&self) -> u64 {
        self.session.user
    }
}

/// The most the answer to `body` can weigh in the connection's byte budget (see
/// [`crate::budget`]): a frame for answers that list or page (they are cut to fit one), the
/// asked length for a file chunk, a small allowance for the rest.
pub fn answer_bound(body: &Request, max_frame_len: usize) -> usize {
    let allowance = crate::hub::MESSAGE_ALLOWANCE;
    match body {
        Request::Sync { .. }
        | Request::History { .. }
        | Request::Contacts
        | Request::SearchUsers { .. }
        | Request::RoomMembers { .. }
        | Request::GetCertificates { .. } => max_frame_len,
        Request::Download { max_len, .. } => usize::try_from(*max_len)
            .unwrap_or(usize::MAX)
            .min(max_frame_len)
            .saturating_add(allowance),
        _ => allowance,
    }
}

/// Routes a logged-in session's request to its handler.
pub async fn dispatch(conn: &Arc<Conn>, session: &Session, body: Request) -> Answer {
    let cx = Ctx {
        conn: conn.clone(),
        session: session.clone(),
    };
    match body {
        Request::Register(_) | Request::Login(_) => ready(Err(already_logged_in())),
        Request::Logout => account::logout(&cx),
        Request::Ping { nonce } => ready(Ok(Response::Pong { nonce })),
        Request::SearchUsers { query } => Box::pin(social::search_users(cx, query)),
        Request::AddFriend { user } => Box::pin(social::add_friend(cx, user)),
        Request::ResolveFriendRequest { from, decision } => {
            Box::pin(social::resolve_friend_request(cx, from, decision))
        }
        Request::DeleteFriend { friend } => Box::pin(social::delete_friend(cx, friend)),
        Request::CreateRoom { name } => Box::pin(social::create_room(cx, name)),
        Request::JoinRoom { room } => Box::pin(social::join_room(cx, room)),
        Request::RoomMembers { room } => Box::pin(social::room_members(cx, room)),
        Request::GetCertificates { users } => Box::pin(account::certificates(cx, users)),
        // Boxed: the one step awaited here would otherwise size every session's task for it,
        // idle ones included (see `session::run`).
        Request::SendMessage(send) => Box::pin(message::send(cx, send)).await,
        Request::Sync { cursors, limit } => Box::pin(message::sync(cx, cursors, limit)),
        Request::AckDelivered { conversation, seq } => {
            Box::pin(message::ack_delivered(cx, conversation, seq))
        }
        Request::AckRead { conversation, seq } => {
            Box::pin(message::ack_read(cx, conversation, seq))
        }
        Request::History {
            conversation,
            before,
            limit,
        } => Box::pin(message::history(cx, conversation, before, limit)),
        Request::UploadStart { size, sha256 } => Box::pin(files::upload_start(cx, size, sha256)),
        Request::UploadChunk {
            attachment,
            offset,
            data,
        } => Box::pin(files::upload_chunk(cx, attachment, offset, data)),
        Request::UploadStatus { attachment } => Box::pin(files::upload_status(cx, attachment)),
        Request::Download {
            attachment,
            offset,
            max_len,
        } => Box::pin(files::download(cx, attachment, offset, max_len)),
        Request::Contacts => Box::pin(account::contacts(cx)),
        Request::Prelogin { username } => Box::pin(account::prelogin_after_login(cx, username)),
        Request::FetchPrivateKey => Box::pin(account::fetch_private_key(cx)),
        Request::StorePrivateKey(wrapped) => Box::pin(account::store_private_key(cx, wrapped)),
        Request::ChangePassword {
            old_auth_key,
            new_auth_key,
            kdf,
            wrapped_key,
        } => Box::pin(account::change_password(
            cx,
            old_auth_key,
            new_auth_key,
            kdf,
            wrapped_key,
        )),
        Request::ResetKey {
            public_key,
            wrapped_key,
        } => Box::pin(account::reset_key(cx, public_key, wrapped_key)),
    }
}

/// The request's name in the metrics.
pub fn kind(body: &Request) -> &'static str {
    match body {
        Request::Register(_) => "register",
        Request::Login(_) => "login",
        Request::Logout => "logout",
        Request::Ping { .. } => "ping",
        Request::SearchUsers { .. } => "search_users",
        Request::AddFriend { .. } => "add_friend",
        Request::ResolveFriendRequest { .. } => "resolve_friend_request",
        Request::DeleteFriend { .. } => "delete_friend",
        Request::CreateRoom { .. } => "create_room",
        Request::JoinRoom { .. } => "join_room",
        Request::RoomMembers { .. } => "room_members",
        Request::GetCertificates { .. } => "get_certificates",
        Request::SendMessage(_) => "send_message",
        Request::Sync { .. } => "sync",
        Request::AckDelivered { .. } => "ack_delivered",
        Request::AckRead { .. } => "ack_read",
        Request::History { .. } => "history",
        Request::UploadStart { .. } => "upload_start",
        Request::UploadChunk { .. } => "upload_chunk",
        Request::UploadStatus { .. } => "upload_status",
        Request::Download { .. } => "download",
        Request::Contacts => "contacts",
        Request::Prelogin { .. } => "prelogin",
        Request::FetchPrivateKey => "fetch_private_key",
        Request::StorePrivateKey(_) => "store_private_key",
        Request::ChangePassword { .. } => "change_password",
        Request::ResetKey { .. } => "reset_key",
    }
}

/// Answers a request read before login (`Login` itself is the session loop's: it changes the
/// connection's state).
pub async fn before_login(conn: &Conn, body: Request) -> Result<Response, Error> {
    match body {
        Request::Register(register) => account::register(conn, register).await,
        Request::Prelogin { username } => account::prelogin(conn, username).await,
        Request::Ping { nonce } => Ok(Response::Pong { nonce }),
        _ => Err(Error::new(ErrorCode::NotLoggedIn, "log in first")),
    }
}

fn ready(result: Result<Response, Error>) -> Answer {
    Box::pin(std::future::ready(result))
}

fn already_logged_in() -> Error {
    Error::new(
        ErrorCode::AlreadyLoggedIn,
        "this connection is already logged in",
    )
}

/// The refusal of a request over the rate `limit` (its name in the metrics), telling the
/// user `what` they did too much of.
fn rate_limited(limit: &'static str, what: &str) -> Error {
    crate::telemetry::rate_limited(limit);
    Error::new(
        ErrorCode::RateLimited,
        format!("too many {what}; wait a little and try again"),
    )
}

/// Bounds a service call by the request timeout and maps its failure.
async fn call<T>(
    timeout: Duration,
    future: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Error> {
    match tokio::time::timeout(timeout, future).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(crate::convert::status_to_error(&status)),
        Err(_) => Err(crate::convert::unavailable()),
    }
}
