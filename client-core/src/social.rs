//! Friends and groups: search, requests and their answers, deletion, groups made and joined,
//! and group members (cached until a membership event says otherwise).

use protocol::message::{
    Friend, FriendDecision, LoginBundle, Request, Response, Room, UserSummary,
};
use protocol::{ConversationId, RoomId, UserId};

use crate::client::{Client, unexpected};
use crate::contacts::Contacts;
use crate::error::ClientError;

impl Client {
    /// Asks the server for the contacts again.
    pub async fn refresh_contacts(&self) -> Result<LoginBundle, ClientError> {
        match self.request(Request::Contacts).await? {
            Response::Contacts(bundle) => {
                self.edit_contacts(|c| c.replace(bundle.clone()));
                if let Ok(account) = self.account() {
                    account.store.put_contacts(&bundle).await?;
                    let friends: Vec<UserId> = bundle.friends.iter().map(|f| f.user.id).collect();
                    self.public_keys(&account, &friends).await?;
                }
                Ok(bundle)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Users whose name starts with `query`.
    pub async fn search(&self, query: &str) -> Result<Vec<UserSummary>, ClientError> {
        match self
            .request(Request::SearchUsers {
                query: query.to_owned(),
            })
            .await?
        {
            Response::Users(users) => Ok(users),
            other => Err(unexpected(other)),
        }
    }

    /// Asks `user` to be friends; `Some` when they had asked too (now friends).
    pub async fn add_friend(&self, user: UserId) -> Result<Option<Friend>, ClientError> {
        match self.request(Request::AddFriend { user }).await? {
            Response::FriendRequestSent { friend } => {
                if let Some(friend) = &friend {
                    self.edit_contacts(|c| c.remember_friend(friend.clone()));
                }
                Ok(friend)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Answers `from`'s friend request; `Some` when accepted. Whatever the answer, the
    /// request leaves the list (Later: the server offers it again at the next login).
    pub async fn resolve_friend_request(
        &self,
        from: UserId,
        decision: FriendDecision,
    ) -> Result<Option<Friend>, ClientError> {
        match self
            .request(Request::ResolveFriendRequest { from, decision })
            .await?
        {
            Response::Friend(friend) => {
                self.edit_contacts(|c| c.remember_friend(friend.clone()));
                Ok(Some(friend))
            }
            Response::Done => {
                self.edit_contacts(|c| c.forget_request(from));
                Ok(None)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Ends the friendship with `friend`, on both sides.
    pub async fn delete_friend(&self, friend: UserId) -> Result<(), ClientError> {
        self.request(Request::DeleteFriend { friend }).await?;
        self.edit_contacts(|c| c.forget_friend(friend));
        Ok(())
    }

    /// Makes a group; the server assigns its number.
    pub async fn create_room(&self, name: &str) -> Result<Room, ClientError> {
        let response = self
            .request(Request::CreateRoom {
                name: name.to_owned(),
            })
            .await?;
        self.room_response(response)
    }

    /// Joins a group by number.
    pub async fn join_room(&self, room: RoomId) -> Result<Room, ClientError> {
        let response = self.request(Request::JoinRoom { room }).await?;
        self.room_response(response)
    }

    fn room_response(&self, response: Response) -> Result<Room, ClientError> {
        match response {
            Response::Room(room) => {
                self.edit_contacts(|c| c.remember_room(room.clone()));
                Ok(room)
            }
            other => Err(unexpected(other)),
        }
    }

    /// A group's members: from the cache, which membership events keep current, or else
    /// from the server.
    pub async fn room_members(&self, room: RoomId) -> Result<Vec<UserSummary>, ClientError> {
        let cached = self
            .state()
            .contacts
            .as_ref()
            .and_then(|c| c.members(room).map(<[UserSummary]>::to_vec));
        if let Some(members) = cached {
            return Ok(members);
        }
        match self.request(Request::RoomMembers { room }).await? {
            Response::Members(members) => {
                self.edit_contacts(|c| c.put_members(room, members.clone()));
                Ok(members)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Changes the contacts, if logged in.
    pub(crate) fn edit_contacts(&self, edit: impl FnOnce(&mut Contacts)) {
        if let Some(contacts) = self.state().contacts.as_mut() {
            edit(contacts);
        }
    }

    /// The friend whose one-to-one conversation this is.
    pub(crate) fn direct_peer(&self, conversation: ConversationId) -> Option<UserId> {
        self.state()
            .contacts
            .as_ref()
            .and_then(|c| c.direct_peer(conversation))
    }

    /// The group whose conversation this is.
    pub(crate) fn room_of(&self, conversation: ConversationId) -> Option<RoomId> {
        self.state()
            .contacts
            .as_ref()
            .and_then(|c| c.room_of(conversation))
    }
}
