//! The state's rules, without a server: unread counts, contact order, delivery states.

use client_core::{ClientEvent, LocalMessage};
use protocol::e2e::{Body, StyledText};
use protocol::message::{Friend, LoginBundle, Presence, Sex, UserSummary};
use protocol::{ClientMsgId, ConversationId, Seq, Timestamp, UserId};

use super::*;
use crate::net::{Session, Update};

fn user(id: u64, name: &str) -> UserSummary {
    UserSummary {
        id: UserId(id),
        username: name.into(),
        sex: Sex::Undisclosed,
        age: 20,
    }
}

fn friend(id: u64, name: &str, online: bool) -> Friend {
    Friend {
        user: user(id, name),
        conversation: ConversationId(id * 10),
        presence: if online {
            Presence::Online("127.0.0.1:9".parse().unwrap())
        } else {
            Presence::Offline
        },
        last_message_at: None,
    }
}

fn logged_in() -> State {
    let mut state = State::default();
    state.apply(Update::LoggedIn(Box::new(Session {
        contacts: LoginBundle {
            me: user(1, "me"),
            friends: vec![friend(2, "bob", false), friend(3, "carl", true)],
            rooms: Vec::new(),
            pending_requests: Vec::new(),
            conversations: Vec::new(),
        },
        conversations: Vec::new(),
    })));
    state
}

fn message(conversation: u64, seq: u64, sender: u64, at: u64) -> LocalMessage {
    LocalMessage {
        conversation: ConversationId(conversation),
        seq: Seq(seq),
        sender: UserId(sender),
        client_msg_id: ClientMsgId([seq as u8; 16]),
        sent_at: Timestamp(at),
        body: Body::Text(StyledText {
            text: format!("m{seq}"),
            font_size: 12,
            color: [0, 0, 0],
        }),
    }
}

fn names(state: &State) -> Vec<&str> {
    state.order.iter().map(Contact::name).collect()
}

#[test]
fn online_contacts_come_first_until_messages_order_the_list() {
    let mut state = logged_in();
    assert_eq!(names(&state), ["carl", "bob"]);
    state.apply(Update::Event(ClientEvent::Message(message(20, 1, 2, 100))));
    assert_eq!(names(&state), ["bob", "carl"]);
    state.apply(Update::Event(ClientEvent::Message(message(30, 1, 3, 200))));
    assert_eq!(names(&state), ["carl", "bob"]);
}

#[test]
fn messages_from_others_count_as_unread_until_the_chat_is_read() {
    let mut state = logged_in();
    for seq in 1..=3 {
        state.apply(Update::Event(ClientEvent::Message(message(
            20, seq, 2, seq,
        ))));
    }
    assert_eq!(state.total_unread(), 3);
    assert!(
        state.open_chat(ConversationId(20)),
        "the first open loads history"
    );
    state.apply(Update::History {
        conversation: ConversationId(20),
        messages: (1..=3).map(|s| message(20, s, 2, s)).collect(),
    });
    assert_eq!(state.read_due(), Some((ConversationId(20), Seq(3))));
    assert_eq!(state.total_unread(), 0);
    assert_eq!(state.read_due(), None, "read once");
    let chat = &state.chats[&ConversationId(20)];
    assert!(chat.complete, "a short page reaches the start");
    assert_eq!(chat.lines.len(), 3);
}

#[test]
fn my_messages_go_from_sending_to_stored_or_failed_and_never_count_unread() {
    let mut state = logged_in();
    state.open_chat(ConversationId(20));
    let body = message(20, 0, 1, 0).body;
    let (ok, refused, later) = (
        ClientMsgId([7; 16]),
        ClientMsgId([8; 16]),
        ClientMsgId([9; 16]),
    );
    for id in [ok, refused, later] {
        state.sending(ConversationId(20), id, body.clone());
    }
    let mut stored = message(20, 5, 1, 50);
    stored.client_msg_id = ok;
    state.apply(Update::Sent {
        conversation: ConversationId(20),
        id: ok,
        result: Ok(stored),
    });
    state.apply(Update::Sent {
        conversation: ConversationId(20),
        id: refused,
        result: Err(("too large".into(), false)),
    });
    state.apply(Update::Sent {
        conversation: ConversationId(20),
        id: later,
        result: Err(("offline".into(), true)),
    });
    let chat = &state.chats[&ConversationId(20)];
    let delivery = |id| {
        chat.lines
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.delivery.clone())
    };
    assert_eq!(delivery(ok), Some(Delivery::Stored));
    assert_eq!(
        delivery(refused),
        Some(Delivery::Failed("too large".into()))
    );
    assert_eq!(delivery(later), Some(Delivery::Queued));
    assert_eq!(
        chat.lines.first().and_then(|l| l.seq),
        Some(Seq(5)),
        "stored lines first"
    );
    state.apply(Update::Event(ClientEvent::Sent {
        conversation: ConversationId(20),
        seq: Seq(6),
        client_msg_id: later,
    }));
    let chat = &state.chats[&ConversationId(20)];
    let seqs: Vec<_> = chat.lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [Some(Seq(5)), Some(Seq(6)), None]);
    assert_eq!(state.total_unread(), 0);
}

#[test]
fn a_kick_shows_the_kicked_screen_and_a_lost_link_shows_reconnecting() {
    let mut state = logged_in();
    state.apply(Update::Event(ClientEvent::Disconnected));
    assert_eq!(state.link, Link::Reconnecting);
    state.apply(Update::Event(ClientEvent::Reconnected));
    assert_eq!(state.link, Link::Online);
    state.apply(Update::Event(ClientEvent::Kicked {
        reason: "signed in elsewhere".into(),
    }));
    assert_eq!(state.screen, Screen::Kicked);
}
