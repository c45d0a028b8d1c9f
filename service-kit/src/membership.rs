//! Who belongs to which conversation, read from social-svc's tables: social-svc answers
//! `ConversationMembers` with it, and message-svc authorises and fans out with it.

use std::collections::HashMap;

use entity::{CONVERSATION_ROOM, conversation, friend, room, room_user};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

/// A conversation's kind and the users who may read and write it: the two friends of a
/// direct conversation (none once they are no longer friends), or a room's members in the
/// order they joined. `None` when there is no such conversation.
pub async fn conversation_members(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<(i16, Vec<i64>)>, DbErr> {
    Ok(members_of_many(db, &[id]).await?.remove(&id))
}

/// [`conversation_members`] for many conversations with a fixed number of queries; missing
/// conversations are absent from the map.
pub async fn members_of_many(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<HashMap<i64, (i16, Vec<i64>)>, DbErr> {
    let conversations = conversation::Entity::find()
        .filter(conversation::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    let mut out: HashMap<i64, (i16, Vec<i64>)> = HashMap::new();
    let (mut direct, mut rooms) = (Vec::new(), Vec::new());
    for c in &conversations {
        if c.kind == CONVERSATION_ROOM {
            rooms.push(c.id);
        } else {
            direct.push(c.id);
            out.insert(c.id, (c.kind, Vec::new()));
        }
    }
    if !direct.is_empty() {
        for f in friend::Entity::find()
            .filter(friend::Column::ConversationId.is_in(direct))
            .filter(friend::Column::Accepted.eq(true))
            .all(db)
            .await?
        {
            if let Some((_, members)) = f.conversation_id.and_then(|c| out.get_mut(&c)) {
                members.push(f.from_user_id);
            }
        }
    }
    if !rooms.is_empty() {
        let rooms = room::Entity::find()
            .filter(room::Column::ConversationId.is_in(rooms))
            .all(db)
            .await?;
        let members = room_user::Entity::find()
            .filter(room_user::Column::RoomId.is_in(rooms.iter().map(|r| r.id)))
            .order_by_asc(room_user::Column::JoinedAt)
            .all(db)
            .await?;
        for room in rooms {
            let ids = members
                .iter()
                .filter(|m| m.room_id == room.id)
                .map(|m| m.user_id)
                .collect();
            out.insert(room.conversation_id, (CONVERSATION_ROOM, ids));
        }
    }
    Ok(out)
}

/// A room's members in the order they joined.
pub async fn room_members(db: &impl ConnectionTrait, room: i64) -> Result<Vec<i64>, DbErr> {
    Ok(room_user::Entity::find()
        .filter(room_user::Column::RoomId.eq(room))
        .order_by_asc(room_user::Column::JoinedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect())
}

/// Every conversation `user` may read now: those of their friendships and of their rooms.
pub async fn user_conversations(db: &impl ConnectionTrait, user: i64) -> Result<Vec<i64>, DbErr> {
    let mut ids: Vec<i64> = friend::Entity::find()
        .filter(friend::Column::FromUserId.eq(user))
        .filter(friend::Column::Accepted.eq(true))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|f| f.conversation_id)
        .collect();
    let rooms: Vec<i64> = room_user::Entity::find()
        .filter(room_user::Column::UserId.eq(user))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.room_id)
        .collect();
    if !rooms.is_empty() {
        ids.extend(
            room::Entity::find()
                .filter(room::Column::Id.is_in(rooms))
                .all(db)
                .await?
                .into_iter()
                .map(|r| r.conversation_id),
        );
    }
    ids.sort_unstable();
    Ok(ids)
}
