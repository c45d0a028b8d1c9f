//! Passwords stretched on the client (protocol 2): the server never sees a password.
//!
//! ```text
//! master   = argon2id(password UTF-8, salt [16], memory_kib, iterations, parallelism) [32]
//! prk      = HKDF-Extract(salt = "uchat account v2", master)
//! auth_key = HKDF-Expand(prk, "uchat account v2 auth") [32]       sent in Register and Login
//! wrap_key = HKDF-Expand(prk, "uchat account v2 key wrap") [64]   enc [32] || mac [32]; kept
//! ```
//!
//! The server stores an argon2id hash of `auth_key`, as it would a password's. The two keys
//! come from independent HKDF labels, so knowing `auth_key` (as the server does) tells nothing
//! of `wrap_key`, which encrypts the user's end-to-end private key for the server to keep:
//!
//! ```text
//! ciphertext = AES-256-CBC(enc, iv, secret [32]) with PKCS#7 (48 bytes)
//! mac        = HMAC-MD5(mac, "uchat-key-wrap-v1" || user u64 BE || key_version u32 BE ||
//!                       iv || ciphertext)
//! ```

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use zeroize::Zeroizing;

use crate::crypto::cipher::{BLOCK_LEN, random_iv};
use crate::crypto::dh::{EXPONENT_LEN, KeyPair};
use crate::crypto::kdf::Prk;
use crate::crypto::mac::TAG_LEN;
use crate::e2e::{CONTENT_KEY_LEN, ContentKey, Sealed};
use crate::error::E2eError;
use crate::ids::UserId;

/// HKDF salt of the account keys.
pub const ACCOUNT_SALT: &[u8] = b"uchat account v2";
/// HKDF info of the authentication key.
pub const AUTH_INFO: &[u8] = b"uchat account v2 auth";
/// HKDF info of the key-wrapping key.
pub const WRAP_INFO: &[u8] = b"uchat account v2 key wrap";
/// MAC label of a wrapped private key.
pub const WRAP_LABEL: &[u8] = b"uchat-key-wrap-v1";

/// Length of a KDF salt.
pub const SALT_LEN: usize = 16;
/// Length of the authentication key.
pub const AUTH_KEY_LEN: usize = 32;
/// Length of a wrapped private key's ciphertext: 32 bytes and a block of padding.
pub const WRAPPED_SECRET_LEN: usize = EXPONENT_LEN + BLOCK_LEN;

/// The argon2id cost servers hand out by default (64 MiB, 3 passes, 1 lane): about a quarter
/// of a second on a laptop core, once per login.
pub const DEFAULT_KDF: KdfCost = KdfCost {
    memory_kib: 64 * 1024,
    iterations: 3,
    parallelism: 1,
};

/// The least cost a client accepts from a server by default (OWASP's argon2id minimum:
/// 19 MiB, 2 passes), so a server cannot make a stolen hash cheap to guess.
pub const MIN_KDF: KdfCost = KdfCost {
    memory_kib: 19 * 1024,
    iterations: 2,
    parallelism: 1,
};

/// Most memory a client spends on one stretch (1 GiB), whatever a server asks.
pub const MAX_KDF_MEMORY_KIB: u32 = 1024 * 1024;

/// Most passes a client runs, whatever a server asks.
pub const MAX_KDF_ITERATIONS: u32 = 64;

/// Most lanes a client runs, whatever a server asks.
pub const MAX_KDF_PARALLELISM: u32 = 16;

/// An argon2id cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfCost {
    /// Whether this cost is at least `floor` in memory and passes, and within the client's
    /// upper bounds.
    pub fn acceptable(&self, floor: &KdfCost) -> bool {
        self.memory_kib >= floor.memory_kib
            && self.iterations >= floor.iterations
            && self.parallelism >= 1
            && self.memory_kib <= MAX_KDF_MEMORY_KIB
            && self.iterations <= MAX_KDF_ITERATIONS
            && self.parallelism <= MAX_KDF_PARALLELISM
    }
}

/// What stretching a user's password takes: their salt and the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// The user's salt.
    pub salt: [u8; SALT_LEN],
    /// The cost.
    pub cost: KdfCost,
}

impl KdfParams {
    /// Fresh parameters for a new account or password: a random salt and `cost`.
    pub fn fresh(cost: KdfCost) -> Result<Self, E2eError> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|_| E2eError::Random)?;
        Ok(Self { salt, cost })
    }
}

/// A user's private key as the server keeps it: encrypted under their key-wrapping key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedPrivateKey {
    /// The certificate's key version this key belongs to (1, then one more per start-over).
    pub key_version: u32,
    /// The CBC IV.
    pub iv: [u8; BLOCK_LEN],
    /// The encrypted 32-byte secret (48 bytes).
    pub ciphertext: ByteBuf,
    /// HMAC-MD5 over the label, user, key version, IV and ciphertext.
    pub mac: [u8; TAG_LEN],
}

/// The two keys a password stretches into.
pub struct StretchedPassword {
    auth_key: Zeroizing<[u8; AUTH_KEY_LEN]>,
    wrap_key: ContentKey,
}

impl std::fmt::Debug for StretchedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StretchedPassword(..)")
    }
}

/// Why a password could not be stretched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StretchError {
    /// The server asked for a cost outside what this client accepts.
    #[error(
        "the server asks for a password cost this client does not accept \
         ({memory_kib} KiB, {iterations} passes, {parallelism} lanes)"
    )]
    Cost {
        /// Memory asked for.
        memory_kib: u32,
        /// Passes asked for.
        iterations: u32,
        /// Lanes asked for.
        parallelism: u32,
    },
}

impl StretchedPassword {
    fn from_master(master: &[u8; 32]) -> Self {
        let prk = Prk::extract(ACCOUNT_SALT, &[master.as_slice()]);
        let auth_key = Zeroizing::new(prk.expand::<AUTH_KEY_LEN>(&[AUTH_INFO]));
        let wrap_bytes = Zeroizing::new(prk.expand::<CONTENT_KEY_LEN>(&[WRAP_INFO]));
        Self {
            auth_key,
            wrap_key: ContentKey::from_bytes(&wrap_bytes),
        }
    }

    /// Stretches `password` with `params`, refusing a cost below `floor`. Takes as long as
    /// the cost says: run it off any thread that must stay responsive.
    pub fn derive(
        password: &str,
        params: &KdfParams,
        floor: &KdfCost,
    ) -> Result<Self, StretchError> {
        let cost = params.cost;
        let refused = StretchError::Cost {
            memory_kib: cost.memory_kib,
            iterations: cost.iterations,
            parallelism: cost.parallelism,
        };
        if !cost.acceptable(floor) {
            return Err(refused);
        }
        let master = master_key(password, params).map_err(|_| refused)?;
        Ok(Self::from_master(&master))
    }

    /// The key sent to authenticate.
    pub fn auth_key(&self) -> [u8; AUTH_KEY_LEN] {
        *self.auth_key
    }

    /// Wraps `keys`' private key for the server to keep, bound to `user` and `key_version`.
    pub fn wrap(&self, user: UserId, key_version: u32, keys: &KeyPair) -> WrappedPrivateKey {
        self.wrap_iv(user, key_version, keys, random_iv())
    }

    pub(crate) fn wrap_iv(
        &self,
        user: UserId,
        key_version: u32,
        keys: &KeyPair,
        iv: [u8; BLOCK_LEN],
    ) -> WrappedPrivateKey {
        let sealed = self.wrap_key.seal_iv(
            WRAP_LABEL,
            &[&user.0.to_be_bytes(), &key_version.to_be_bytes()],
            keys.secret_bytes(),
            iv,
        );
        WrappedPrivateKey {
            key_version,
            iv: sealed.iv,
            ciphertext: sealed.ciphertext,
            mac: sealed.mac,
        }
    }

    /// Opens a wrapped private key of `user`: fails (`BadMac`) for another password, user or
    /// key version, or altered bytes.
    pub fn unwrap(&self, user: UserId, wrapped: &WrappedPrivateKey) -> Result<KeyPair, E2eError> {
        let sealed = Sealed {
            iv: wrapped.iv,
            ciphertext: wrapped.ciphertext.clone(),
            mac: wrapped.mac,
        };
        let secret = Zeroizing::new(self.wrap_key.open(
            WRAP_LABEL,
            &[&user.0.to_be_bytes(), &wrapped.key_version.to_be_bytes()],
            &sealed,
        )?);
        let secret: &[u8; EXPONENT_LEN] = secret
            .as_slice()
            .try_into()
            .map_err(|_| E2eError::Malformed)?;
        KeyPair::from_secret(secret).map_err(|_| E2eError::Malformed)
    }
}

/// The argon2id master key of `password` (no floor: callers check the cost first).
fn master_key(password: &str, params: &KdfParams) -> Result<Zeroizing<[u8; 32]>, argon2::Error> {
    let cost = params.cost;
    let argon_params =
        argon2::Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32))?;
    let argon2 = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut master = Zeroizing::new([0u8; 32]);
    argon2.hash_password_into(password.as_bytes(), &params.salt, master.as_mut_slice())?;
    Ok(master)
}

/// Deterministic versions of the functions above, for the worked example of
/// `docs/PROTOCOL.md` (tests only: a real wrap needs a random IV).
#[doc(hidden)]
pub mod fixed {
    use super::*;

    /// The master, authentication and key-wrapping keys of `password`, at any cost.
    pub fn keys(password: &str, params: &KdfParams) -> ([u8; 32], [u8; 32], [u8; 64]) {
        let master = master_key(password, params).map(|m| *m).unwrap_or_default();
        let stretched = StretchedPassword::from_master(&master);
        (master, stretched.auth_key(), *stretched.wrap_key.to_bytes())
    }

    /// [`StretchedPassword::wrap`] with `iv`, for the password's keys at any cost.
    pub fn wrap(
        password: &str,
        params: &KdfParams,
        user: UserId,
        key_version: u32,
        keys: &KeyPair,
        iv: [u8; BLOCK_LEN],
    ) -> WrappedPrivateKey {
        let master = master_key(password, params).map(|m| *m).unwrap_or_default();
        StretchedPassword::from_master(&master).wrap_iv(user, key_version, keys, iv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: KdfCost = KdfCost {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn params() -> KdfParams {
        KdfParams {
            salt: [7; SALT_LEN],
            cost: TINY,
        }
    }

    #[test]
    fn the_keys_depend_on_password_and_salt_and_are_independent() {
        let a = StretchedPassword::derive("correct horse", &params(), &TINY).unwrap();
        let b = StretchedPassword::derive("correct horse", &params(), &TINY).unwrap();
        assert_eq!(a.auth_key(), b.auth_key());
        let other = StretchedPassword::derive("correct horsf", &params(), &TINY).unwrap();
        assert_ne!(a.auth_key(), other.auth_key());
        let salted = KdfParams {
            salt: [8; SALT_LEN],
            ..params()
        };
        let salted = StretchedPassword::derive("correct horse", &salted, &TINY).unwrap();
        assert_ne!(a.auth_key(), salted.auth_key());
        assert_ne!(a.auth_key().as_slice(), &a.wrap_key.to_bytes()[..32]);
    }

    #[test]
    fn a_wrapped_key_opens_only_for_its_password_user_and_version() {
        let stretched = StretchedPassword::derive("pw-12345", &params(), &TINY).unwrap();
        let keys = KeyPair::generate().unwrap();
        let wrapped = stretched.wrap(UserId(5), 1, &keys);
        assert_eq!(wrapped.ciphertext.len(), WRAPPED_SECRET_LEN);
        let opened = stretched.unwrap(UserId(5), &wrapped).unwrap();
        assert_eq!(opened.public(), keys.public());
        assert!(stretched.unwrap(UserId(6), &wrapped).is_err());
        let bumped = WrappedPrivateKey {
            key_version: 2,
            ..wrapped.clone()
        };
        assert!(stretched.unwrap(UserId(5), &bumped).is_err());
        let wrong = StretchedPassword::derive("pw-12346", &params(), &TINY).unwrap();
        assert!(wrong.unwrap(UserId(5), &wrapped).is_err());
    }

    #[test]
    fn a_cost_below_the_floor_or_beyond_the_bounds_is_refused() {
        let cheap = KdfParams {
            salt: [0; SALT_LEN],
            cost: TINY,
        };
        assert!(StretchedPassword::derive("pw", &cheap, &MIN_KDF).is_err());
        let huge = KdfCost {
            memory_kib: MAX_KDF_MEMORY_KIB + 1,
            ..DEFAULT_KDF
        };
        assert!(!huge.acceptable(&MIN_KDF));
        assert!(DEFAULT_KDF.acceptable(&MIN_KDF));
    }
}
