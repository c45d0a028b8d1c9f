//! Uchat's end-to-end tests: the whole stack started in-process exactly as `uchat-server`
//! starts it (real TCP, real gRPC between the services, a real SQLite file), driven by real
//! clients from `client-core`; and the split stack's real binaries as processes
//! ([`processes`]).

pub mod measure;
pub mod processes;
pub mod raw;
pub mod split;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use client_core::{Client, ClientConfig, ClientError, ClientEvent, RegisterForm};
use protocol::UserId;
use protocol::message::{
    ClientMessage, KdfCost, KdfParams, Login, LoginBundle, Request, Response, ServerMessage, Sex,
};
use protocol::password::StretchedPassword;
use tokio::sync::mpsc::UnboundedReceiver;

/// Longest a test waits for an event.
pub const EVENT_WAIT: Duration = Duration::from_secs(20);

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse";

/// The password stretch of the test server and its clients: the least argon2id allows, so
/// tests do not pay a real login's cost (the benchmark does).
pub const TEST_KDF: KdfCost = KdfCost {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

/// The authentication key raw-protocol tests register and log in with (they stand for a
/// client, which would stretch it from a password).
pub const RAW_AUTH_KEY: [u8; 32] = [0x42; 32];

/// Stretch parameters for a raw registration at the test server's cost.
pub fn raw_kdf() -> KdfParams {
    KdfParams {
        salt: [0x5a; 16],
        cost: TEST_KDF,
    }
}

/// A raw `Login` of `username`, registered by client-core with [`PASSWORD`]: asks the server
/// how to stretch it (request id `id`) and stretches it, as client-core does.
pub async fn raw_login<S>(
    conn: &mut protocol::SecureConnection<S>,
    username: &str,
    id: u64,
) -> Request
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let prelogin = Request::Prelogin {
        username: username.into(),
    };
    conn.write_message(&ClientMessage::Request { id, body: prelogin })
        .await
        .unwrap_or_else(|e| panic!("prelogin: {e}"));
    let params = loop {
        match conn.read_message::<ServerMessage>().await {
            Ok(Some(ServerMessage::Response {
                id: got,
                result: Ok(Response::Prelogin(params)),
            })) if got == id => break params,
            Ok(Some(ServerMessage::Response { id: got, result })) if got == id => {
                panic!("prelogin: {result:?}")
            }
            Ok(Some(_)) => continue,
            other => panic!("prelogin: {other:?}"),
        }
    };
    let stretched = StretchedPassword::derive(PASSWORD, &params, &TEST_KDF)
        .unwrap_or_else(|e| panic!("stretch: {e}"));
    Request::Login(Login {
        username: username.into(),
        auth_key: stretched.auth_key(),
    })
}

/// A server on a temporary data directory, on a loopback port.
pub struct TestCluster {
    /// The running server; `None` while stopped.
    pub server: Option<server::Running>,
    /// The temporary folder of the server and its clients.
    pub dir: tempfile::TempDir,
    options: server::Options,
    clients: AtomicUsize,
}

/// Options for tests: cheap password hashing (the real cost is measured by the benchmark)
/// and auth rate limits that a test's many logins from 127.0.0.1 do not reach.
pub fn test_options(data_dir: PathBuf) -> server::Options {
    server::Options {
        data_dir,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: None,
        server_name: "uchat-test".into(),
        account: account_svc::Config {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            client_kdf_memory_kib: TEST_KDF.memory_kib,
            client_kdf_iterations: TEST_KDF.iterations,
            client_kdf_parallelism: TEST_KDF.parallelism,
            ..account_svc::Config::default()
        },
        message: message_svc::Config::default(),
        gateway: gateway::Config {
            auth_per_minute: 60_000,
            ..gateway::Config::default()
        },
    }
}

impl TestCluster {
    /// Starts a server with [`test_options`].
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with [`test_options`] changed by `change`.
    pub async fn start_with(change: impl FnOnce(&mut server::Options)) -> Self {
        // Logs go to the test's captured output (shown for a failing test); RUST_LOG chooses.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let mut options = test_options(dir.path().join("server"));
        change(&mut options);
        let running = server::start(options.clone())
            .await
            .unwrap_or_else(|e| panic!("server start: {e:#}"));
        // Restarts keep the port, so clients reconnect to the same address.
        options.listen = running.client_addr;
        Self {
            server: Some(running),
            dir,
            options,
            clients: AtomicUsize::new(0),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> String {
        self.options.listen.to_string()
    }

    /// The server's SQLite file.
    pub fn database_file(&self) -> PathBuf {
        self.options.data_dir.join(server::DATABASE_FILE)
    }

    /// The server's attachments file (beside [`TestCluster::database_file`]).
    pub fn attachments_file(&self) -> PathBuf {
        self.options.data_dir.join(server::ATTACHMENTS_FILE)
    }

    /// Stops the server gracefully.
    pub async fn stop(&mut self) {
        if let Some(running) = self.server.take() {
            running
                .stop()
                .await
                .unwrap_or_else(|e| panic!("server stop: {e:#}"));
        }
    }

    /// Starts the stopped server again on the same data directory and port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = server::start(self.options.clone())
            .await
            .unwrap_or_else(|e| panic!("server restart: {e:#}"));
        self.server = Some(running);
    }

    /// A new client with its own folder.
    pub async fn client(&self) -> TestClient {
        let n = self.clients.fetch_add(1, Ordering::Relaxed);
        self.client_in(self.dir.path().join(format!("client-{n}")))
            .await
    }

    /// A client using `dir` (a second client of the same machine shares it).
    pub async fn client_in(&self, dir: PathBuf) -> TestClient {
        TestClient::connect(self.addr(), dir).await
    }

    /// A registered, logged-in user.
    pub async fn user(&self, name: &str) -> TestClient {
        let n = self.clients.fetch_add(1, Ordering::Relaxed);
        TestClient::user(
            self.addr(),
            self.dir.path().join(format!("client-{n}")),
            name,
        )
        .await
    }
}

/// A registration form for `name` with valid fields.
pub fn form(name: &str) -> RegisterForm {
    RegisterForm {
        username: name.into(),
        password: PASSWORD.into(),
        email: format!("{name}@example.com"),
        sex: Sex::Undisclosed,
        age: 30,
    }
}

/// A client and its events.
pub struct TestClient {
    /// The client.
    pub client: Client,
    /// Its events.
    pub events: UnboundedReceiver<ClientEvent>,
    /// Its folder.
    pub dir: PathBuf,
    /// Its user, once registered.
    pub id: UserId,
}

impl TestClient {
    /// A client of the server at `addr`, keeping its files in `dir`.
    pub async fn connect(addr: String, dir: PathBuf) -> Self {
        Self::connect_with(addr, dir, |_| {}).await
    }

    /// [`TestClient::connect`] with the client's settings changed by `change`.
    pub async fn connect_with(
        addr: String,
        dir: PathBuf,
        change: impl FnOnce(&mut ClientConfig),
    ) -> Self {
        let mut config = ClientConfig {
            min_kdf: TEST_KDF,
            ..ClientConfig::new(addr, dir.clone())
        };
        change(&mut config);
        let (client, events) = Client::connect(config)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        Self {
            client,
            events,
            dir,
            id: UserId(0),
        }
    }

    /// `name`, registered and logged in at `addr` with files in `dir`.
    pub async fn user(addr: String, dir: PathBuf, name: &str) -> Self {
        let mut user = Self::connect(addr, dir).await;
        user.id = user
            .client
            .register(form(name))
            .await
            .unwrap_or_else(|e| panic!("register {name}: {e}"));
        user.login(name).await;
        user
    }

    /// Logs in as `name`.
    pub async fn login(&mut self, name: &str) -> LoginBundle {
        let bundle = self
            .client
            .login(name, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("login {name}: {e}"));
        self.id = bundle.me.id;
        bundle
    }

    /// Waits for the first event that `pick` accepts, skipping others.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&ClientEvent) -> Option<T>,
    ) -> T {
        let wait = async {
            while let Some(event) = self.events.recv().await {
                if let Some(found) = pick(&event) {
                    return Some(found);
                }
                eprintln!("(waiting for {what}) skipped {event:?}");
            }
            None
        };
        match tokio::time::timeout(EVENT_WAIT, wait).await {
            Ok(Some(found)) => found,
            Ok(None) => panic!("event stream ended waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }

    /// Waits for a message whose text is `text`; returns it.
    pub async fn wait_for_text(&mut self, text: &str) -> client_core::LocalMessage {
        self.wait_for(&format!("message {text:?}"), |e| match e {
            ClientEvent::Message(m) if client_core::text_of(&m.body) == Some(text) => {
                Some(m.clone())
            }
            _ => None,
        })
        .await
    }
}

/// The server's error code of a failed call.
pub fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> protocol::message::ErrorCode {
    match result {
        Err(err) => err
            .code()
            .unwrap_or_else(|| panic!("expected a server error, got {err}")),
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

/// Makes `a` and `b` friends (`a` asks, `b` accepts); returns their conversation.
pub async fn befriend(a: &TestClient, b: &TestClient) -> protocol::ConversationId {
    a.client
        .add_friend(b.id)
        .await
        .unwrap_or_else(|e| panic!("add friend: {e}"));
    let friend = b
        .client
        .resolve_friend_request(a.id, protocol::message::FriendDecision::Accept)
        .await
        .unwrap_or_else(|e| panic!("accept: {e}"))
        .unwrap_or_else(|| panic!("accepting gave no friend"));
    a.client
        .refresh_contacts()
        .await
        .unwrap_or_else(|e| panic!("contacts: {e}"));
    friend.conversation
}

/// A one-to-one envelope of `blocks` 16-byte ciphertext blocks of `fill`, for raw-protocol
/// tests: the server checks an envelope's outer structure, never its contents, so any
/// well-formed one will do.
pub fn opaque_envelope(fill: u8, blocks: usize) -> Vec<u8> {
    let sealed = protocol::e2e::Sealed {
        iv: [fill; 16],
        ciphertext: serde_bytes::ByteBuf::from(vec![fill; 16 * blocks]),
        mac: [fill; 16],
    };
    protocol::e2e::Envelope::Direct(sealed)
        .encode()
        .unwrap_or_default()
}
