//! `users`, written by account-svc: one row per account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// As registered, NFC-normalised.
    pub username: String,
    /// Lowercased `username`: unique, and what search matches.
    #[sea_orm(unique)]
    pub username_key: String,
    pub email: String,
    /// Lowercased `email`: unique.
    #[sea_orm(unique)]
    pub email_key: String,
    /// argon2id PHC string of the password's authentication key; never the password.
    pub password_hash: String,
    /// 0 undisclosed, 1 male, 2 female, 3 other.
    pub sex: i16,
    pub age: i16,
    /// The end-to-end public value (256 bytes).
    pub public_key: Vec<u8>,
    pub created_at: i64,
    /// The salt the client stretches the password with (16 bytes); NULL for an account made
    /// before protocol 2.
    pub kdf_salt: Option<Vec<u8>>,
    /// The argon2id cost of that stretch.
    pub kdf_memory_kib: i32,
    pub kdf_iterations: i32,
    pub kdf_parallelism: i32,
    /// 1, then one more per new key pair.
    pub key_version: i32,
    /// The private key encrypted under the password's key-wrapping key: `iv [16] || ciphertext
    /// [48] || mac [16]`, for `key_version`. account-svc cannot open it.
    pub wrapped_key: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
