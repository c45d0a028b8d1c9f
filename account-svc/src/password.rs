//! Hashing of authentication keys with argon2id, on tokio's blocking pool, a bounded number at
//! a time. Since protocol 2 the client sends a key stretched from the password, never the
//! password; the server still hashes what it receives, so a stolen table is no login.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::Config;
use crate::error::Error;

/// Hashes and verifies passwords.
///
/// Each hash holds `memory_kib` of memory for tens of milliseconds, so at most
/// `max_concurrent_hashes` run at once; more requests wait their turn instead of exhausting
/// memory. Verifying a login for a username that does not exist still costs one hash (against
/// a dummy), so response time does not tell whether a username exists.
#[derive(Clone)]
pub struct Passwords {
    argon2: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    dummy: Arc<String>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// Prepares the hasher with the configured argon2id parameters.
    pub fn new(config: &Config) -> Result<Self, Error> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| Error::Config(format!("argon2 parameters: {e}")))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = argon2
            .hash_password(b"uchat dummy password for unknown users")
            .map_err(|e| Error::Config(format!("argon2: {e}")))?
            .to_string();
        Ok(Self {
            argon2: Arc::new(argon2),
            permits: Arc::new(Semaphore::new(config.max_concurrent_hashes.max(1))),
            dummy: Arc::new(dummy),
        })
    }

    /// Hashes an authentication key with a fresh random salt, returning the PHC string.
    pub async fn hash(&self, password: Vec<u8>) -> Result<String, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::ShuttingDown)?;
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || {
            argon2
                .hash_password(&password)
                .map(|h| h.to_string())
                .map_err(|e| Error::Hash(e.to_string()))
        })
        .await
        .map_err(|_| Error::ShuttingDown)?
    }

    /// Checks a password against a stored hash, or against the dummy when there is none
    /// (always false then).
    pub async fn verify(&self, password: Vec<u8>, hash: Option<String>) -> Result<bool, Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::ShuttingDown)?;
        let argon2 = self.argon2.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_str().to_owned());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| Error::Hash(e.to_string()))?;
            let matches = argon2.verify_password(&password, &parsed).is_ok();
            Ok(known && matches)
        })
        .await
        .map_err(|_| Error::ShuttingDown)?
    }
}
