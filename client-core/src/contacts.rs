//! The contacts as the client knows them: friends with presence, groups, pending requests,
//! each conversation's last message time, and group members once fetched. Plain data changed
//! only by [`Contacts::apply`] and a few named edits, so the rules are tested without a server.

use std::collections::HashMap;

use protocol::message::{ConversationState, Event, Friend, LoginBundle, Room, UserSummary};
use protocol::{ConversationId, RoomId, Seq, Timestamp, UserId};

/// Friends, groups and requests, kept current by events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contacts {
    bundle: LoginBundle,
    /// Members of groups, by group, once asked for; kept current by membership events.
    members: HashMap<RoomId, Vec<UserSummary>>,
}

impl Contacts {
    /// Starts from what the server sent at login.
    pub fn new(bundle: LoginBundle) -> Self {
        Self {
            bundle,
            members: HashMap::new(),
        }
    }

    /// Everything as one bundle.
    pub fn bundle(&self) -> &LoginBundle {
        &self.bundle
    }

    /// Takes a fresh bundle from the server. Cached members are dropped: membership may have
    /// changed while the events were not arriving.
    pub fn replace(&mut self, bundle: LoginBundle) {
        *self = Self::new(bundle);
    }

    /// Follows one event from the server.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Message(stored) => {
                self.touch(stored.conversation, stored.sent_at);
                let mine = stored.sender == self.bundle.me.id;
                self.counted(stored.conversation, stored.seq, mine);
            }
            Event::Presence { user, presence } => {
                for friend in self
                    .bundle
                    .friends
                    .iter_mut()
                    .filter(|f| f.user.id == *user)
                {
                    friend.presence = presence.clone();
                }
            }
            Event::FriendRequest(user) => {
                self.forget_request(user.id);
                self.bundle.pending_requests.push(user.clone());
            }
            Event::FriendAdded(friend) => self.remember_friend(friend.clone()),
            Event::FriendRemoved { user } => self.forget_friend(*user),
            Event::RoomMemberJoined { room, member } => {
                if let Some(members) = self.members.get_mut(room)
                    && !members.iter().any(|m| m.id == member.id)
                {
                    members.push(member.clone());
                }
            }
            Event::Kicked { .. } => {}
        }
    }

    /// Counts message `seq` of `conversation`; one of the user's own is read as it is written
    /// (as the server counts it).
    pub fn counted(&mut self, conversation: ConversationId, seq: Seq, mine: bool) {
        let states = &mut self.bundle.conversations;
        let index = match states.iter().position(|s| s.conversation == conversation) {
            Some(index) => index,
            None => {
                states.push(ConversationState {
                    conversation,
                    max_seq: Seq(0),
                    delivered_seq: Seq(0),
                    read_seq: Seq(0),
                });
                states.len() - 1
            }
        };
        if let Some(state) = states.get_mut(index) {
            state.max_seq = state.max_seq.max(seq);
            if mine {
                state.delivered_seq = state.delivered_seq.max(seq);
                state.read_seq = state.read_seq.max(seq);
            }
        }
    }

    /// Notes that the user read `conversation` up to `seq`.
    pub fn read(&mut self, conversation: ConversationId, seq: Seq) {
        if let Some(state) = self
            .bundle
            .conversations
            .iter_mut()
            .find(|s| s.conversation == conversation)
        {
            state.read_seq = state.read_seq.max(seq);
        }
    }

    /// Unread messages of `conversation` as the server counts them (`max_seq - read_seq`).
    pub fn unread(&self, conversation: ConversationId) -> u64 {
        self.bundle
            .conversations
            .iter()
            .find(|s| s.conversation == conversation)
            .map_or(0, ConversationState::unread)
    }

    /// Records a friendship (made by us or by them); their request, if any, is answered.
    pub fn remember_friend(&mut self, friend: Friend) {
        self.forget_request(friend.user.id);
        self.bundle.friends.retain(|f| f.user.id != friend.user.id);
        self.bundle.friends.push(friend);
    }

    /// Removes a friend.
    pub fn forget_friend(&mut self, user: UserId) {
        self.bundle.friends.retain(|f| f.user.id != user);
    }

    /// Removes `user`'s pending request (answered, or to be asked again at next login).
    pub fn forget_request(&mut self, user: UserId) {
        self.bundle.pending_requests.retain(|u| u.id != user);
    }

    /// Records a group made or joined; its members are asked for again when next needed.
    pub fn remember_room(&mut self, room: Room) {
        self.members.remove(&room.id);
        self.bundle.rooms.retain(|r| r.id != room.id);
        self.bundle.rooms.push(room);
    }

    /// Notes a message at `at` in `conversation`, for the contact order (F6).
    pub fn touch(&mut self, conversation: ConversationId, at: Timestamp) {
        let later = |last: &mut Option<Timestamp>| {
            if last.is_none_or(|t| t < at) {
                *last = Some(at);
            }
        };
        for friend in self.bundle.friends.iter_mut() {
            if friend.conversation == conversation {
                later(&mut friend.last_message_at);
            }
        }
        for room in self.bundle.rooms.iter_mut() {
            if room.conversation == conversation {
                later(&mut room.last_message_at);
            }
        }
    }

    /// The friend whose one-to-one conversation this is.
    pub fn direct_peer(&self, conversation: ConversationId) -> Option<UserId> {
        self.bundle
            .friends
            .iter()
            .find(|f| f.conversation == conversation)
            .map(|f| f.user.id)
    }

    /// The group whose conversation this is.
    pub fn room_of(&self, conversation: ConversationId) -> Option<RoomId> {
        self.bundle
            .rooms
            .iter()
            .find(|r| r.conversation == conversation)
            .map(|r| r.id)
    }

    /// The members of `room`, if they were fetched and are still current.
    pub fn members(&self, room: RoomId) -> Option<&[UserSummary]> {
        self.members.get(&room).map(Vec::as_slice)
    }

    /// Drops the cached members of `room` (the server said they changed).
    pub fn forget_members(&mut self, room: RoomId) {
        self.members.remove(&room);
    }

    /// Caches the members of `room` as the server listed them.
    pub fn put_members(&mut self, room: RoomId, members: Vec<UserSummary>) {
        self.members.insert(room, members);
    }
}

#[cfg(test)]
mod tests {
    use protocol::message::{Presence, Sex, StoredMessage};
    use protocol::{ClientMsgId, Seq};
    use serde_bytes::ByteBuf;

    use super::*;

    fn user(id: u64) -> UserSummary {
        UserSummary {
            id: UserId(id),
            username: format!("u{id}"),
            sex: Sex::Undisclosed,
            age: 20,
        }
    }

    fn friend(id: u64) -> Friend {
        Friend {
            user: user(id),
            conversation: ConversationId(100 + id),
            presence: Presence::Offline,
            last_message_at: None,
        }
    }

    fn room(id: u64) -> Room {
        Room {
            id: RoomId(id),
            name: format!("room{id}"),
            conversation: ConversationId(200 + id),
            last_message_at: None,
        }
    }

    fn contacts() -> Contacts {
        Contacts::new(LoginBundle {
            me: user(1),
            friends: vec![friend(2), friend(3)],
            rooms: vec![room(7)],
            pending_requests: vec![user(4)],
            conversations: Vec::new(),
        })
    }

    fn message(conversation: ConversationId, at: u64) -> Event {
        Event::Message(StoredMessage {
            conversation,
            seq: Seq(1),
            sender: UserId(2),
            client_msg_id: ClientMsgId([0; 16]),
            sent_at: Timestamp(at),
            envelope: ByteBuf::new(),
        })
    }

    #[test]
    fn presence_changes_only_that_friend() {
        let mut c = contacts();
        let addr = "127.0.0.1:5000".parse().unwrap();
        c.apply(&Event::Presence {
            user: UserId(3),
            presence: Presence::Online(addr),
        });
        assert_eq!(c.bundle().friends[0].presence, Presence::Offline);
        assert_eq!(c.bundle().friends[1].presence, Presence::Online(addr));
    }

    #[test]
    fn a_request_is_listed_once_and_cleared_by_the_friendship() {
        let mut c = contacts();
        c.apply(&Event::FriendRequest(user(5)));
        c.apply(&Event::FriendRequest(user(5)));
        assert_eq!(c.bundle().pending_requests.len(), 2);
        c.apply(&Event::FriendAdded(friend(5)));
        assert_eq!(c.bundle().pending_requests, vec![user(4)]);
        assert_eq!(c.direct_peer(ConversationId(105)), Some(UserId(5)));
    }

    #[test]
    fn a_removed_friend_is_gone() {
        let mut c = contacts();
        c.apply(&Event::FriendRemoved { user: UserId(2) });
        assert_eq!(c.direct_peer(ConversationId(102)), None);
        assert_eq!(c.bundle().friends.len(), 1);
    }

    #[test]
    fn messages_move_the_last_message_time_forward_only() {
        let mut c = contacts();
        c.apply(&message(ConversationId(103), 50));
        c.apply(&message(ConversationId(103), 40));
        c.apply(&message(ConversationId(207), 60));
        assert_eq!(c.bundle().friends[1].last_message_at, Some(Timestamp(50)));
        assert_eq!(c.bundle().friends[0].last_message_at, None);
        assert_eq!(c.bundle().rooms[0].last_message_at, Some(Timestamp(60)));
    }

    #[test]
    fn members_follow_joins_once_cached() {
        let mut c = contacts();
        let joined = Event::RoomMemberJoined {
            room: RoomId(7),
            member: user(9),
        };
        c.apply(&joined);
        assert_eq!(
            c.members(RoomId(7)),
            None,
            "nothing cached, nothing invented"
        );
        c.put_members(RoomId(7), vec![user(1), user(2)]);
        c.apply(&joined);
        c.apply(&joined);
        let ids: Vec<_> = c.members(RoomId(7)).unwrap().iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![UserId(1), UserId(2), UserId(9)]);
        assert_eq!(c.room_of(ConversationId(207)), Some(RoomId(7)));
    }

    #[test]
    fn rejoining_or_refreshing_drops_cached_members() {
        let mut c = contacts();
        c.put_members(RoomId(7), vec![user(1)]);
        c.remember_room(room(7));
        assert_eq!(c.members(RoomId(7)), None);
        assert_eq!(c.bundle().rooms.len(), 1);
        c.put_members(RoomId(7), vec![user(1)]);
        c.replace(c.bundle().clone());
        assert_eq!(c.members(RoomId(7)), None);
    }
}
