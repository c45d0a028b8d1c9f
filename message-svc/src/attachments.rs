//! Attachments: end-to-end encrypted content uploaded in chunks, resumable, checked by SHA-256
//! at completion, downloaded in chunks.
//!
//! The server sees ciphertext only; the key travels inside the message envelope. Every chunk
//! is its own short transaction, so a 100 MiB upload never holds the database (or the
//! writer's group commits) for longer than one chunk's insert; given a database of their own
//! ([`crate::Stores`]), the chunks' commits do not queue ahead of messages at all. Ids are
//! random 63-bit numbers, not a sequence, so one user cannot enumerate another's uploads.

use entity::{attachment, attachment_chunk};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Bytes per stored chunk: every chunk of an upload but the last has exactly this length.
/// It equals one sealed chunk of the client's attachment encryption.
pub const CHUNK_LEN: usize = 256 * 1024;

/// Length of the SHA-256 an upload declares.
pub const SHA256_LEN: usize = 32;

/// Unfinished uploads older than this are deleted when their owner starts another.
pub const UPLOAD_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// Tries at finding a free random id before giving up (a collision among 2^63 is not
/// expected even once).
const ID_ATTEMPTS: usize = 4;

/// How far an upload got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The attachment.
    pub id: i64,
    /// Bytes received and stored.
    pub received: u64,
    /// Whether all bytes arrived and matched the SHA-256.
    pub complete: bool,
}

/// The limits an upload is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest attachment in bytes.
    pub max_bytes: u64,
    /// Most unfinished uploads one user may have.
    pub max_open: u64,
}

fn random_id() -> Result<i64, Error> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| Error::Invalid("no randomness for an id"))?;
    // Positive and non-zero: 63 random bits.
    Ok(i64::from_be_bytes(bytes).checked_abs().unwrap_or(1).max(1))
}

fn received(row: &attachment::Model) -> u64 {
    u64::try_from(row.received).unwrap_or(0)
}

fn size(row: &attachment::Model) -> u64 {
    u64::try_from(row.size).unwrap_or(0)
}

/// Begins an upload of `size` bytes whose SHA-256 is `sha256`.
pub async fn start(
    db: &DatabaseConnection,
    owner: i64,
    size: u64,
    sha256: &[u8],
    limits: Limits,
) -> Result<i64, Error> {
    if size == 0 {
        return Err(Error::Invalid("an attachment cannot be empty"));
    }
    if size > limits.max_bytes {
        return Err(Error::TooLarge {
            what: "the file",
            size: usize::try_from(size).unwrap_or(usize::MAX),
            limit: usize::try_from(limits.max_bytes).unwrap_or(usize::MAX),
        });
    }
    if sha256.len() != SHA256_LEN {
        return Err(Error::Invalid("a SHA-256 is 32 bytes"));
    }
    let now = service_kit::now_ms();
    forget_stale(db, owner, now).await?;
    let open = attachment::Entity::find()
        .filter(attachment::Column::OwnerId.eq(owner))
        .filter(attachment::Column::Complete.eq(false))
        .count(db)
        .await?;
    if open >= limits.max_open {
        return Err(Error::TooManyUploads(limits.max_open));
    }
    let size = i64::try_from(size).map_err(|_| Error::Invalid("size"))?;
    for _ in 0..ID_ATTEMPTS {
        let id = random_id()?;
        let row = attachment::ActiveModel {
            id: Set(id),
            owner_id: Set(owner),
            size: Set(size),
            sha256: Set(sha256.to_vec()),
            received: Set(0),
            complete: Set(false),
            created_at: Set(now),
        };
        match attachment::Entity::insert(row)
            .exec_without_returning(db)
            .await
        {
            Ok(_) => return Ok(id),
            Err(err) if service_kit::db::is_duplicate(&err) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(Error::Invalid("no free attachment id; try again"))
}

/// Deletes `owner`'s unfinished uploads older than [`UPLOAD_TTL_MS`], chunks first.
async fn forget_stale(db: &DatabaseConnection, owner: i64, now: i64) -> Result<(), Error> {
    let stale: Vec<i64> = attachment::Entity::find()
        .select_only()
        .column(attachment::Column::Id)
        .filter(attachment::Column::OwnerId.eq(owner))
        .filter(attachment::Column::Complete.eq(false))
        .filter(attachment::Column::CreatedAt.lt(now.saturating_sub(UPLOAD_TTL_MS)))
        .into_tuple()
        .all(db)
        .await?;
    for id in stale {
        discard(db, id).await?;
    }
    Ok(())
}

/// Deletes an attachment and its chunks.
async fn discard(db: &DatabaseConnection, id: i64) -> Result<(), Error> {
    let txn = db.begin().await?;
    attachment_chunk::Entity::delete_many()
        .filter(attachment_chunk::Column::AttachmentId.eq(id))
        .exec(&txn)
        .await?;
    attachment::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// The upload `id` of `owner`, or not found (someone else's upload is not found either).
async fn owned(
    db: &impl ConnectionTrait,
    owner: i64,
    id: i64,
    lock: bool,
) -> Result<attachment::Model, Error> {
    let mut query = attachment::Entity::find_by_id(id);
    if lock {
        query = query.lock_exclusive();
    }
    query
        .one(db)
        .await?
        .filter(|row| row.owner_id == owner)
        .ok_or(Error::AttachmentNotFound)
}

/// Stores the chunk at `offset` of upload `id`; when it is the last, checks the SHA-256.
pub async fn chunk(
    db: &DatabaseConnection,
    owner: i64,
    id: i64,
    offset: u64,
    data: &[u8],
) -> Result<Progress, Error> {
    let txn = db.begin().await?;
    let row = owned(&txn, owner, id, true).await?;
    let (size, at) = (size(&row), received(&row));
    if row.complete || at == size {
        txn.commit().await?;
        // A retry of the last chunk (its answer was lost), or a check a crash interrupted.
        return finish(db, row).await;
    }
    if offset != at {
        return Err(Error::OffsetMismatch { received: at });
    }
    let expected = usize::try_from((size - at).min(CHUNK_LEN as u64)).unwrap_or(CHUNK_LEN);
    if data.len() != expected {
        return Err(Error::ChunkLength {
            expected,
            got: data.len(),
        });
    }
    let index = i64::try_from(offset / CHUNK_LEN as u64).map_err(|_| Error::Invalid("offset"))?;
    attachment_chunk::Entity::insert(attachment_chunk::ActiveModel {
        attachment_id: Set(id),
        chunk_index: Set(index),
        data: Set(data.to_vec()),
    })
    .exec_without_returning(&txn)
    .await?;
    let now_received = at + data.len() as u64;
    let mut update: attachment::ActiveModel = row.into();
    update.received = Set(i64::try_from(now_received).map_err(|_| Error::Invalid("offset"))?);
    let row = update.update(&txn).await?;
    txn.commit().await?;
    if now_received == size {
        finish(db, row).await
    } else {
        Ok(Progress {
            id,
            received: now_received,
            complete: false,
        })
    }
}

/// Checks a fully received upload against its SHA-256: marks it complete, or deletes it.
async fn finish(db: &DatabaseConnection, row: attachment::Model) -> Result<Progress, Error> {
    let progress = Progress {
        id: row.id,
        received: received(&row),
        complete: true,
    };
    if row.complete {
        return Ok(progress);
    }
    // Chunk by chunk, each its own short read, so other work interleaves.
    let mut hash = Sha256::new();
    let chunks = size(&row).div_ceil(CHUNK_LEN as u64);
    for index in 0..chunks {
        let index = i64::try_from(index).map_err(|_| Error::Invalid("size"))?;
        let chunk = attachment_chunk::Entity::find_by_id((row.id, index))
            .one(db)
            .await?
            .ok_or(Error::Invalid("a chunk of this upload is missing"))?;
        hash.update(&chunk.data);
    }
    if hash.finalize().as_slice() != row.sha256.as_slice() {
        discard(db, row.id).await?;
        return Err(Error::ChecksumMismatch);
    }
    attachment::Entity::update_many()
        .col_expr(attachment::Column::Complete, true.into())
        .filter(attachment::Column::Id.eq(row.id))
        .exec(db)
        .await?;
    Ok(progress)
}

/// How far upload `id` got (to resume it).
pub async fn status(db: &DatabaseConnection, owner: i64, id: i64) -> Result<Progress, Error> {
    let row = owned(db, owner, id, false).await?;
    if !row.complete && received(&row) == size(&row) {
        return finish(db, row).await;
    }
    Ok(Progress {
        id,
        received: received(&row),
        complete: row.complete,
    })
}

/// Bytes of a complete attachment from `offset`: at most `max_len`, and never past the end of
/// the chunk holding `offset`. Returns them with the attachment's total size.
pub async fn download(
    db: &DatabaseConnection,
    id: i64,
    offset: u64,
    max_len: usize,
) -> Result<(Vec<u8>, u64), Error> {
    let row = attachment::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|row| row.complete)
        .ok_or(Error::AttachmentNotFound)?;
    let total = size(&row);
    if offset > total {
        return Err(Error::PastEnd { size: total });
    }
    if offset == total {
        return Ok((Vec::new(), total));
    }
    let index = i64::try_from(offset / CHUNK_LEN as u64).map_err(|_| Error::Invalid("offset"))?;
    let chunk = attachment_chunk::Entity::find_by_id((id, index))
        .one(db)
        .await?
        .ok_or(Error::AttachmentNotFound)?;
    let from = usize::try_from(offset % CHUNK_LEN as u64).unwrap_or(0);
    let len = if max_len == 0 {
        CHUNK_LEN
    } else {
        max_len.min(CHUNK_LEN)
    };
    let bytes = chunk
        .data
        .get(from..)
        .map(|rest| rest.iter().take(len).copied().collect())
        .unwrap_or_default();
    Ok((bytes, total))
}
