//! Accounts: register, log in and out, certificates, and the contact bundle a client shows.

use std::sync::Arc;

use proto::account::{
    ChangePasswordRequest, FetchPrivateKeyRequest, GetCertificatesRequest, LoginRequest,
    LogoutRequest, PreloginRequest, RegisterRequest, ResetKeyRequest, StorePrivateKeyRequest,
};
use proto::common::{PeerAddr, UserSummary};
use proto::message::ConversationStatesRequest;
use proto::social::{ListFriendsRequest, ListRoomsRequest, PendingRequestsRequest};
use protocol::message::{
    Error, ErrorCode, Field, FieldError, KdfParams, Login, LoginBundle, Register, Response,
    WrappedPrivateKey,
};
use protocol::{PublicKey, UserId};
use serde_bytes::ByteBuf;

use super::{Answer, Ctx, call, rate_limited, ready};
use crate::convert;
use crate::session::{Conn, Session};

/// Why a connection closes after `Logout`.
const LOGGED_OUT: &str = "logged out";

/// account-svc checks a key's length; its value must also be an element of the group.
fn check_public_key(public_key: &[u8]) -> Result<(), Error> {
    if PublicKey::from_bytes(public_key).is_ok() {
        return Ok(());
    }
    Err(Error {
        code: ErrorCode::InvalidField,
        message: "some fields are not valid".to_owned(),
        fields: vec![FieldError {
            field: Field::PublicKey,
            message: "not a valid public key (256 bytes, a value from 2 to p-2)".to_owned(),
        }],
    })
}

pub async fn register(conn: &Conn, register: Register) -> Result<Response, Error> {
    let shared = &conn.shared;
    if !shared.limits.auth.allow(&conn.peer.ip()) {
        return Err(rate_limited(
            "auth",
            "registrations and logins from this address",
        ));
    }
    check_public_key(&register.public_key)?;
    let request = RegisterRequest {
        username: register.username,
        auth_key: register.auth_key.to_vec(),
        kdf: Some(convert::kdf_to_proto(&register.kdf)),
        email: register.email,
        sex: convert::sex_to_proto(register.sex).into(),
        age: u32::from(register.age),
        public_key: register.public_key.into_vec(),
    };
    let mut account = shared.services.account.clone();
    let registered = call(shared.request_timeout(), account.register(request)).await?;
    if !registered.field_errors.is_empty() {
        return Err(convert::field_errors(&registered.field_errors));
    }
    tracing::info!(user = registered.user_id, peer = %conn.peer, "registered");
    Ok(Response::Registered {
        user: UserId(registered.user_id),
        server_certificate: ByteBuf::from(shared.identity.encoded_certificate().to_vec()),
    })
}

/// Logs in: the new session and what its client shows first.
pub async fn login(conn: &Conn, login: Login) -> Result<(Session, LoginBundle), Error> {
    let shared = &conn.shared;
    if !shared.limits.auth.allow(&conn.peer.ip()) {
        return Err(rate_limited(
            "auth",
            "registrations and logins from this address",
        ));
    }
    let request = LoginRequest {
        username: login.username,
        auth_key: login.auth_key.to_vec(),
        gateway_id: shared.gateway_id.clone(),
        session_id: conn.id,
        peer: Some(PeerAddr {
            ip: conn.peer.ip().to_string(),
            port: u32::from(conn.peer.port()),
        }),
    };
    let mut account = shared.services.account.clone();
    let logged_in = call(shared.request_timeout(), account.login(request)).await?;
    let user = logged_in.user.unwrap_or_default();
    let bundle = bundle(conn, &user).await?;
    let session = Session {
        user: user.id,
        epoch: logged_in.epoch,
        me: Arc::new(user),
    };
    Ok((session, bundle))
}

/// `Logout` ends the connection; the session ends as every connection's does (`end_session`),
/// once this answer is sent.
pub fn logout(cx: &Ctx) -> Answer {
    cx.conn.outbound.end(LOGGED_OUT);
    ready(Ok(Response::Done))
}

/// Records with account-svc that `session` ended (its friends see it go offline), in its
/// turn among the gateway's logouts ([`LOGOUTS_IN_FLIGHT`](crate::LOGOUTS_IN_FLIGHT)).
pub async fn end_session(conn: &Conn, session: &Session) {
    // The semaphore is never closed; were it, the logout would go ahead unbounded.
    let _turn = conn.shared.logouts.acquire().await.ok();
    let mut account = conn.shared.services.account.clone();
    let request = LogoutRequest {
        user_id: session.user,
        epoch: session.epoch,
    };
    if let Err(err) = call(conn.shared.request_timeout(), account.logout(request)).await {
        tracing::warn!(user = session.user, %err, "logout not recorded; the lease will expire it");
    }
}

/// How to stretch a name's password; answered alike for names that are not registered.
pub async fn prelogin(conn: &Conn, username: String) -> Result<Response, Error> {
    let shared = &conn.shared;
    let mut account = shared.services.account.clone();
    let request = PreloginRequest { username };
    let params = call(shared.request_timeout(), account.prelogin(request)).await?;
    convert::kdf(&params)
        .map(Response::Prelogin)
        .ok_or_else(|| Error::new(ErrorCode::Internal, "internal error"))
}

/// `Prelogin` after login (to change the password, a client stretches the current one again).
pub async fn prelogin_after_login(cx: Ctx, username: String) -> Result<Response, Error> {
    prelogin(&cx.conn, username).await
}

pub async fn fetch_private_key(cx: Ctx) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let mut account = shared.services.account.clone();
    let request = FetchPrivateKeyRequest {
        user_id: cx.user_id(),
    };
    let found = call(shared.request_timeout(), account.fetch_private_key(request)).await?;
    Ok(Response::PrivateKey {
        key_version: found.key_version,
        wrapped: found.wrapped.and_then(convert::wrapped),
    })
}

pub async fn store_private_key(cx: Ctx, wrapped: WrappedPrivateKey) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let mut account = shared.services.account.clone();
    let request = StorePrivateKeyRequest {
        user_id: cx.user_id(),
        wrapped: Some(convert::wrapped_to_proto(wrapped)),
    };
    call(shared.request_timeout(), account.store_private_key(request)).await?;
    Ok(Response::Done)
}

pub async fn change_password(
    cx: Ctx,
    old_auth_key: [u8; 32],
    new_auth_key: [u8; 32],
    kdf: KdfParams,
    wrapped: WrappedPrivateKey,
) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    if !shared.limits.auth.allow(&cx.conn.peer.ip()) {
        return Err(rate_limited(
            "auth",
            "registrations and logins from this address",
        ));
    }
    let mut account = shared.services.account.clone();
    let request = ChangePasswordRequest {
        user_id: cx.user_id(),
        old_auth_key: old_auth_key.to_vec(),
        new_auth_key: new_auth_key.to_vec(),
        kdf: Some(convert::kdf_to_proto(&kdf)),
        wrapped: Some(convert::wrapped_to_proto(wrapped)),
    };
    call(shared.request_timeout(), account.change_password(request)).await?;
    Ok(Response::Done)
}

pub async fn reset_key(
    cx: Ctx,
    public_key: ByteBuf,
    wrapped: WrappedPrivateKey,
) -> Result<Response, Error> {
    check_public_key(&public_key)?;
    let shared = &cx.conn.shared;
    let mut account = shared.services.account.clone();
    let request = ResetKeyRequest {
        user_id: cx.user_id(),
        public_key: public_key.into_vec(),
        wrapped: Some(convert::wrapped_to_proto(wrapped)),
    };
    let certificate = call(shared.request_timeout(), account.reset_key(request)).await?;
    Ok(Response::Certificate(convert::certificate(certificate)))
}

pub async fn certificates(cx: Ctx, users: Vec<UserId>) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = GetCertificatesRequest {
        user_ids: users.iter().map(|u| u.0).collect(),
        usernames: Vec::new(),
        requester_id: cx.user_id(),
    };
    let mut account = shared.services.account.clone();
    let found = call(shared.request_timeout(), account.get_certificates(request)).await?;
    Ok(Response::Certificates(
        found
            .certificates
            .into_iter()
            .map(convert::certificate)
            .collect(),
    ))
}

pub async fn contacts(cx: Ctx) -> Result<Response, Error> {
    Ok(Response::Contacts(bundle(&cx.conn, &cx.session.me).await?))
}

/// Everything a client shows after logging in: friends, groups, pending requests, counters.
async fn bundle(conn: &Conn, me: &UserSummary) -> Result<LoginBundle, Error> {
    let shared = &conn.shared;
    let timeout = shared.request_timeout();
    let user_id = me.id;
    let services = &shared.services;
    let (mut social_a, mut social_b, mut social_c) = (
        services.social.clone(),
        services.social.clone(),
        services.social.clone(),
    );
    let mut message = services.message.clone();
    let (friends, rooms, pending, states) = tokio::join!(
        call(
            timeout,
            social_a.list_friends(ListFriendsRequest { user_id })
        ),
        call(timeout, social_b.list_rooms(ListRoomsRequest { user_id })),
        call(
            timeout,
            social_c.pending_requests(PendingRequestsRequest { user_id })
        ),
        call(
            timeout,
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
