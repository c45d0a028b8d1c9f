//! Protocol 2's account keys as account-svc sees them: how each password is stretched (stored,
//! or derived from a secret for names that are not registered, so the answer does not say
//! which), and wrapped private keys, kept but never opened.

use entity::{account_secret, user};
use proto::account::{KdfParams, WrappedKey};
use protocol::crypto::kdf::Prk;
use protocol::password::{KdfCost, SALT_LEN, WRAPPED_SECRET_LEN};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};

use crate::error::Error;

/// Name of the secret unknown names' parameters are derived from.
pub const PRELOGIN_SECRET: &str = "prelogin";

/// HKDF info of an unknown name's salt; the name's key follows.
const PRELOGIN_SALT_INFO: &[u8] = b"uchat prelogin salt v1";

/// A stored wrapped key: `iv [16] || ciphertext [48] || mac [16]`.
pub const WRAPPED_KEY_LEN: usize = 16 + WRAPPED_SECRET_LEN + 16;

/// The secret unknown names' parameters come from: made once at random and kept in the
/// database, so every replica answers alike and restarts change nothing.
pub async fn prelogin_secret(db: &impl ConnectionTrait) -> Result<[u8; 32], Error> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|_| Error::Config("no randomness".into()))?;
    let row = account_secret::ActiveModel {
        name: Set(PRELOGIN_SECRET.to_owned()),
        value: Set(fresh.to_vec()),
    };
    account_secret::Entity::insert(row)
        .on_conflict(
            OnConflict::column(account_secret::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    let stored = account_secret::Entity::find_by_id(PRELOGIN_SECRET.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| Error::Db(DbErr::RecordNotFound(PRELOGIN_SECRET.into())))?;
    stored
        .value
        .as_slice()
        .try_into()
        .map_err(|_| Error::Config("the prelogin secret is not 32 bytes".into()))
}

/// How `username_key`'s password is stretched: as stored for a protocol-2 account; otherwise
/// a salt derived from `secret` and the name, with today's `cost`. Both have the same shape,
/// and the derived one is the same at every call.
pub fn params_for(
    user: Option<&user::Model>,
    username_key: &str,
    secret: &[u8; 32],
    cost: KdfCost,
) -> KdfParams {
    let stored = user.and_then(|u| Some((u, u.kdf_salt.as_ref()?)));
    match stored {
        Some((user, salt)) => KdfParams {
            salt: salt.clone(),
            memory_kib: u32::try_from(user.kdf_memory_kib).unwrap_or(0),
            iterations: u32::try_from(user.kdf_iterations).unwrap_or(0),
            parallelism: u32::try_from(user.kdf_parallelism).unwrap_or(0),
        },
        None => {
            let salt: [u8; SALT_LEN] =
                Prk::extract(secret, &[username_key.as_bytes()]).expand(&[PRELOGIN_SALT_INFO]);
            KdfParams {
                salt: salt.to_vec(),
                memory_kib: cost.memory_kib,
                iterations: cost.iterations,
                parallelism: cost.parallelism,
            }
        }
    }
}

/// The cost of `kdf`.
pub fn cost_of(kdf: &KdfParams) -> KdfCost {
    KdfCost {
        memory_kib: kdf.memory_kib,
        iterations: kdf.iterations,
        parallelism: kdf.parallelism,
    }
}

/// Whether `kdf` is well-formed and costs at least `floor` (what clients are told today).
pub fn kdf_acceptable(kdf: &KdfParams, floor: &KdfCost) -> bool {
    kdf.salt.len() == SALT_LEN && cost_of(kdf).acceptable(floor)
}

/// A wrapped key as stored, after checking its lengths.
pub fn wrapped_blob(wrapped: &WrappedKey) -> Result<Vec<u8>, Error> {
    if wrapped.iv.len() != 16
        || wrapped.ciphertext.len() != WRAPPED_SECRET_LEN
        || wrapped.mac.len() != 16
    {
        return Err(Error::Invalid(
            "a wrapped key has a 16-byte IV, 48 bytes and a 16-byte MAC",
        ));
    }
    Ok([&wrapped.iv[..], &wrapped.ciphertext, &wrapped.mac].concat())
}

/// The stored wrapped key of `user`, if any.
pub fn wrapped_of(user: &user::Model) -> Option<WrappedKey> {
    let blob = user.wrapped_key.as_ref()?;
    if blob.len() != WRAPPED_KEY_LEN {
        return None;
    }
    let (iv, rest) = blob.split_at(16);
    let (ciphertext, mac) = rest.split_at(WRAPPED_SECRET_LEN);
    Some(WrappedKey {
        key_version: u32::try_from(user.key_version).unwrap_or(0),
        iv: iv.to_vec(),
        ciphertext: ciphertext.to_vec(),
        mac: mac.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COST: KdfCost = KdfCost {
        memory_kib: 64,
        iterations: 2,
        parallelism: 1,
    };

    #[test]
    fn unknown_names_get_stable_salts_of_the_stored_shape() {
        let secret = [9; 32];
        let a = params_for(None, "ghost", &secret, COST);
        assert_eq!(a, params_for(None, "ghost", &secret, COST));
        assert_eq!(a.salt.len(), SALT_LEN);
        assert_ne!(a.salt, params_for(None, "ghosts", &secret, COST).salt);
        assert_ne!(a.salt, params_for(None, "ghost", &[8; 32], COST).salt);
    }

    #[test]
    fn wrapped_keys_round_trip_through_their_blob() {
        let wrapped = WrappedKey {
            key_version: 3,
            iv: vec![1; 16],
            ciphertext: vec![2; WRAPPED_SECRET_LEN],
            mac: vec![3; 16],
        };
        let blob = wrapped_blob(&wrapped).unwrap();
        assert_eq!(blob.len(), WRAPPED_KEY_LEN);
        let short = WrappedKey {
            mac: vec![3; 15],
            ..wrapped.clone()
        };
        assert!(wrapped_blob(&short).is_err());
    }
}
