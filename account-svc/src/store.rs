//! account-svc's data access: plain async functions over a connection, so each works inside a
//! transaction too.

use entity::{gateway, session, user};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionSession, TransactionTrait,
};
use service_kit::now_ms;

/// The fields of a new account, validated and normalised.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// NFC username.
    pub username: String,
    /// Lowercased username.
    pub username_key: String,
    /// Email as given (trimmed).
    pub email: String,
    /// Lowercased email.
    pub email_key: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Sex code.
    pub sex: i16,
    /// Age.
    pub age: i16,
    /// End-to-end public key.
    pub public_key: Vec<u8>,
    /// How the client stretches the password.
    pub kdf: proto::account::KdfParams,
}

/// The stretch parameters as stored.
fn kdf_columns(kdf: &proto::account::KdfParams) -> (Vec<u8>, i32, i32, i32) {
    let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    (
        kdf.salt.clone(),
        int(kdf.memory_kib),
        int(kdf.iterations),
        int(kdf.parallelism),
    )
}

/// Inserts a user; fails with a unique violation naming `username_key` or `email_key` when
/// one is taken.
pub async fn insert_user(db: &impl ConnectionTrait, new: NewUser) -> Result<i64, DbErr> {
    let model = user::ActiveModel {
        username: Set(new.username),
        username_key: Set(new.username_key),
        email: Set(new.email),
        email_key: Set(new.email_key),
        password_hash: Set(new.password_hash),
        sex: Set(new.sex),
        age: Set(new.age),
        public_key: Set(new.public_key),
        created_at: Set(now_ms()),
        kdf_salt: Set(Some(kdf_columns(&new.kdf).0)),
        kdf_memory_kib: Set(kdf_columns(&new.kdf).1),
        kdf_iterations: Set(kdf_columns(&new.kdf).2),
        kdf_parallelism: Set(kdf_columns(&new.kdf).3),
        key_version: Set(1),
        ..Default::default()
    };
    Ok(user::Entity::insert(model).exec(db).await?.last_insert_id)
}

/// Which of `users` `requester` may see in full (with email): the requester, their friends,
/// those with a pending request to them, and members of a group they share.
pub async fn close_to(
    db: &impl ConnectionTrait,
    requester: i64,
    users: &[i64],
) -> Result<std::collections::HashSet<i64>, DbErr> {
    use entity::{friend, room_user};
    let mut close: std::collections::HashSet<i64> = std::collections::HashSet::new();
    if users.contains(&requester) {
        close.insert(requester);
    }
    // Friends (my accepted rows) and pending requesters (their rows to me, not accepted).
    let related = friend::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(friend::Column::FromUserId.eq(requester))
                        .add(friend::Column::Accepted.eq(true))
                        .add(friend::Column::ToUserId.is_in(users.to_vec())),
                )
                .add(
                    Condition::all()
                        .add(friend::Column::ToUserId.eq(requester))
                        .add(friend::Column::FromUserId.is_in(users.to_vec())),
                ),
        )
        .all(db)
        .await?;
    for row in related {
        close.insert(if row.from_user_id == requester {
            row.to_user_id
        } else {
            row.from_user_id
        });
    }
    let my_rooms: Vec<i64> = room_user::Entity::find()
        .filter(room_user::Column::UserId.eq(requester))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.room_id)
        .collect();
    if !my_rooms.is_empty() {
        let shared = room_user::Entity::find()
            .filter(room_user::Column::RoomId.is_in(my_rooms))
            .filter(room_user::Column::UserId.is_in(users.to_vec()))
            .all(db)
            .await?;
        close.extend(shared.into_iter().map(|r| r.user_id));
    }
    Ok(close)
}

/// Finds a user by id.
pub async fn user_by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// Stores `user`'s wrapped key for `key_version` if none is stored and that is the current
/// version; says whether it did.
pub async fn store_private_key(
    db: &impl ConnectionTrait,
    user: i64,
    key_version: i32,
    wrapped: Vec<u8>,
) -> Result<bool, DbErr> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::WrappedKey, Some(wrapped).into())
        .filter(user::Column::Id.eq(user))
        .filter(user::Column::KeyVersion.eq(key_version))
        .filter(user::Column::WrappedKey.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Replaces `user`'s password: hash, stretch parameters and wrapped key, in one statement, and
/// only if the password hash is still `old_hash` (no change raced this one).
pub async fn change_password(
    db: &impl ConnectionTrait,
    user: i64,
    old_hash: &str,
    new_hash: String,
    kdf: &proto::account::KdfParams,
    wrapped: Vec<u8>,
) -> Result<bool, DbErr> {
    let (salt, memory, iterations, parallelism) = kdf_columns(kdf);
    let updated = user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, new_hash.into())
        .col_expr(user::Column::KdfSalt, Some(salt).into())
        .col_expr(user::Column::KdfMemoryKib, memory.into())
        .col_expr(user::Column::KdfIterations, iterations.into())
        .col_expr(user::Column::KdfParallelism, parallelism.into())
        .col_expr(user::Column::WrappedKey, Some(wrapped).into())
        .filter(user::Column::Id.eq(user))
        .filter(user::Column::PasswordHash.eq(old_hash))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Gives `user` a new key pair at the next key version, if the version is still `from`;
/// returns the updated user.
pub async fn reset_key(
    db: &impl ConnectionTrait,
    user: i64,
    from: i32,
    public_key: Vec<u8>,
    wrapped: Vec<u8>,
) -> Result<Option<user::Model>, DbErr> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::PublicKey, public_key.into())
        .col_expr(user::Column::KeyVersion, (from + 1).into())
        .col_expr(user::Column::WrappedKey, Some(wrapped).into())
        .filter(user::Column::Id.eq(user))
        .filter(user::Column::KeyVersion.eq(from))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(None);
    }
    user_by_id(db, user).await
}

/// Finds a user by username key.
pub async fn user_by_key(
    db: &impl ConnectionTrait,
    username_key: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::UsernameKey.eq(username_key))
        .one(db)
        .await
}

/// Whether the username key and the email key are already in use.
pub async fn taken(
    db: &impl ConnectionTrait,
    username_key: &str,
    email_key: &str,
) -> Result<(bool, bool), DbErr> {
    let username = user_by_key(db, username_key).await?.is_some();
    let email = user::Entity::find()
        .filter(user::Column::EmailKey.eq(email_key))
        .one(db)
        .await?
        .is_some();
    Ok((username, email))
}

/// Users by ids and by username keys, without duplicates, ordered by id.
pub async fn users_by(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
    username_keys: Vec<String>,
) -> Result<Vec<user::Model>, DbErr> {
    if ids.is_empty() && username_keys.is_empty() {
        return Ok(Vec::new());
    }
    user::Entity::find()
        .filter(
            Condition::any()
                .add(user::Column::Id.is_in(ids))
                .add(user::Column::UsernameKey.is_in(username_keys)),
        )
        .order_by_asc(user::Column::Id)
        .all(db)
        .await
}

/// Where a new session connects from.
#[derive(Debug, Clone)]
pub struct SessionPlace {
    /// The gateway holding the connection.
    pub gateway_id: String,
    /// The gateway's id for the connection.
    pub session_id: i64,
    /// The client's IP address.
    pub peer_ip: String,
    /// The client's port.
    pub peer_port: i32,
}

/// Makes `place` the user's one session, raising the epoch, in one transaction. Returns the
/// new epoch and the session it replaced, if that one was online.
///
/// The row is created first if missing and then read `FOR UPDATE` (on PostgreSQL; SQLite's
/// single connection serialises transactions), so two simultaneous logins of one user take
/// turns: each sees the other's epoch and exactly one session remains.
pub async fn replace_session(
    db: &impl TransactionTrait,
    user_id: i64,
    place: SessionPlace,
) -> Result<(i64, Option<session::Model>), DbErr> {
    let txn = db.begin().await?;
    let blank = session::ActiveModel {
        user_id: Set(user_id),
        session_id: Set(0),
        epoch: Set(0),
        online: Set(false),
        gateway_id: Set(String::new()),
        peer_ip: Set(String::new()),
        peer_port: Set(0),
        since: Set(0),
    };
    session::Entity::insert(blank)
        .on_conflict(
            OnConflict::column(session::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let previous = session::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("session row just ensured".into()))?;
    let epoch = previous.epoch + 1;
    let mut row: session::ActiveModel = previous.clone().into();
    row.session_id = Set(place.session_id);
    row.epoch = Set(epoch);
    row.online = Set(true);
    row.gateway_id = Set(place.gateway_id);
    row.peer_ip = Set(place.peer_ip);
    row.peer_port = Set(place.peer_port);
    row.since = Set(now_ms());
    row.update(&txn).await?;
    txn.commit().await?;
    Ok((epoch, previous.online.then_some(previous)))
}

/// Ends the user's session if `epoch` is still current. Returns whether it did.
pub async fn end_session(
    db: &impl ConnectionTrait,
    user_id: i64,
    epoch: i64,
) -> Result<bool, DbErr> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::Online, false.into())
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::Epoch.eq(epoch))
        .filter(session::Column::Online.eq(true))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The push address of a gateway whose lease is current.
pub async fn live_gateway(db: &impl ConnectionTrait, id: &str) -> Result<Option<String>, DbErr> {
    Ok(gateway::Entity::find_by_id(id.to_owned())
        .filter(gateway::Column::LeaseExpiresAt.gt(now_ms()))
        .one(db)
        .await?
        .map(|g| g.push_addr))
}

/// Online sessions on live gateways, with their users, oldest first.
pub async fn online(
    db: &impl ConnectionTrait,
) -> Result<Vec<(session::Model, user::Model)>, DbErr> {
    let live: Vec<String> = gateway::Entity::find()
        .filter(gateway::Column::LeaseExpiresAt.gt(now_ms()))
        .all(db)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    let sessions = session::Entity::find()
        .filter(session::Column::Online.eq(true))
        .filter(session::Column::GatewayId.is_in(live))
        .order_by_asc(session::Column::Since)
        .all(db)
        .await?;
    let users = users_by(db, sessions.iter().map(|s| s.user_id).collect(), Vec::new()).await?;
    Ok(sessions
        .into_iter()
        .filter_map(|s| {
            let user = users.iter().find(|u| u.id == s.user_id)?.clone();
            Some((s, user))
        })
        .collect())
}

/// Marks the online sessions of `gateway_id` offline; returns their users.
async fn drop_gateway_sessions(
    db: &impl ConnectionTrait,
    gateway_id: &str,
) -> Result<Vec<i64>, DbErr> {
    let users: Vec<i64> = session::Entity::find()
        .filter(session::Column::GatewayId.eq(gateway_id))
        .filter(session::Column::Online.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.user_id)
        .collect();
    if !users.is_empty() {
        session::Entity::update_many()
            .col_expr(session::Column::Online, false.into())
            .filter(session::Column::GatewayId.eq(gateway_id))
            .filter(session::Column::Online.eq(true))
            .exec(db)
            .await?;
    }
    Ok(users)
}

/// Registers (or re-registers) a gateway with a fresh lease. A gateway registering again has
/// restarted, so its old sessions are gone: they are marked offline and their users returned.
pub async fn register_gateway(
    db: &impl TransactionTrait,
    id: &str,
    push_addr: &str,
    lease_ms: i64,
) -> Result<Vec<i64>, DbErr> {
    let txn = db.begin().await?;
    let row = gateway::ActiveModel {
        id: Set(id.to_owned()),
        push_addr: Set(push_addr.to_owned()),
        lease_expires_at: Set(now_ms() + lease_ms),
    };
    gateway::Entity::insert(row)
        .on_conflict(
            OnConflict::column(gateway::Column::Id)
                .update_columns([gateway::Column::PushAddr, gateway::Column::LeaseExpiresAt])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let dropped = drop_gateway_sessions(&txn, id).await?;
    txn.commit().await?;
    Ok(dropped)
}

/// Extends a live gateway's lease; false when it is unknown (expired and cleaned up).
pub async fn renew_lease(
    db: &impl ConnectionTrait,
    id: &str,
    lease_ms: i64,
) -> Result<bool, DbErr> {
    let result = gateway::Entity::update_many()
        .col_expr(
            gateway::Column::LeaseExpiresAt,
            (now_ms() + lease_ms).into(),
        )
        .filter(gateway::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Removes gateways whose lease ended before `now` and marks their sessions offline; returns
/// the users who went offline.
pub async fn expire_gateways(db: &impl TransactionTrait, now: i64) -> Result<Vec<i64>, DbErr> {
    let txn = db.begin().await?;
    let expired = gateway::Entity::find()
        .filter(gateway::Column::LeaseExpiresAt.lte(now))
        .all(&txn)
        .await?;
    let mut users = Vec::new();
    for gateway in &expired {
        users.extend(drop_gateway_sessions(&txn, &gateway.id).await?);
        gateway::Entity::delete_by_id(gateway.id.clone())
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(users)
}
