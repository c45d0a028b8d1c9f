//! The tonic implementation of `uchat.social.v1.Social`: decode, call logic and store, map
//! the error, push what other users must see.

use proto::common::{Friend, PeerAddr, Presence, Room, UserSummary};
use proto::gateway::RoomMemberJoined;
use proto::gateway::notification::Event;
use proto::social::social_server::Social;
use proto::social::*;
use sea_orm::DatabaseConnection;
use service_kit::push::{Pusher, summary};
use service_kit::{db_id, wire_id};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::logic;
use crate::store::{self, FriendRow, Requested, RoomRow};

/// social-svc's state, passed explicitly.
#[derive(Debug, Clone)]
pub struct SocialRpc {
    db: DatabaseConnection,
    push: Pusher,
}

impl SocialRpc {
    /// Makes the service.
    pub fn new(db: DatabaseConnection, push: Pusher) -> Self {
        Self { db, push }
    }

    /// Pushes `event` to `users` in the background: the change is committed already, and a
    /// slow gateway must not slow the caller.
    fn notify(&self, users: Vec<i64>, event: Event) {
        let (db, push) = (self.db.clone(), self.push.clone());
        tokio::spawn(async move { push.notify_users(&db, &users, event).await });
    }

    /// Tells `to` about their new friend `friend`, as `to` sees them.
    fn announce_friend(&self, to: i64, friend: i64) {
        let (db, push) = (self.db.clone(), self.push.clone());
        tokio::spawn(async move {
            match store::friend(&db, to, friend).await {
                Ok(Some(row)) => {
                    let view = friend_view(&row);
                    push.notify_users(&db, &[to], Event::FriendAdded(view))
                        .await
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(%err, "cannot build a friend for a push"),
            }
        });
    }
}

fn id(value: u64, what: &'static str) -> Result<i64, Error> {
    db_id(value).filter(|v| *v > 0).ok_or(Error::Invalid(what))
}

fn summaries(users: &[entity::user::Model]) -> Vec<UserSummary> {
    users.iter().map(summary).collect()
}

/// A friend as the contact list shows them.
fn friend_view(row: &FriendRow) -> Friend {
    let presence = match &row.online_at {
        Some((ip, port)) => Presence {
            online: true,
            addr: Some(PeerAddr {
                ip: ip.clone(),
                port: u32::try_from(*port).unwrap_or(0),
            }),
        },
        None => Presence::default(),
    };
    Friend {
        user: Some(summary(&row.user)),
        conversation_id: wire_id(row.conversation),
        presence: Some(presence),
        last_message_at: wire_id(row.last_message_at),
    }
}

/// A room as the contact list shows it.
fn room_view(row: &RoomRow) -> Room {
    Room {
        id: wire_id(row.room.id),
        name: row.room.name.clone(),
        conversation_id: wire_id(row.room.conversation_id),
        last_message_at: wire_id(row.last_message_at),
    }
}

#[tonic::async_trait]
impl Social for SocialRpc {
    async fn search_users(
        &self,
        request: Request<SearchUsersRequest>,
    ) -> Result<Response<SearchUsersResponse>, Status> {
        let request = request.into_inner();
        let searcher = id(request.user_id, "user id")?;
        let key = service_kit::name_key(request.query.trim());
        if key.is_empty() {
            return Err(Error::Invalid("enter a name to search for").into());
        }
        if key.chars().count() > logic::MAX_QUERY_CHARS {
            return Ok(Response::new(SearchUsersResponse { users: Vec::new() }));
        }
        let users = store::search(&self.db, searcher, &key, logic::search_limit(request.limit))
            .await
            .map_err(Error::from)?;
        Ok(Response::new(SearchUsersResponse {
            users: summaries(&users),
        }))
    }

    async fn add_friend(
        &self,
        request: Request<AddFriendRequest>,
    ) -> Result<Response<AddFriendResponse>, Status> {
        let request = request.into_inner();
        let (from, to) = (
            id(request.user_id, "user id")?,
            id(request.friend_id, "friend id")?,
        );
        let friend = match store::add_friend(&self.db, from, to).await? {
            Requested::Pending => {
                if let Some(requester) = store::user(&self.db, from).await.map_err(Error::from)? {
                    self.notify(vec![to], Event::FriendRequest(summary(&requester)));
                }
                None
            }
            Requested::Friends(_) => {
                self.announce_friend(to, from);
                store::friend(&self.db, from, to)
                    .await
                    .map_err(Error::from)?
                    .as_ref()
                    .map(friend_view)
            }
        };
        Ok(Response::new(AddFriendResponse { friend }))
    }

    async fn pending_requests(
        &self,
        request: Request<PendingRequestsRequest>,
    ) -> Result<Response<PendingRequestsResponse>, Status> {
        let user = id(request.into_inner().user_id, "user id")?;
        let requesters = store::pending(&self.db, user).await.map_err(Error::from)?;
        Ok(Response::new(PendingRequestsResponse {
            requesters: summaries(&requesters),
        }))
    }

    async fn resolve_friend_request(
        &self,
        request: Request<ResolveFriendRequestRequest>,
    ) -> Result<Response<ResolveFriendRequestResponse>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let requester = id(request.requester_id, "requester id")?;
        let friend = match request.decision() {
            Decision::Accept => {
                store::accept(&self.db, user, requester).await?;
                self.announce_friend(requester, user);
                store::friend(&self.db, user, requester)
                    .await
                    .map_err(Error::from)?
                    .as_ref()
                    .map(friend_view)
            }
            Decision::Reject => {
                store::reject(&self.db, user, requester).await?;
                None
            }
            Decision::Later => {
                store::check_pending(&self.db, user, requester).await?;
                None
            }
            Decision::Unspecified => {
                return Err(Error::Invalid("choose accept, reject or later").into());
            }
        };
        Ok(Response::new(ResolveFriendRequestResponse { friend }))
    }

    async fn delete_friend(
        &self,
        request: Request<DeleteFriendRequest>,
    ) -> Result<Response<DeleteFriendResponse>, Status> {
        let request = request.into_inner();
        let (user, friend) = (
            id(request.user_id, "user id")?,
            id(request.friend_id, "friend id")?,
        );
        store::unfriend(&self.db, user, friend).await?;
        self.notify(vec![friend], Event::FriendRemoved(wire_id(user)));
        Ok(Response::new(DeleteFriendResponse {}))
    }

    async fn list_friends(
        &self,
        request: Request<ListFriendsRequest>,
    ) -> Result<Response<ListFriendsResponse>, Status> {
        let user = id(request.into_inner().user_id, "user id")?;
        let rows = store::friends(&self.db, user).await.map_err(Error::from)?;
        let friends = rows.iter().map(friend_view).collect();
        Ok(Response::new(ListFriendsResponse { friends }))
    }

    async fn create_room(
        &self,
        request: Request<CreateRoomRequest>,
    ) -> Result<Response<CreateRoomResponse>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let row = store::create_room(&self.db, user, &request.name).await?;
        tracing::info!(user, room = row.room.id, "room created");
        Ok(Response::new(CreateRoomResponse {
            room: Some(room_view(&row)),
        }))
    }

    async fn join_room(
        &self,
        request: Request<JoinRoomRequest>,
    ) -> Result<Response<JoinRoomResponse>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let room_id = db_id(request.room_id).ok_or(Error::RoomNotFound(request.room_id))?;
        let (row, others) = store::join_room(&self.db, user, room_id).await?;
        let room = room_view(&row);
        if let Some(member) = store::user(&self.db, user).await.map_err(Error::from)? {
            self.notify(
                others,
                Event::RoomMemberJoined(RoomMemberJoined {
                    room_id: room.id,
                    member: Some(summary(&member)),
                }),
            );
        }
        Ok(Response::new(JoinRoomResponse { room: Some(room) }))
    }

    async fn room_members(
        &self,
        request: Request<RoomMembersRequest>,
    ) -> Result<Response<RoomMembersResponse>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let room_id = db_id(request.room_id).ok_or(Error::RoomNotFound(request.room_id))?;
        let members = store::room_members(&self.db, user, room_id).await?;
        Ok(Response::new(RoomMembersResponse {
            members: summaries(&members),
        }))
    }

    async fn list_rooms(
        &self,
        request: Request<ListRoomsRequest>,
    ) -> Result<Response<ListRoomsResponse>, Status> {
        let user = id(request.into_inner().user_id, "user id")?;
        let rows = store::rooms(&self.db, user).await.map_err(Error::from)?;
        Ok(Response::new(ListRoomsResponse {
            rooms: rows.iter().map(room_view).collect(),
        }))
    }
}
