//! The user's key pair (made at registration, kept 0600 in the key folder), contacts' public
//! keys (cached, with a warning when one changes), pairwise keys and safety numbers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::PoisonError;

use protocol::e2e::{self, PairwiseKey};
use protocol::message::{Register, Request, Response, Sex};
use protocol::{KeyPair, PublicKey, UserId};
use serde_bytes::ByteBuf;
use zeroize::Zeroizing;

use crate::client::{Account, Client, unexpected};
use crate::error::ClientError;
use crate::event::ClientEvent;

/// What a new account is made with.
#[derive(Debug, Clone)]
pub struct RegisterForm {
    /// 1 to 8 letters or digits.
    pub username: String,
    /// The password.
    pub password: String,
    /// An email address.
    pub email: String,
    /// Sex.
    pub sex: Sex,
    /// Age in years.
    pub age: u8,
}

impl Account {
    /// The key shared with `user`, whose public key is `theirs`.
    pub(crate) fn pairwise_with(&self, user: UserId, theirs: &PublicKey) -> PairwiseKey {
        let mut cache = self.pairwise.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, pairwise)) = cache.get(&user).filter(|(key, _)| key == theirs) {
            return pairwise.clone();
        }
        let pairwise = PairwiseKey::derive(&self.keys, self.me.id, theirs, user);
        cache.insert(user, (theirs.clone(), pairwise.clone()));
        pairwise
    }
}

impl Client {
    fn key_path(&self, username: &str) -> PathBuf {
        let server = hex::encode(self.inner.certificate.fingerprint().0);
        let server = server.get(..16).unwrap_or(&server).to_owned();
        self.inner
            .config
            .data_dir
            .join("keys")
            .join(format!("{server}-{}.key", username.to_lowercase()))
    }

    /// Makes an account: a new key pair (the private key saved, owner-only, in the key
    /// folder) and its certificate sent to the server.
    ///
    /// The password is stretched here with a fresh salt at the cost the server asks; only
    /// the resulting authentication key is sent. The private key goes to the server, wrapped,
    /// at the first login.
    pub async fn register(&self, form: RegisterForm) -> Result<UserId, ClientError> {
        let (params, stretched) = self.stretch_new(&form.username, &form.password).await?;
        let keys = KeyPair::generate().map_err(|_| ClientError::Invalid("no randomness".into()))?;
        let path = self.key_path(&form.username);
        let existing = std::fs::read(&path).ok();
        self.save_keys(&form.username, &keys)?;
        let request = Request::Register(Register {
            username: form.username,
            auth_key: stretched.auth_key(),
            kdf: params,
            email: form.email,
            sex: form.sex,
            age: form.age,
            public_key: ByteBuf::from(keys.public().as_bytes().to_vec()),
        });
        match self.request(request).await {
            Ok(Response::Registered { user, .. }) => Ok(user),
            other => {
                // Put back what was there: a failed registration must not lose a key.
                match existing {
                    Some(old) => protocol::identity::write_private_file(&path, &old)?,
                    None => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
                match other {
                    Ok(response) => Err(unexpected(response)),
                    Err(err) => Err(err),
                }
            }
        }
    }

    /// Saves `keys` as `username`'s key file, owner-only.
    pub(crate) fn save_keys(&self, username: &str, keys: &KeyPair) -> Result<(), ClientError> {
        let path = self.key_path(username);
        let hex = Zeroizing::new(hex::encode(keys.secret_bytes()));
        protocol::identity::write_private_file(&path, hex.as_bytes())?;
        Ok(())
    }

    pub(crate) fn load_keys(&self, username: &str) -> Result<KeyPair, ClientError> {
        let path = self.key_path(username);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            ClientError::Invalid(format!(
                "no key for {username} on this machine (expected {}); log in from the \
                 machine where the account was made",
                path.display()
            ))
        })?;
        let secret = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
            ClientError::Invalid(format!("{} is not a Uchat key file", path.display()))
        })?);
        let secret: &[u8; 32] = secret.as_slice().try_into().map_err(|_| {
            ClientError::Invalid(format!("{} is not a Uchat key file", path.display()))
        })?;
        KeyPair::from_secret(secret)
            .map_err(|_| ClientError::Invalid(format!("{} holds an invalid key", path.display())))
    }

    /// Fetches the public keys of `users`, caches them, and reports keys that changed.
    pub(crate) async fn refresh_certificates(
        &self,
        account: &Account,
        users: &[UserId],
    ) -> Result<HashMap<UserId, PublicKey>, ClientError> {
        let mut keys = HashMap::new();
        if users.is_empty() {
            return Ok(keys);
        }
        let certificates = match self
            .request(Request::GetCertificates {
                users: users.to_vec(),
            })
            .await?
        {
            Response::Certificates(certificates) => certificates,
            other => return Err(unexpected(other)),
        };
        for certificate in certificates {
            let Ok(key) = PublicKey::from_bytes(&certificate.public_key) else {
                continue;
            };
            let cached = account.store.certificate(certificate.user).await?;
            if cached
                .as_deref()
                .is_some_and(|c| c != certificate.public_key.as_slice())
            {
                let _ = self.inner.events.send(ClientEvent::KeyChanged {
                    user: certificate.user,
                });
            }
            account
                .store
                .put_certificate(certificate.user, &certificate.public_key)
                .await?;
            keys.insert(certificate.user, key);
        }
        Ok(keys)
    }

    /// The public keys of `users`, from the cache or the server.
    pub(crate) async fn public_keys(
        &self,
        account: &Account,
        users: &[UserId],
    ) -> Result<HashMap<UserId, PublicKey>, ClientError> {
        let mut keys = HashMap::new();
        let mut missing = Vec::new();
        for user in users {
            match account.store.certificate(*user).await? {
                Some(bytes) => {
                    if let Ok(key) = PublicKey::from_bytes(&bytes) {
                        keys.insert(*user, key);
                    }
                }
                None => missing.push(*user),
            }
        }
        keys.extend(self.refresh_certificates(account, &missing).await?);
        Ok(keys)
    }

    pub(crate) async fn pairwise(
        &self,
        account: &Account,
        user: UserId,
    ) -> Result<PairwiseKey, ClientError> {
        let keys = self.public_keys(account, &[user]).await?;
        let key = keys
            .get(&user)
            .ok_or_else(|| ClientError::Invalid(format!("no public key for user {user}")))?;
        Ok(account.pairwise_with(user, key))
    }

    /// The safety number shared with `user`, to compare in person.
    pub async fn safety_number(&self, user: UserId) -> Result<String, ClientError> {
        let account = self.account()?;
        let keys = self.public_keys(&account, &[user]).await?;
        let theirs = keys
            .get(&user)
            .ok_or_else(|| ClientError::Invalid(format!("no public key for user {user}")))?;
        Ok(e2e::safety_number(
            (account.me.id, account.keys.public()),
            (user, theirs),
        ))
    }
}
