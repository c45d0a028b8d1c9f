//! Who belongs to which conversation, read from social-svc's tables: social-svc answers
//! `ConversationMembers` with it, and message-svc authorises and fans out with it.

use std::collections::HashMap;

use entity::{CONVERSATION_ROOM, conversation, friend, room, room_user};
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, RelationDef,
};

/// A conversation's kind and the users who may read and write it: the two friends of a
/// direct conversation (none once they are no longer friends), or a room's members in the
/// order they joined. `None` when there is no such conversation.
pub async fn conversation_members(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<(i16, Vec<i64>)>, DbErr> {
    Ok(members_of_many(db, &[id]).await?.remove(&id))
}

/// [`conversation_members`] for many conversations with a fixed number of queries (one when
/// they are all direct, as most are: it is on every message's path); missing conversations
/// are absent from the map.
pub async fn members_of_many(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<HashMap<i64, (i16, Vec<i64>)>, DbErr> {
    // Each conversation with its accepted friendships (none for a room's).
    let friendships = conversation::Entity::belongs_to(friend::Entity)
        .from(conversation::Column::Id)
        .to(friend::Column::ConversationId)
        .into();
    let accepted = |_, friends| {
        ExprTrait::eq(Expr::col((friends, friend::Column::Accepted)), true).into_condition()
    };
    let rows = conversation::Entity::find()
        .join(
            JoinType::LeftJoin,
            RelationDef::on_condition(friendships, accepted),
        )
        .select_also(friend::Entity)
        .filter(conversation::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    let mut out: HashMap<i64, (i16, Vec<i64>)> = HashMap::new();
    let mut rooms = Vec::new();
    for (c, friendship) in rows {
        if c.kind == CONVERSATION_ROOM {
            rooms.push(c.id);
            continue;
        }
        let (_, members) = out.entry(c.id).or_insert_with(|| (c.kind, Vec::new()));
        members.extend(friendship.map(|f| f.from_user_id));
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
