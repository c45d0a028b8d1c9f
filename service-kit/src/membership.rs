//! Who belongs to which conversation, read from social-svc's tables: social-svc answers
//! `ConversationMembers` with it, and message-svc authorises and fans out with it.

use entity::{CONVERSATION_ROOM, conversation, friend, room, room_user};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

/// A conversation's kind and the users who may read and write it: the two friends of a
/// direct conversation (none once they are no longer friends), or a room's members in the
/// order they joined. `None` when there is no such conversation.
pub async fn conversation_members(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<(i16, Vec<i64>)>, DbErr> {
    let Some(conversation) = conversation::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let members = if conversation.kind == CONVERSATION_ROOM {
        let Some(room) = room::Entity::find()
            .filter(room::Column::ConversationId.eq(id))
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        room_members(db, room.id).await?
    } else {
        friend::Entity::find()
            .filter(friend::Column::ConversationId.eq(id))
            .filter(friend::Column::Accepted.eq(true))
            .all(db)
            .await?
            .into_iter()
            .map(|f| f.from_user_id)
            .collect()
    };
    Ok(Some((conversation.kind, members)))
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
