//! social-svc over real gRPC on 127.0.0.1, beside a real account-svc, against SQLite (memory
//! and file) and PostgreSQL. Pushes go to a recording Push server standing in for a gateway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proto::account::RegisterGatewayRequest;
use proto::account::account_client::AccountClient;
use proto::common::ErrorCode;
use proto::gateway::notification::Event;
use proto::internal::Authenticated;
use proto::social::social_client::SocialClient;
use proto::social::*;
use sea_orm::DatabaseConnection;
use service_kit::status::error_code;
use service_kit::testing::{self, Pushed, RecordingGateway, databases};
use tokio::net::TcpListener;

struct Stack {
    /// The database, to check what the service wrote.
    db: DatabaseConnection,
    account: AccountClient<Authenticated>,
    social: SocialClient<Authenticated>,
    gateway: RecordingGateway,
}

async fn start(db: DatabaseConnection) -> Stack {
    let config = account_svc::Config {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        ..account_svc::Config::default()
    };
    let account_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let account_addr = account_listener.local_addr().unwrap();
    tokio::spawn(account_svc::serve(
        account_listener,
        db.clone(),
        testing::internal_key(),
        config,
        std::future::pending(),
    ));
    let social_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let social_addr = social_listener.local_addr().unwrap();
    tokio::spawn(social_svc::serve(
        social_listener,
        db.clone(),
        testing::internal_key(),
        std::future::pending(),
    ));
    let mut account = AccountClient::new(testing::channel(&format!("http://{account_addr}")).await);
    let social = SocialClient::new(testing::channel(&format!("http://{social_addr}")).await);
    let (gateway, push_addr) = RecordingGateway::start().await;
    account
        .register_gateway(RegisterGatewayRequest {
            gateway_id: "gw".into(),
            push_addr,
        })
        .await
        .unwrap();
    Stack {
        db,
        account,
        social,
        gateway,
    }
}

/// Who may read and write `conversation` (what message-svc authorises and fans out with), as
/// user ids; `None` for an unknown conversation.
async fn writers(db: &DatabaseConnection, conversation: u64) -> Option<(i16, Vec<u64>)> {
    let id = i64::try_from(conversation).unwrap();
    let (kind, mut members) = service_kit::membership::conversation_members(db, id)
        .await
        .unwrap()?;
    members.sort_unstable();
    Some((kind, members.into_iter().map(|m| m as u64).collect()))
}

impl Stack {
    /// Registers and logs in `name`; returns the user id.
    async fn user(&mut self, name: &str, port: u32) -> u64 {
        let id = testing::register(&mut self.account, name).await;
        assert!(id > 0);
        testing::log_in(&mut self.account, name, id, port).await;
        id
    }

    async fn add(
        &mut self,
        user_id: u64,
        friend_id: u64,
    ) -> Result<AddFriendResponse, tonic::Status> {
        self.social
            .add_friend(AddFriendRequest { user_id, friend_id })
            .await
            .map(|r| r.into_inner())
    }

    async fn resolve(
        &mut self,
        user_id: u64,
        requester_id: u64,
        decision: Decision,
    ) -> Result<ResolveFriendRequestResponse, tonic::Status> {
        self.social
            .resolve_friend_request(ResolveFriendRequestRequest {
                user_id,
                requester_id,
                decision: decision.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    async fn friends(&mut self, user_id: u64) -> Vec<proto::common::Friend> {
        self.social
            .list_friends(ListFriendsRequest { user_id })
            .await
            .unwrap()
            .into_inner()
            .friends
    }

    async fn pending(&mut self, user_id: u64) -> Vec<u64> {
        self.social
            .pending_requests(PendingRequestsRequest { user_id })
            .await
            .unwrap()
            .into_inner()
            .requesters
            .iter()
            .map(|u| u.id)
            .collect()
    }
}

fn code(result: Result<impl std::fmt::Debug, tonic::Status>) -> ErrorCode {
    error_code(&result.unwrap_err())
}

fn pushed_to(user: u64, pred: impl Fn(&Event) -> bool) -> impl Fn(&Pushed) -> bool {
    move |p| {
        matches!(p, Pushed::Notify(n)
            if n.target.as_ref().is_some_and(|t| t.user_id == user)
                && n.event.as_ref().is_some_and(&pred))
    }
}

#[tokio::test]
async fn search_finds_by_prefix_case_insensitively_and_literally() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let me = stack.user("me", 1).await;
        for name in ["Alice", "alina", "bob", "小明", "小红"] {
            stack.user(name, 2).await;
        }
        let search = |query: &str| {
            let mut social = stack.social.clone();
            let query = query.to_owned();
            async move {
                social
                    .search_users(SearchUsersRequest {
                        user_id: me,
                        query,
                        limit: 0,
                    })
                    .await
                    .map(|r| {
                        r.into_inner()
                            .users
                            .into_iter()
                            .map(|u| u.username)
                            .collect::<Vec<_>>()
                    })
            }
        };
        assert_eq!(
            search("AL").await.unwrap(),
            ["Alice", "alina"],
            "{}",
            test.backend
        );
        // Wildcards are taken literally: unescaped, "a_" and "%" would match every name.
        assert!(search("a_").await.unwrap().is_empty());
        assert_eq!(search("小").await.unwrap(), ["小明", "小红"]);
        assert!(
            search("me").await.unwrap().is_empty(),
            "the searcher is not listed"
        );
        assert!(search("%").await.unwrap().is_empty());
        assert_eq!(code(search("  ").await), ErrorCode::InvalidRequest);
    }
}

#[tokio::test]
async fn friend_requests_each_error_and_the_live_push() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (ann, ben) = (stack.user("ann", 1).await, stack.user("ben", 2).await);
        assert_eq!(code(stack.add(ann, 999_999).await), ErrorCode::UserNotFound);
        assert_eq!(code(stack.add(ann, ann).await), ErrorCode::FriendSelf);
        assert!(stack.add(ann, ben).await.unwrap().friend.is_none());
        assert_eq!(code(stack.add(ann, ben).await), ErrorCode::RequestPending);
        stack
            .gateway
            .wait_for(
                "ben's friend request",
                pushed_to(
                    ben,
                    |e| matches!(e, Event::FriendRequest(u) if u.username == "ann"),
                ),
            )
            .await;
        assert_eq!(stack.pending(ben).await, [ann], "{}", test.backend);
        assert!(stack.pending(ann).await.is_empty());
    }
}

#[tokio::test]
async fn later_keeps_a_request_reject_removes_it_accept_makes_friends_on_both_sides() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (cat, dan, eve) = (
            stack.user("cat", 1).await,
            stack.user("dan", 2).await,
            stack.user("eve", 3).await,
        );
        stack.add(cat, dan).await.unwrap();
        stack.add(eve, dan).await.unwrap();

        stack.resolve(dan, cat, Decision::Later).await.unwrap();
        assert_eq!(
            stack.pending(dan).await,
            [cat, eve],
            "later keeps it: {}",
            test.backend
        );

        stack.resolve(dan, eve, Decision::Reject).await.unwrap();
        assert_eq!(stack.pending(dan).await, [cat]);
        assert_eq!(
            code(stack.resolve(dan, eve, Decision::Accept).await),
            ErrorCode::NoSuchRequest
        );

        let friend = stack
            .resolve(dan, cat, Decision::Accept)
            .await
            .unwrap()
            .friend
            .unwrap();
        assert_eq!(friend.user.as_ref().unwrap().id, cat);
        assert!(stack.pending(dan).await.is_empty());
        let dans = stack.friends(dan).await;
        let cats = stack.friends(cat).await;
        assert_eq!(dans.len(), 1);
        assert_eq!(cats.len(), 1);
        assert_eq!(dans[0].conversation_id, cats[0].conversation_id);
        // Presence with the address the gateway saw.
        let presence = cats[0].presence.clone().unwrap();
        assert!(presence.online);
        assert_eq!(presence.addr.unwrap().port, 2);
        stack
            .gateway
            .wait_for("cat hears dan accepted", pushed_to(cat, |e| {
                matches!(e, Event::FriendAdded(f) if f.user.as_ref().is_some_and(|u| u.username == "dan"))
            }))
            .await;
        assert_eq!(code(stack.add(cat, dan).await), ErrorCode::AlreadyFriends);
        assert_eq!(code(stack.add(dan, cat).await), ErrorCode::AlreadyFriends);
    }
}

#[tokio::test]
async fn crossing_requests_make_a_friendship_at_once() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (fay, gus) = (stack.user("fay", 1).await, stack.user("gus", 2).await);
        assert!(stack.add(fay, gus).await.unwrap().friend.is_none());
        let friend = stack.add(gus, fay).await.unwrap().friend.unwrap();
        assert_eq!(friend.user.unwrap().id, fay, "{}", test.backend);
        assert_eq!(stack.friends(fay).await.len(), 1);
        assert!(stack.pending(gus).await.is_empty());
        assert!(stack.pending(fay).await.is_empty());
    }
}

#[tokio::test]
async fn simultaneous_crossing_requests_still_make_a_friendship() {
    /// Pairs that ask each other at the same instant.
    const PAIRS: u32 = 12;
    for test in databases().await {
        let mut stack = start(test.db).await;
        let mut pairs = Vec::new();
        for n in 0..PAIRS {
            let a = stack.user(&format!("a{n}"), 10 + n).await;
            let b = stack.user(&format!("b{n}"), 100 + n).await;
            pairs.push((a, b));
        }
        let requests = pairs.iter().flat_map(|&(a, b)| {
            let (mut one, mut other) = (stack.social.clone(), stack.social.clone());
            [
                tokio::spawn(async move {
                    one.add_friend(AddFriendRequest {
                        user_id: a,
                        friend_id: b,
                    })
                    .await
                }),
                tokio::spawn(async move {
                    other
                        .add_friend(AddFriendRequest {
                            user_id: b,
                            friend_id: a,
                        })
                        .await
                }),
            ]
        });
        for request in requests.collect::<Vec<_>>() {
            request.await.unwrap().unwrap();
        }
        for (a, b) in pairs {
            let friends = stack.friends(a).await;
            assert_eq!(
                friends
                    .iter()
                    .map(|f| f.user.as_ref().unwrap().id)
                    .collect::<Vec<_>>(),
                [b],
                "{}: crossing requests left a pending pair",
                test.backend
            );
            assert!(stack.pending(a).await.is_empty() && stack.pending(b).await.is_empty());
        }
    }
}

#[tokio::test]
async fn deleting_a_friend_removes_both_sides_and_tells_the_other() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (hal, ivy) = (stack.user("hal", 1).await, stack.user("ivy", 2).await);
        stack.add(hal, ivy).await.unwrap();
        let conversation = stack
            .resolve(ivy, hal, Decision::Accept)
            .await
            .unwrap()
            .friend
            .unwrap()
            .conversation_id;
        assert_eq!(
            writers(&stack.db, conversation).await,
            Some((entity::CONVERSATION_DIRECT, vec![hal, ivy]))
        );

        stack
            .social
            .delete_friend(DeleteFriendRequest {
                user_id: hal,
                friend_id: ivy,
            })
            .await
            .unwrap();
        assert!(stack.friends(hal).await.is_empty(), "{}", test.backend);
        assert!(stack.friends(ivy).await.is_empty());
        stack
            .gateway
            .wait_for(
                "ivy hears she was removed",
                pushed_to(ivy, |e| matches!(e, Event::FriendRemoved(id) if *id == hal)),
            )
            .await;
        let status = stack
            .social
            .delete_friend(DeleteFriendRequest {
                user_id: ivy,
                friend_id: hal,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::NotFriends);
        // The conversation stays, but nobody may write to it any more.
        let (_, left) = writers(&stack.db, conversation).await.unwrap();
        assert!(left.is_empty());
    }
}

#[tokio::test]
async fn rooms_create_join_members_and_each_error() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (jo, kim, lee) = (
            stack.user("jo", 1).await,
            stack.user("kim", 2).await,
            stack.user("lee", 3).await,
        );
        let room = stack
            .social
            .create_room(CreateRoomRequest {
                user_id: jo,
                name: " Study Group ".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .room
            .unwrap();
        assert_eq!(room.name, "Study Group", "{}", test.backend);
        let taken = stack
            .social
            .create_room(CreateRoomRequest {
                user_id: kim,
                name: "study group".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&taken), ErrorCode::RoomNameTaken);

        let unknown = stack
            .social
            .join_room(JoinRoomRequest {
                user_id: kim,
                room_id: room.id + 1000,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&unknown), ErrorCode::RoomNotFound);
        let not_member = stack
            .social
            .room_members(RoomMembersRequest {
                user_id: kim,
                room_id: room.id,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&not_member), ErrorCode::NotMember);

        let joined = stack
            .social
            .join_room(JoinRoomRequest {
                user_id: kim,
                room_id: room.id,
            })
            .await
            .unwrap()
            .into_inner()
            .room
            .unwrap();
        assert_eq!(joined.conversation_id, room.conversation_id);
        stack
            .gateway
            .wait_for("jo hears kim joined", pushed_to(jo, |e| {
                matches!(e, Event::RoomMemberJoined(j) if j.member.as_ref().is_some_and(|m| m.id == kim))
            }))
            .await;
        let again = stack
            .social
            .join_room(JoinRoomRequest {
                user_id: kim,
                room_id: room.id,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&again), ErrorCode::AlreadyMember);
        stack
            .social
            .join_room(JoinRoomRequest {
                user_id: lee,
                room_id: room.id,
            })
            .await
            .unwrap();

        let members: Vec<String> = stack
            .social
            .room_members(RoomMembersRequest {
                user_id: lee,
                room_id: room.id,
            })
            .await
            .unwrap()
            .into_inner()
            .members
            .into_iter()
            .map(|m| m.username)
            .collect();
        assert_eq!(members, ["jo", "kim", "lee"]);
        let rooms = stack
            .social
            .list_rooms(ListRoomsRequest { user_id: lee })
            .await
            .unwrap()
            .into_inner()
            .rooms;
        assert_eq!(rooms.len(), 1);
        let (kind, in_room) = writers(&stack.db, room.conversation_id).await.unwrap();
        assert_eq!(kind, entity::CONVERSATION_ROOM);
        assert_eq!(in_room.len(), 3);
        let empty = stack
            .social
            .create_room(CreateRoomRequest {
                user_id: jo,
                name: "   ".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&empty), ErrorCode::InvalidRequest);
    }
}

#[tokio::test]
async fn lookups_of_what_does_not_exist_say_so() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (max, ned) = (stack.user("max", 1).await, stack.user("ned", 2).await);
        stack.add(max, ned).await.unwrap();
        stack.resolve(ned, max, Decision::Accept).await.unwrap();
        let friends = stack.friends(max).await;
        assert_eq!(friends.len(), 1, "{}", test.backend);
        assert_eq!(writers(&stack.db, 987_654).await, None);
        let no_room = stack
            .social
            .room_members(RoomMembersRequest {
                user_id: max,
                room_id: 987_654,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&no_room), ErrorCode::RoomNotFound);
        assert_eq!(
            code(stack.resolve(ned, max, Decision::Unspecified).await),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(stack.resolve(max, ned, Decision::Later).await),
            ErrorCode::NoSuchRequest
        );
        let bad_user = stack
            .social
            .list_friends(ListFriendsRequest { user_id: 0 })
            .await
            .unwrap_err();
        assert_eq!(error_code(&bad_user), ErrorCode::InvalidRequest);
    }
}
