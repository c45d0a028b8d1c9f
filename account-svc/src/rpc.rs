//! The tonic implementation of `uchat.account.v1.Account`: decode, call logic and store, map
//! the error.

use std::sync::Arc;

use proto::account::account_server::Account;
use proto::account::{
    Certificate, ChangePasswordRequest, ChangePasswordResponse, FetchPrivateKeyRequest, Field,
    GetCertificatesRequest, GetCertificatesResponse, KdfParams, ListOnlineRequest,
    ListOnlineResponse, LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, OnlineSession,
    PreloginRequest, PrivateKeyResponse, RegisterGatewayRequest, RegisterGatewayResponse,
    RegisterRequest, RegisterResponse, RenewLeaseRequest, RenewLeaseResponse, ResetKeyRequest,
    StorePrivateKeyRequest, StorePrivateKeyResponse,
};
use proto::common::{PeerAddr, Presence};
use sea_orm::DatabaseConnection;
use service_kit::db::is_unique_violation;
use service_kit::push::{LiveSession, Pusher, summary};
use service_kit::{db_id, wire_id};
use tonic::{Request, Response, Status};

use crate::Config;
use crate::error::Error;
use crate::keys;
use crate::logic;
use crate::password::Passwords;
use crate::store::{self, NewUser, SessionPlace};
use crate::throttle::{LoginThrottle, Turn};

/// Longest gateway id or push address accepted.
const MAX_GATEWAY_FIELD: usize = 255;

/// Most users one `GetCertificates` call may name.
pub const MAX_CERTIFICATES_PER_CALL: usize = 500;

/// account-svc's state, passed explicitly.
#[derive(Debug, Clone)]
pub struct AccountRpc {
    db: DatabaseConnection,
    passwords: Passwords,
    push: Pusher,
    config: Arc<Config>,
    prelogin_secret: Arc<[u8; 32]>,
    throttle: Arc<LoginThrottle>,
}

impl AccountRpc {
    /// Prepares the service (argon2 parameters are checked here).
    pub fn new(
        db: DatabaseConnection,
        config: Arc<Config>,
        push: Pusher,
        prelogin_secret: [u8; 32],
    ) -> Result<Self, Error> {
        Ok(Self {
            passwords: Passwords::new(&config)?,
            db,
            push,
            config,
            prelogin_secret: Arc::new(prelogin_secret),
            throttle: Arc::new(LoginThrottle::default()),
        })
    }

    /// The user of a call, who must exist.
    async fn user(&self, user_id: u64) -> Result<entity::user::Model, Error> {
        let id = db_id(user_id).ok_or(Error::Invalid("user id"))?;
        store::user_by_id(&self.db, id)
            .await?
            .ok_or(Error::Invalid("no such user"))
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.lease_ms).unwrap_or(i64::MAX / 2)
    }
}

/// A user's certificate.
fn certificate(user: entity::user::Model) -> Certificate {
    Certificate {
        user_id: wire_id(user.id),
        username: user.username,
        email: user.email,
        public_key: user.public_key,
        key_version: u32::try_from(user.key_version).unwrap_or(0),
    }
}

/// Tells `user`'s online friends that `user` went offline. Best effort.
pub async fn announce_offline(db: &DatabaseConnection, push: &Pusher, user: i64) {
    match service_kit::push::friend_ids(db, user).await {
        Ok(friends) => {
            let presence = Presence {
                online: false,
                addr: None,
            };
            push.presence(db, &friends, user, presence).await;
        }
        Err(err) => tracing::warn!(%err, user, "cannot read friends for a presence push"),
    }
}

#[tonic::async_trait]
impl Account for AccountRpc {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let request = request.into_inner();
        let rejected = |field_errors| {
            Ok(Response::new(RegisterResponse {
                user_id: 0,
                field_errors,
            }))
        };
        let errors = logic::check_registration(&request, &self.config.client_kdf());
        if !errors.is_empty() {
            return rejected(errors);
        }
        let username = logic::normalize_username(&request.username);
        let username_key = logic::username_key(&request.username);
        let email_key = logic::email_key(&request.email);
        let (username_taken, email_taken) = store::taken(&self.db, &username_key, &email_key)
            .await
            .map_err(Error::from)?;
        if username_taken || email_taken {
            let mut errors = Vec::new();
            if username_taken {
                errors.push(logic::taken(Field::Username));
            }
            if email_taken {
                errors.push(logic::taken(Field::Email));
            }
            return rejected(errors);
        }
        let kdf = request.kdf.ok_or(Error::Invalid("kdf"))?;
        let password_hash = self.passwords.hash(request.auth_key).await?;
        let new = NewUser {
            username,
            username_key,
            email: request.email.trim().to_owned(),
            email_key,
            password_hash,
            sex: i16::try_from(request.sex).map_err(|_| Error::Invalid("sex"))?,
            age: i16::try_from(request.age).map_err(|_| Error::Invalid("age"))?,
            public_key: request.public_key,
            kdf,
        };
        let username_for_log = new.username.clone();
        match store::insert_user(&self.db, new).await {
            Ok(id) => {
                tracing::info!(user = id, username = %username_for_log, "registered");
                Ok(Response::new(RegisterResponse {
                    user_id: wire_id(id),
                    field_errors: Vec::new(),
                }))
            }
            // Lost a race with a simultaneous registration of the same name or email.
            Err(err) if is_unique_violation(&err, "email_key") => {
                rejected(vec![logic::taken(Field::Email)])
            }
            Err(err) if is_unique_violation(&err, "username_key") => {
                rejected(vec![logic::taken(Field::Username)])
            }
            Err(err) => Err(Error::from(err).into()),
        }
    }

    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        let request = request.into_inner();
        if request.gateway_id.is_empty() || request.gateway_id.len() > MAX_GATEWAY_FIELD {
            return Err(Error::Invalid("gateway id").into());
        }
        let session_id = db_id(request.session_id).ok_or(Error::Invalid("session id"))?;
        let peer = request.peer.unwrap_or_default();
        let peer_port = i32::try_from(peer.port)
            .ok()
            .filter(|p| *p <= i32::from(u16::MAX))
            .ok_or(Error::Invalid("peer port"))?;

        let key = logic::username_key(&request.username);
        match self.throttle.turn(&key, std::time::Instant::now()) {
            Turn::Now => {}
            Turn::After(wait) => tokio::time::sleep(wait).await,
            Turn::Refused => return Err(Error::Throttled.into()),
        }
        let user = store::user_by_key(&self.db, &key)
            .await
            .map_err(Error::from)?;
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        // A key of the wrong length is verified like any wrong one: same time, same answer.
        if !self.passwords.verify(request.auth_key, stored_hash).await? {
            self.throttle.failed(&key, std::time::Instant::now());
            return Err(Error::BadCredentials.into());
        }
        self.throttle.succeeded(&key);
        let Some(user) = user else {
            return Err(Error::BadCredentials.into());
        };

        let place = SessionPlace {
            gateway_id: request.gateway_id,
            session_id,
            peer_ip: peer.ip.clone(),
            peer_port,
        };
        let (epoch, previous) = store::replace_session(&self.db, user.id, place)
            .await
            .map_err(Error::from)?;
        tracing::info!(user = user.id, username = %user.username, ip = %peer.ip, port = peer.port, epoch, "login");

        // Pushes go out in the background: a dead gateway must not slow the login down.
        let (db, push, user_id) = (self.db.clone(), self.push.clone(), user.id);
        let replaced = previous.is_some();
        tokio::spawn(async move {
            if let Some(previous) = previous {
                match store::live_gateway(&db, &previous.gateway_id).await {
                    Ok(Some(push_addr)) => {
                        let old = LiveSession {
                            user_id,
                            epoch: previous.epoch,
                            gateway_id: previous.gateway_id.clone(),
                            push_addr,
                            peer_ip: previous.peer_ip.clone(),
                            peer_port: previous.peer_port,
                        };
                        push.kick(&old, proto::SIGNED_IN_ELSEWHERE).await;
                    }
                    Ok(None) => {}
                    Err(err) => tracing::warn!(%err, "cannot find the replaced session's gateway"),
                }
            }
            match service_kit::push::friend_ids(&db, user_id).await {
                Ok(friends) => {
                    let presence = Presence {
                        online: true,
                        addr: Some(peer),
                    };
                    push.presence(&db, &friends, user_id, presence).await;
                }
                Err(err) => tracing::warn!(%err, "cannot read friends for a presence push"),
            }
        });

        Ok(Response::new(LoginResponse {
            user: Some(summary(&user)),
            epoch: wire_id(epoch),
            replaced,
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        let request = request.into_inner();
        let user = db_id(request.user_id).ok_or(Error::Invalid("user id"))?;
        let epoch = db_id(request.epoch).ok_or(Error::Invalid("epoch"))?;
        let logged_out = store::end_session(&self.db, user, epoch)
            .await
            .map_err(Error::from)?;
        if logged_out {
            tracing::info!(user, epoch, "logout");
            let (db, push) = (self.db.clone(), self.push.clone());
            tokio::spawn(async move { announce_offline(&db, &push, user).await });
        }
        Ok(Response::new(LogoutResponse { logged_out }))
    }

    async fn get_certificates(
        &self,
        request: Request<GetCertificatesRequest>,
    ) -> Result<Response<GetCertificatesResponse>, Status> {
        let request = request.into_inner();
        if request.user_ids.len() + request.usernames.len() > MAX_CERTIFICATES_PER_CALL {
            return Err(Error::Invalid("too many users in one call").into());
        }
        let ids = request.user_ids.into_iter().filter_map(db_id).collect();
        let keys = request
            .usernames
            .iter()
            .map(|name| logic::username_key(name))
            .collect();
        let users = store::users_by(&self.db, ids, keys)
            .await
            .map_err(Error::from)?;
        let found: Vec<i64> = users.iter().map(|u| u.id).collect();
        let close = match db_id(request.requester_id) {
            Some(requester) => store::close_to(&self.db, requester, &found)
                .await
                .map_err(Error::from)?,
            None => Default::default(),
        };
        let certificates = users
            .into_iter()
            .map(|user| {
                let shown = close.contains(&user.id);
                let mut certificate = certificate(user);
                if !shown {
                    certificate.email.clear();
                }
                certificate
            })
            .collect();
        Ok(Response::new(GetCertificatesResponse { certificates }))
    }

    async fn list_online(
        &self,
        _request: Request<ListOnlineRequest>,
    ) -> Result<Response<ListOnlineResponse>, Status> {
        let sessions = store::online(&self.db)
            .await
            .map_err(Error::from)?
            .into_iter()
            .map(|(session, user)| OnlineSession {
                user: Some(summary(&user)),
                peer: Some(PeerAddr {
                    ip: session.peer_ip,
                    port: u32::try_from(session.peer_port).unwrap_or(0),
                }),
                gateway_id: session.gateway_id,
                since: wire_id(session.since),
            })
            .collect();
        Ok(Response::new(ListOnlineResponse { sessions }))
    }

    async fn register_gateway(
        &self,
        request: Request<RegisterGatewayRequest>,
    ) -> Result<Response<RegisterGatewayResponse>, Status> {
        let request = request.into_inner();
        if request.gateway_id.is_empty() || request.gateway_id.len() > MAX_GATEWAY_FIELD {
            return Err(Error::Invalid("gateway id").into());
        }
        if request.push_addr.is_empty()
            || request.push_addr.len() > MAX_GATEWAY_FIELD
            || !request.push_addr.contains(':')
        {
            return Err(Error::Invalid("push address must be host:port").into());
        }
        let dropped = store::register_gateway(
            &self.db,
            &request.gateway_id,
            &request.push_addr,
            self.lease_ms(),
        )
        .await
        .map_err(Error::from)?;
        tracing::info!(gateway = %request.gateway_id, push_addr = %request.push_addr, "gateway registered");
        if !dropped.is_empty() {
            let (db, push) = (self.db.clone(), self.push.clone());
            tokio::spawn(async move {
                for user in dropped {
                    tracing::info!(user, "logout (gateway restarted)");
                    announce_offline(&db, &push, user).await;
                }
            });
        }
        Ok(Response::new(RegisterGatewayResponse {
            lease_ms: self.config.lease_ms,
        }))
    }

    async fn renew_lease(
        &self,
        request: Request<RenewLeaseRequest>,
    ) -> Result<Response<RenewLeaseResponse>, Status> {
        let request = request.into_inner();
        if !store::renew_lease(&self.db, &request.gateway_id, self.lease_ms())
            .await
            .map_err(Error::from)?
        {
            return Err(Error::UnknownGateway(request.gateway_id).into());
        }
        Ok(Response::new(RenewLeaseResponse {
            lease_ms: self.config.lease_ms,
        }))
    }

    async fn prelogin(
        &self,
        request: Request<PreloginRequest>,
    ) -> Result<Response<KdfParams>, Status> {
        let key = logic::username_key(&request.into_inner().username);
        let user = store::user_by_key(&self.db, &key)
            .await
            .map_err(Error::from)?;
        let params = keys::params_for(
            user.as_ref(),
            &key,
            &self.prelogin_secret,
            self.config.client_kdf(),
        );
        Ok(Response::new(params))
    }

    async fn fetch_private_key(
        &self,
        request: Request<FetchPrivateKeyRequest>,
    ) -> Result<Response<PrivateKeyResponse>, Status> {
        let user = self.user(request.into_inner().user_id).await?;
        Ok(Response::new(PrivateKeyResponse {
            key_version: u32::try_from(user.key_version).unwrap_or(0),
            wrapped: keys::wrapped_of(&user),
        }))
    }

    async fn store_private_key(
        &self,
        request: Request<StorePrivateKeyRequest>,
    ) -> Result<Response<StorePrivateKeyResponse>, Status> {
        let request = request.into_inner();
        let user = self.user(request.user_id).await?;
        let wrapped = request.wrapped.ok_or(Error::Invalid("wrapped key"))?;
        let version = i32::try_from(wrapped.key_version).map_err(|_| Error::Invalid("version"))?;
        let blob = keys::wrapped_blob(&wrapped)?;
        if !store::store_private_key(&self.db, user.id, version, blob)
            .await
            .map_err(Error::from)?
        {
            return Err(Error::Invalid(
                "a key is already stored, or the version is not the certificate's",
            )
            .into());
        }
        tracing::info!(user = user.id, version, "wrapped private key stored");
        Ok(Response::new(StorePrivateKeyResponse {}))
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        let request = request.into_inner();
        let user = self.user(request.user_id).await?;
        if !self
            .passwords
            .verify(request.old_auth_key, Some(user.password_hash.clone()))
            .await?
        {
            return Err(Error::BadCredentials.into());
        }
        if let Some(problem) = logic::check_password(
            &request.new_auth_key,
            request.kdf.as_ref(),
            &self.config.client_kdf(),
        ) {
            tracing::debug!(user = user.id, problem = %problem.message, "new password refused");
            return Err(
                Error::Invalid("the new password's key or stretch is not acceptable").into(),
            );
        }
        let kdf = request.kdf.ok_or(Error::Invalid("kdf"))?;
        let wrapped = request.wrapped.ok_or(Error::Invalid("wrapped key"))?;
        if i64::from(wrapped.key_version) != i64::from(user.key_version) {
            return Err(Error::Invalid("the wrapped key is not of the current version").into());
        }
        let blob = keys::wrapped_blob(&wrapped)?;
        let new_hash = self.passwords.hash(request.new_auth_key).await?;
        if !store::change_password(&self.db, user.id, &user.password_hash, new_hash, &kdf, blob)
            .await
            .map_err(Error::from)?
        {
            return Err(Error::BadCredentials.into());
        }
        tracing::info!(user = user.id, "password changed");
        Ok(Response::new(ChangePasswordResponse {}))
    }

    async fn reset_key(
        &self,
        request: Request<ResetKeyRequest>,
    ) -> Result<Response<Certificate>, Status> {
        let request = request.into_inner();
        let user = self.user(request.user_id).await?;
        if logic::check_public_key(&request.public_key).is_some() {
            return Err(Error::Invalid("public key").into());
        }
        let wrapped = request.wrapped.ok_or(Error::Invalid("wrapped key"))?;
        if i64::from(wrapped.key_version) != i64::from(user.key_version) + 1 {
            return Err(Error::Invalid("the new key's version must be the next one").into());
        }
        let blob = keys::wrapped_blob(&wrapped)?;
        let updated = store::reset_key(
            &self.db,
            user.id,
            user.key_version,
            request.public_key,
            blob,
        )
        .await
        .map_err(Error::from)?
        .ok_or(Error::Invalid("the key changed meanwhile; try again"))?;
        tracing::info!(
            user = updated.id,
            version = updated.key_version,
            "new key pair"
        );
        Ok(Response::new(certificate(updated)))
    }
}
