//! Friends, search and groups: one function per request, each one call to social-svc.

use proto::social::{
    AddFriendRequest, CreateRoomRequest, Decision, DeleteFriendRequest, JoinRoomRequest,
    ResolveFriendRequestRequest, RoomMembersRequest, SearchUsersRequest,
};
use protocol::message::{Error, ErrorCode, FriendDecision, Response};
use protocol::{RoomId, UserId};

use super::{Ctx, call, rate_limited};
use crate::convert;

pub async fn search_users(cx: Ctx, query: String) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let user_id = cx.user_id();
    if !shared.limits.searches.allow(&user_id) {
        return Err(rate_limited("searches", "searches"));
    }
    let request = SearchUsersRequest {
        user_id,
        query,
        limit: 0,
    };
    let mut social = shared.services.social.clone();
    let found = call(shared.request_timeout(), social.search_users(request)).await?;
    Ok(Response::Users(
        found.users.iter().map(convert::user).collect(),
    ))
}

pub async fn add_friend(cx: Ctx, user: UserId) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let user_id = cx.user_id();
    if !shared.limits.friend_requests.allow(&user_id) {
        return Err(rate_limited("friend_requests", "friend requests"));
    }
    let request = AddFriendRequest {
        user_id,
        friend_id: user.0,
    };
    let mut social = shared.services.social.clone();
    let added = call(shared.request_timeout(), social.add_friend(request)).await?;
    Ok(Response::FriendRequestSent {
        friend: added.friend.as_ref().map(convert::friend),
    })
}

pub async fn resolve_friend_request(
    cx: Ctx,
    from: UserId,
    decision: FriendDecision,
) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = ResolveFriendRequestRequest {
        user_id: cx.user_id(),
        requester_id: from.0,
        decision: match decision {
            FriendDecision::Accept => Decision::Accept,
            FriendDecision::Reject => Decision::Reject,
            FriendDecision::Later => Decision::Later,
        }
        .into(),
    };
    let mut social = shared.services.social.clone();
    let resolved = call(
        shared.request_timeout(),
        social.resolve_friend_request(request),
    )
    .await?;
    Ok(match resolved.friend {
        Some(friend) => Response::Friend(convert::friend(&friend)),
        None => Response::Done,
    })
}

pub async fn delete_friend(cx: Ctx, friend: UserId) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = DeleteFriendRequest {
        user_id: cx.user_id(),
        friend_id: friend.0,
    };
    let mut social = shared.services.social.clone();
    call(shared.request_timeout(), social.delete_friend(request)).await?;
    Ok(Response::Done)
}

pub async fn create_room(cx: Ctx, name: String) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = CreateRoomRequest {
        user_id: cx.user_id(),
        name,
    };
    let mut social = shared.services.social.clone();
    let created = call(shared.request_timeout(), social.create_room(request)).await?;
    room_response(created.room.as_ref())
}

pub async fn join_room(cx: Ctx, room: RoomId) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = JoinRoomRequest {
        user_id: cx.user_id(),
        room_id: room.0,
    };
    let mut social = shared.services.social.clone();
    let joined = call(shared.request_timeout(), social.join_room(request)).await?;
    room_response(joined.room.as_ref())
}

pub async fn room_members(cx: Ctx, room: RoomId) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = RoomMembersRequest {
        user_id: cx.user_id(),
        room_id: room.0,
    };
    let mut social = shared.services.social.clone();
    let members = call(shared.request_timeout(), social.room_members(request)).await?;
    Ok(Response::Members(
        members.members.iter().map(convert::user).collect(),
    ))
}

fn room_response(room: Option<&proto::common::Room>) -> Result<Response, Error> {
    room.map(|r| Response::Room(convert::room(r)))
        .ok_or_else(|| Error::new(ErrorCode::Internal, "internal error"))
}
