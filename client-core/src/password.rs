//! The password, stretched on this machine (protocol 2): the server gets an authentication
//! key, never the password; the private key travels wrapped under a key only the password
//! opens. Restoring the key on a new computer, changing the password, and starting over with a
//! new key pair when the old one cannot be opened.

use protocol::message::{KdfParams, LoginBundle, Request, Response, UserCertificate};
use protocol::password::{KdfCost, StretchedPassword};
use protocol::{KeyPair, UserId};
use serde_bytes::ByteBuf;
use zeroize::Zeroizing;

use crate::client::{Client, unexpected};
use crate::error::ClientError;

/// Shortest password, in characters. The server never sees the password, so this rule is the
/// client's alone.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 128;

/// What is wrong with `password` as a new password, for people; `None` if nothing.
pub fn password_problem(password: &str) -> Option<&'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Some("a password has at least 8 characters")
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some("a password has at most 128 bytes")
    } else {
        None
    }
}

/// The error for a new password that breaks the rule: a field error, as the server gives for
/// the other fields of a form.
fn check_new_password(password: &str) -> Result<(), ClientError> {
    match password_problem(password) {
        None => Ok(()),
        Some(problem) => Err(ClientError::Server(protocol::message::Error {
            code: protocol::message::ErrorCode::InvalidField,
            message: "some fields are not valid".to_owned(),
            fields: vec![protocol::message::FieldError {
                field: protocol::message::Field::Password,
                message: problem.to_owned(),
            }],
        })),
    }
}

/// A login that authenticated but has no private key on this machine, and none that opens
/// on the server: what [`Client::start_over`] continues from.
pub(crate) struct KeyLost {
    pub(crate) bundle: LoginBundle,
    pub(crate) stretched: StretchedPassword,
    pub(crate) key_version: u32,
}

impl Client {
    /// How the server says to stretch `username`'s password.
    pub(crate) async fn prelogin(&self, username: &str) -> Result<KdfParams, ClientError> {
        let request = Request::Prelogin {
            username: username.to_owned(),
        };
        match self.request(request).await? {
            Response::Prelogin(params) => Ok(params),
            other => Err(unexpected(other)),
        }
    }

    /// Stretches `password` off the async threads (it takes a good part of a second by design).
    pub(crate) async fn stretch(
        &self,
        password: &str,
        params: KdfParams,
    ) -> Result<StretchedPassword, ClientError> {
        let password = Zeroizing::new(password.to_owned());
        let floor = self.inner.config.min_kdf;
        tokio::task::spawn_blocking(move || StretchedPassword::derive(&password, &params, &floor))
            .await
            .map_err(|_| ClientError::Invalid("stretching the password failed".into()))?
            .map_err(|err| ClientError::Invalid(err.to_string()))
    }

    /// Checks a new account's password, then stretches it with fresh parameters at the cost
    /// the server asks for `username`.
    pub(crate) async fn stretch_new(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(KdfParams, StretchedPassword), ClientError> {
        check_new_password(password)?;
        let asked = self.prelogin(username).await?;
        let params = self.fresh_params(asked.cost)?;
        Ok((params, self.stretch(password, params).await?))
    }

    /// Fresh stretch parameters at the cost the server asks, after checking it.
    pub(crate) fn fresh_params(&self, cost: KdfCost) -> Result<KdfParams, ClientError> {
        KdfParams::fresh(cost).map_err(ClientError::from)
    }

    /// The private key for this login: the server's wrapped copy when it opens (saved here),
    /// else the one on this machine (given to the server if it holds none). `Err(lost)` when
    /// neither exists.
    pub(crate) async fn restore_key(
        &self,
        me: UserId,
        username: &str,
        stretched: &StretchedPassword,
    ) -> Result<Result<(KeyPair, u32), u32>, ClientError> {
        let local = self.load_keys(username).ok();
        let (key_version, wrapped) = match self.request(Request::FetchPrivateKey).await? {
            Response::PrivateKey {
                key_version,
                wrapped,
            } => (key_version, wrapped),
            other => return Err(unexpected(other)),
        };
        if let Some(wrapped) = wrapped.filter(|w| w.key_version == key_version) {
            match stretched.unwrap(me, &wrapped) {
                Ok(keys) => {
                    if local.as_ref().map(KeyPair::public) != Some(keys.public()) {
                        self.save_keys(username, &keys)?;
                    }
                    return Ok(Ok((keys, key_version)));
                }
                Err(err) => tracing::warn!(%err, "the server's copy of the key does not open"),
            }
        } else if let Some(local) = &local {
            let wrapped = stretched.wrap(me, key_version, local);
            match self.request(Request::StorePrivateKey(wrapped)).await? {
                Response::Done => {}
                other => return Err(unexpected(other)),
            }
        }
        Ok(local.map(|keys| (keys, key_version)).ok_or(key_version))
    }

    /// Changes the password: the private key is wrapped again under the new one, and the
    /// server replaces the old key and hash together. Logging in anywhere then takes the new
    /// password.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<(), ClientError> {
        check_new_password(new)?;
        let account = self.account()?;
        let params = self.prelogin(&account.me.username).await?;
        let old = self.stretch(current, params).await?;
        let new_params = self.fresh_params(params.cost)?;
        let new_stretched = self.stretch(new, new_params).await?;
        let key_version = account.key_version;
        let request = Request::ChangePassword {
            old_auth_key: old.auth_key(),
            new_auth_key: new_stretched.auth_key(),
            kdf: new_params,
            wrapped_key: new_stretched.wrap(account.me.id, key_version, &account.keys),
        };
        match self.request(request).await? {
            Response::Done => {}
            other => return Err(unexpected(other)),
        }
        *account
            .auth_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Zeroizing::new(new_stretched.auth_key());
        Ok(())
    }

    /// After a login that failed with [`ClientError::KeyLost`]: makes a new key pair, so this
    /// account can be used again. Messages sealed for the old key stay unreadable here;
    /// friends are warned that the key changed. Finishes the login.
    pub async fn start_over(&self) -> Result<LoginBundle, ClientError> {
        let lost =
            self.state().key_lost.take().ok_or_else(|| {
                ClientError::Invalid("nothing to start over: log in first".into())
            })?;
        let keys = KeyPair::generate().map_err(|_| ClientError::Invalid("no randomness".into()))?;
        let me = lost.bundle.me.id;
        let wrapped = lost.stretched.wrap(me, lost.key_version + 1, &keys);
        let request = Request::ResetKey {
            public_key: ByteBuf::from(keys.public().as_bytes().to_vec()),
            wrapped_key: wrapped,
        };
        let certificate: UserCertificate = match self.request(request).await? {
            Response::Certificate(certificate) => certificate,
            other => return Err(unexpected(other)),
        };
        self.save_keys(&lost.bundle.me.username, &keys)?;
        self.finish_login(
            lost.bundle,
            keys,
            certificate.key_version,
            Zeroizing::new(lost.stretched.auth_key()),
        )
        .await
    }
}
