//! social-svc's data access: plain async functions over a connection or a transaction.

use std::collections::HashMap;

use entity::{
    CONVERSATION_DIRECT, CONVERSATION_ROOM, conversation, conversation_head, friend, room,
    room_user, user,
};
use sea_orm::sea_query::LikeExpr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionSession, TransactionTrait,
};
use service_kit::push::live_sessions;
use service_kit::{now_ms, wire_id};

use crate::error::Error;
use crate::logic;

/// Finds a user by id.
pub async fn user(db: &impl ConnectionTrait, id: i64) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// Users by ids, in any order.
pub async fn users(db: &impl ConnectionTrait, ids: Vec<i64>) -> Result<Vec<user::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .order_by_asc(user::Column::UsernameKey)
        .all(db)
        .await
}

/// Users whose name key starts with `key`, other than `searcher`, by name.
pub async fn search(
    db: &impl ConnectionTrait,
    searcher: i64,
    key: &str,
    limit: u64,
) -> Result<Vec<user::Model>, DbErr> {
    user::Entity::find()
        .filter(
            user::Column::UsernameKey.like(LikeExpr::new(logic::prefix_pattern(key)).escape('\\')),
        )
        .filter(user::Column::Id.ne(searcher))
        .order_by_asc(user::Column::UsernameKey)
        .limit(limit)
        .all(db)
        .await
}

async fn friend_row(
    db: &impl ConnectionTrait,
    from: i64,
    to: i64,
) -> Result<Option<friend::Model>, DbErr> {
    friend::Entity::find_by_id((from, to)).one(db).await
}

async fn new_conversation(db: &impl ConnectionTrait, kind: i16) -> Result<i64, DbErr> {
    let row = conversation::ActiveModel {
        kind: Set(kind),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    Ok(conversation::Entity::insert(row)
        .exec(db)
        .await?
        .last_insert_id)
}

/// Makes `a` and `b` friends (both rows accepted, a new conversation); either row may exist
/// as a pending request already. Returns the conversation.
async fn befriend(db: &impl ConnectionTrait, a: i64, b: i64) -> Result<i64, DbErr> {
    let conversation = new_conversation(db, CONVERSATION_DIRECT).await?;
    for (from, to) in [(a, b), (b, a)] {
        friend::Entity::delete_by_id((from, to)).exec(db).await?;
        friend::ActiveModel {
            from_user_id: Set(from),
            to_user_id: Set(to),
            accepted: Set(true),
            conversation_id: Set(Some(conversation)),
            created_at: Set(now_ms()),
        }
        .insert(db)
        .await?;
    }
    Ok(conversation)
}

/// What a friend request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// The request waits for the other side.
    Pending,
    /// The other side had asked too: now friends in this conversation.
    Friends(i64),
}

/// Sends a friend request from `from` to `to`, in one transaction.
pub async fn add_friend(
    db: &impl TransactionTrait,
    from: i64,
    to: i64,
) -> Result<Requested, Error> {
    if from == to {
        return Err(Error::FriendSelf);
    }
    let txn = db.begin().await?;
    lock_pair(&txn, from, to).await?;
    if user(&txn, to).await?.is_none() {
        return Err(Error::UserNotFound);
    }
    if let Some(existing) = friend_row(&txn, from, to).await? {
        return Err(if existing.accepted {
            Error::AlreadyFriends
        } else {
            Error::RequestPending
        });
    }
    let outcome = if friend_row(&txn, to, from).await?.is_some() {
        // Their request crosses ours (an accepted reverse row cannot exist without ours).
        Requested::Friends(befriend(&txn, from, to).await?)
    } else {
        let inserted = friend::ActiveModel {
            from_user_id: Set(from),
            to_user_id: Set(to),
            accepted: Set(false),
            conversation_id: Set(None),
            created_at: Set(now_ms()),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => Requested::Pending,
            // A simultaneous identical request got there first.
            Err(err) if service_kit::db::is_duplicate(&err) => return Err(Error::RequestPending),
            Err(err) => return Err(err.into()),
        }
    };
    txn.commit().await?;
    Ok(outcome)
}

/// Makes the friend-request transactions of one pair of users take turns, so two requests
/// that cross at the same instant cannot both miss each other's row and stay pending.
/// PostgreSQL at READ COMMITTED needs this: a transaction-scoped advisory lock keyed by the
/// pair (ids below 2^32 get keys of their own; a shared key only makes a pair wait its turn).
/// SQLite needs nothing: its one connection runs transactions one at a time.
async fn lock_pair(txn: &impl ConnectionTrait, a: i64, b: i64) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let key = a.min(b).wrapping_shl(32) ^ a.max(b);
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// Users whose requests wait for `user`'s answer, oldest first.
pub async fn pending(db: &impl ConnectionTrait, user: i64) -> Result<Vec<user::Model>, DbErr> {
    let requests = friend::Entity::find()
        .filter(friend::Column::ToUserId.eq(user))
        .filter(friend::Column::Accepted.eq(false))
        .order_by_asc(friend::Column::CreatedAt)
        .all(db)
        .await?;
    let mut requesters = users(db, requests.iter().map(|r| r.from_user_id).collect()).await?;
    requesters.sort_by_key(|u| {
        requests
            .iter()
            .position(|r| r.from_user_id == u.id)
            .unwrap_or(usize::MAX)
    });
    Ok(requesters)
}

/// Accepts the pending request of `requester` to `user`; returns the conversation.
pub async fn accept(db: &impl TransactionTrait, user: i64, requester: i64) -> Result<i64, Error> {
    let txn = db.begin().await?;
    match friend_row(&txn, requester, user).await? {
        Some(row) if !row.accepted => {}
        _ => return Err(Error::NoSuchRequest),
    }
    let conversation = befriend(&txn, requester, user).await?;
    txn.commit().await?;
    Ok(conversation)
}

/// Removes the pending request of `requester` to `user`.
pub async fn reject(db: &impl ConnectionTrait, user: i64, requester: i64) -> Result<(), Error> {
    let deleted = friend::Entity::delete_many()
        .filter(friend::Column::FromUserId.eq(requester))
        .filter(friend::Column::ToUserId.eq(user))
        .filter(friend::Column::Accepted.eq(false))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(Error::NoSuchRequest);
    }
    Ok(())
}

/// Checks that a request from `requester` waits for `user` (for "later", which changes nothing).
pub async fn check_pending(
    db: &impl ConnectionTrait,
    user: i64,
    requester: i64,
) -> Result<(), Error> {
    match friend_row(db, requester, user).await? {
        Some(row) if !row.accepted => Ok(()),
        _ => Err(Error::NoSuchRequest),
    }
}

/// Ends the friendship of `a` and `b`: both rows go in one statement.
pub async fn unfriend(db: &impl ConnectionTrait, a: i64, b: i64) -> Result<(), Error> {
    match friend_row(db, a, b).await? {
        Some(row) if row.accepted => {}
        _ => return Err(Error::NotFriends),
    }
    friend::Entity::delete_many()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(friend::Column::FromUserId.eq(a))
                        .add(friend::Column::ToUserId.eq(b)),
                )
                .add(
                    Condition::all()
                        .add(friend::Column::FromUserId.eq(b))
                        .add(friend::Column::ToUserId.eq(a)),
                ),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Where each of `users` that is online is connected from: IP address and port, on a
/// gateway whose lease is current.
async fn online_at(
    db: &impl ConnectionTrait,
    users: &[i64],
) -> Result<HashMap<i64, (String, i32)>, DbErr> {
    Ok(live_sessions(db, users)
        .await?
        .into_iter()
        .map(|s| (s.user_id, (s.peer_ip, s.peer_port)))
        .collect())
}

/// Last message time of each conversation that has one.
async fn last_messages(
    db: &impl ConnectionTrait,
    conversations: Vec<i64>,
) -> Result<HashMap<i64, i64>, DbErr> {
    Ok(conversation_head::Entity::find()
        .filter(conversation_head::Column::ConversationId.is_in(conversations))
        .all(db)
        .await?
        .into_iter()
        .map(|h| (h.conversation_id, h.last_message_at))
        .collect())
}

/// A friend as the store knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRow {
    /// Who.
    pub user: user::Model,
    /// The pair's conversation.
    pub conversation: i64,
    /// Where they are connected from (IP address, port), when online.
    pub online_at: Option<(String, i32)>,
    /// When the conversation's last message was sent (Unix ms; 0: never).
    pub last_message_at: i64,
}

/// A room and when its conversation's last message was sent (Unix ms; 0: never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRow {
    /// The room.
    pub room: room::Model,
    /// Its last message time.
    pub last_message_at: i64,
}

/// `user`'s friends in contact-list order: newest conversation first, then online ones.
pub async fn friends(db: &impl ConnectionTrait, user: i64) -> Result<Vec<FriendRow>, DbErr> {
    let rows = friend::Entity::find()
        .filter(friend::Column::FromUserId.eq(user))
        .filter(friend::Column::Accepted.eq(true))
        .all(db)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.to_user_id).collect();
    let people = users(db, ids.clone()).await?;
    let mut online = online_at(db, &ids).await?;
    let last = last_messages(db, rows.iter().filter_map(|r| r.conversation_id).collect()).await?;
    let mut friends: Vec<FriendRow> = people
        .into_iter()
        .filter_map(|person| {
            let conversation = rows
                .iter()
                .find(|r| r.to_user_id == person.id)?
                .conversation_id?;
            Some(FriendRow {
                online_at: online.remove(&person.id),
                last_message_at: last.get(&conversation).copied().unwrap_or(0),
                conversation,
                user: person,
            })
        })
        .collect();
    friends.sort_by_key(|f| (std::cmp::Reverse(f.last_message_at), f.online_at.is_none()));
    Ok(friends)
}

/// One friend of `viewer`, as [`friends`] lists them.
pub async fn friend(
    db: &impl ConnectionTrait,
    viewer: i64,
    friend: i64,
) -> Result<Option<FriendRow>, DbErr> {
    Ok(friends(db, viewer)
        .await?
        .into_iter()
        .find(|f| f.user.id == friend))
}

/// Makes a room with `creator` as its first member.
pub async fn create_room(
    db: &impl TransactionTrait,
    creator: i64,
    name: &str,
) -> Result<RoomRow, Error> {
    let name = logic::room_name(name)?;
    let key = service_kit::name_key(&name);
    let txn = db.begin().await?;
    if room::Entity::find()
        .filter(room::Column::NameKey.eq(key.as_str()))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(Error::RoomNameTaken);
    }
    let conversation = new_conversation(&txn, CONVERSATION_ROOM).await?;
    let inserted = room::ActiveModel {
        name: Set(name),
        name_key: Set(key),
        conversation_id: Set(conversation),
        created_by: Set(creator),
        created_at: Set(now_ms()),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let room = match inserted {
        Ok(room) => room,
        Err(err) if service_kit::db::is_unique_violation(&err, "name_key") => {
            return Err(Error::RoomNameTaken);
        }
        Err(err) => return Err(err.into()),
    };
    room_user::ActiveModel {
        room_id: Set(room.id),
        user_id: Set(creator),
        joined_at: Set(now_ms()),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(RoomRow {
        room,
        last_message_at: 0,
    })
}

async fn room(db: &impl ConnectionTrait, id: i64) -> Result<room::Model, Error> {
    room::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::RoomNotFound(wire_id(id)))
}

/// Adds `user` to room `id`; returns the room and the members before the join.
pub async fn join_room(
    db: &impl TransactionTrait,
    user: i64,
    id: i64,
) -> Result<(RoomRow, Vec<i64>), Error> {
    let txn = db.begin().await?;
    let room = room(&txn, id).await?;
    let members = service_kit::membership::room_members(&txn, id).await?;
    if members.contains(&user) {
        return Err(Error::AlreadyMember);
    }
    let inserted = room_user::ActiveModel {
        room_id: Set(id),
        user_id: Set(user),
        joined_at: Set(now_ms()),
    }
    .insert(&txn)
    .await;
    match inserted {
        Ok(_) => {}
        Err(err) if service_kit::db::is_duplicate(&err) => return Err(Error::AlreadyMember),
        Err(err) => return Err(err.into()),
    }
    let last = last_messages(&txn, vec![room.conversation_id]).await?;
    txn.commit().await?;
    let last_message_at = last.get(&room.conversation_id).copied().unwrap_or(0);
    Ok((
        RoomRow {
            room,
            last_message_at,
        },
        members,
    ))
}

/// The members of room `id`, which `user` must belong to.
pub async fn room_members(
    db: &impl ConnectionTrait,
    user: i64,
    id: i64,
) -> Result<Vec<user::Model>, Error> {
    room(db, id).await?;
    let ids = service_kit::membership::room_members(db, id).await?;
    if !ids.contains(&user) {
        return Err(Error::NotMember);
    }
    Ok(users(db, ids).await?)
}

/// The rooms `user` belongs to, newest conversation first.
pub async fn rooms(db: &impl ConnectionTrait, user: i64) -> Result<Vec<RoomRow>, DbErr> {
    let ids: Vec<i64> = room_user::Entity::find()
        .filter(room_user::Column::UserId.eq(user))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.room_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rooms = room::Entity::find()
        .filter(room::Column::Id.is_in(ids))
        .order_by_asc(room::Column::Id)
        .all(db)
        .await?;
    let last = last_messages(db, rooms.iter().map(|r| r.conversation_id).collect()).await?;
    let mut rows: Vec<RoomRow> = rooms
        .into_iter()
        .map(|room| RoomRow {
            last_message_at: last.get(&room.conversation_id).copied().unwrap_or(0),
            room,
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.last_message_at));
    Ok(rows)
}
