//! Test helpers shared by the services' tests (feature `testing`): a migrated database of
//! each backend, a gateway Push server that records what it is sent, and the steps every
//! test repeats (register, log in, befriend).

// Test scaffolding: failing loudly is what a test helper should do.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use proto::account::account_client::AccountClient;
use proto::account::{LoginRequest, RegisterRequest};
use proto::common::PeerAddr;
use proto::gateway::push_server::{Push, PushServer};
use proto::gateway::{
    DeliverRequest, Delivery, KickRequest, Notification, NotifyRequest, PushResponse,
};
use proto::internal::{Authenticated, InternalKey};
use proto::social::social_client::SocialClient;
use proto::social::{AddFriendRequest, Decision, ResolveFriendRequestRequest};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// The internal key of every test deployment.
pub fn internal_key() -> InternalKey {
    InternalKey::from_bytes([0x17; proto::internal::KEY_LEN])
}

/// A channel to a service at `url` whose calls carry [`internal_key`], as the gateway's do.
pub async fn channel(url: &str) -> Authenticated {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("a service URL")
        .connect()
        .await
        .expect("connect to the service");
    internal_key().authenticate(channel)
}

/// The authentication key of the users [`registration`] makes (a client would stretch it
/// from a password; services only hash what they receive).
pub const TEST_AUTH_KEY: [u8; 32] = [0x42; 32];

/// Stretch parameters as a client would send them, at the cost account-svc asks by default
/// (services never run the stretch; they check the figures).
pub fn test_kdf() -> proto::account::KdfParams {
    let cost = protocol::password::DEFAULT_KDF;
    proto::account::KdfParams {
        salt: vec![0x5a; protocol::password::SALT_LEN],
        memory_kib: cost.memory_kib,
        iterations: cost.iterations,
        parallelism: cost.parallelism,
    }
}

/// A valid registration of `name`: email `name@example.com` (lowercased), a placeholder
/// public key (account-svc checks its length; the gateway checks it is in the group).
pub fn registration(name: &str) -> RegisterRequest {
    RegisterRequest {
        username: name.into(),
        auth_key: TEST_AUTH_KEY.to_vec(),
        kdf: Some(test_kdf()),
        email: format!("{}@example.com", name.to_lowercase()),
        sex: proto::common::Sex::Female.into(),
        age: 30,
        public_key: vec![7; 256],
    }
}

/// Registers `name` ([`registration`]); returns the new user's id.
pub async fn register(account: &mut AccountClient<Authenticated>, name: &str) -> u64 {
    let registered = account
        .register(registration(name))
        .await
        .expect("register")
        .into_inner();
    assert!(
        registered.field_errors.is_empty(),
        "{:?}",
        registered.field_errors
    );
    registered.user_id
}

/// Logs `name` in on gateway `gw` as session `session`, from 127.0.0.1:`port`.
pub async fn log_in(
    account: &mut AccountClient<Authenticated>,
    name: &str,
    session: u64,
    port: u32,
) {
    account
        .login(LoginRequest {
            username: name.into(),
            auth_key: TEST_AUTH_KEY.to_vec(),
            gateway_id: "gw".into(),
            session_id: session,
            peer: Some(PeerAddr {
                ip: "127.0.0.1".into(),
                port,
            }),
        })
        .await
        .expect("log in");
}

/// Makes `a` and `b` friends (`a` asks, `b` accepts); returns their conversation.
pub async fn befriend(social: &mut SocialClient<Authenticated>, a: u64, b: u64) -> u64 {
    social
        .add_friend(AddFriendRequest {
            user_id: a,
            friend_id: b,
        })
        .await
        .expect("add friend");
    social
        .resolve_friend_request(ResolveFriendRequestRequest {
            user_id: b,
            requester_id: a,
            decision: Decision::Accept.into(),
        })
        .await
        .expect("accept")
        .into_inner()
        .friend
        .expect("accepting makes a friend")
        .conversation_id
}

/// Environment variable naming a PostgreSQL database the tests may create databases beside.
pub const PG_URL_VAR: &str = "UCHAT_TEST_DATABASE_URL";

static SKIP_NOTICE: std::sync::Once = std::sync::Once::new();

/// A migrated database for one test, and what keeps it alive.
pub struct TestDb {
    /// Which backend: `sqlite-memory`, `sqlite-file` or `postgres`.
    pub backend: &'static str,
    /// The connection.
    pub db: DatabaseConnection,
    _dir: Option<tempfile::TempDir>,
}

/// One fresh, migrated database per backend available: SQLite in memory, SQLite in a file,
/// and PostgreSQL when [`PG_URL_VAR`] is set (a new database made for this call).
pub async fn databases() -> Vec<TestDb> {
    let mut out = Vec::new();
    let memory = crate::db::connect("sqlite::memory:")
        .await
        .expect("sqlite memory");
    Migrator::up(&memory, None)
        .await
        .expect("migrate sqlite memory");
    out.push(TestDb {
        backend: "sqlite-memory",
        db: memory,
        _dir: None,
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("uchat.db").display()
    );
    let file = crate::db::connect(&url).await.expect("sqlite file");
    Migrator::up(&file, None)
        .await
        .expect("migrate sqlite file");
    out.push(TestDb {
        backend: "sqlite-file",
        db: file,
        _dir: Some(dir),
    });

    if let Some(url) = postgres_database_url().await {
        let db = crate::db::connect(&url)
            .await
            .expect("connect to the test database");
        out.push(TestDb {
            backend: "postgres",
            db,
            _dir: None,
        });
    }
    out
}

/// The URL of a fresh, migrated PostgreSQL database on the server `UCHAT_TEST_DATABASE_URL`
/// names, for tests whose parts connect on their own (replicas in their own runtimes or
/// processes); `None`, with a notice, when it is not set.
pub async fn postgres_database_url() -> Option<String> {
    let Ok(admin_url) = std::env::var(PG_URL_VAR) else {
        SKIP_NOTICE.call_once(|| {
            // Written to the real stderr, past the test harness's capture, so it is seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "NOTE: PostgreSQL tests skipped: {PG_URL_VAR} is not set (CI sets it; see README)"
            );
        });
        return None;
    };
    let admin = crate::db::connect(&admin_url)
        .await
        .expect("connect to PostgreSQL");
    let name = format!("uchat_t_{:016x}", rand_id());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .expect("a PostgreSQL URL ends with /database");
    let url = format!("{base}/{name}");
    let db = crate::db::connect(&url)
        .await
        .expect("connect to the test database");
    Migrator::up(&db, None).await.expect("migrate PostgreSQL");
    Some(url)
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// What a recording gateway received.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    /// A kick.
    Kick(KickRequest),
    /// One notification.
    Notify(Notification),
    /// A delivery batch.
    Deliver(DeliverRequest),
}

/// A real gRPC Push server that records every call, standing in for a gateway.
#[derive(Clone, Default)]
pub struct RecordingGateway {
    received: Arc<Mutex<Vec<Pushed>>>,
}

impl RecordingGateway {
    /// Starts one on 127.0.0.1:0, requiring [`internal_key`] as a gateway does; returns it and
    /// its address.
    pub async fn start() -> (Self, String) {
        let gateway = Self::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let router = tonic::transport::Server::builder().add_service(PushServer::with_interceptor(
            gateway.clone(),
            internal_key().require(),
        ));
        tokio::spawn(router.serve_with_incoming(ops::grpc::incoming(listener)));
        (gateway, addr)
    }

    /// One reached in this process ([`crate::in_process`]), requiring [`internal_key`] as a
    /// gateway does: for a [`crate::push::Pusher::with_local`].
    pub fn in_process() -> (Self, proto::transport::Transport) {
        let gateway = Self::default();
        let service = PushServer::with_interceptor(gateway.clone(), internal_key().require());
        (gateway, crate::in_process(service))
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Pushed> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Every delivery received so far, the batches flattened, in the order they came.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.received()
            .into_iter()
            .filter_map(|pushed| match pushed {
                Pushed::Deliver(batch) => Some(batch.deliveries),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Waits up to five seconds for a received item matching `pred`.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Pushed) -> bool) -> Pushed {
        for _ in 0..500 {
            if let Some(found) = self.received().into_iter().find(|p| pred(p)) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the gateway never received {what}; it got {:?}",
            self.received()
        );
    }

    fn record(&self, pushed: Pushed) {
        if let Ok(mut received) = self.received.lock() {
            received.push(pushed);
        }
    }
}

#[tonic::async_trait]
impl Push for RecordingGateway {
    async fn deliver(
        &self,
        request: Request<DeliverRequest>,
    ) -> Result<Response<PushResponse>, Status> {
        let request = request.into_inner();
        let accepted = u32::try_from(request.deliveries.len()).unwrap_or(u32::MAX);
        self.record(Pushed::Deliver(request));
        Ok(Response::new(PushResponse { accepted }))
    }

    async fn kick(&self, request: Request<KickRequest>) -> Result<Response<PushResponse>, Status> {
        self.record(Pushed::Kick(request.into_inner()));
        Ok(Response::new(PushResponse { accepted: 1 }))
    }

    async fn notify(
        &self,
        request: Request<NotifyRequest>,
    ) -> Result<Response<PushResponse>, Status> {
        let request = request.into_inner();
        let accepted = u32::try_from(request.notifications.len()).unwrap_or(u32::MAX);
        for notification in request.notifications {
            self.record(Pushed::Notify(notification));
        }
        Ok(Response::new(PushResponse { accepted }))
    }
}
