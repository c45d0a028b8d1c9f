//! The client handle and its shared state: configuration, the live link, the logged-in
//! account and the contacts as last known. Every other module adds an `impl Client` block.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protocol::e2e::PairwiseKey;
use protocol::message::{Event, LoginBundle, Request, Response, UserSummary};
use protocol::{ConversationId, Fingerprint, KeyPair, PublicKey, Seq, ServerCertificate, UserId};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::contacts::Contacts;
use crate::error::ClientError;
use crate::event::ClientEvent;
use crate::link::Link;
use crate::store::Store;
use crate::trust::KnownServers;

/// How often a transfer waiting for the connection checks whether it is back.
pub const RECONNECT_POLL: Duration = Duration::from_millis(100);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's address, `host:port`.
    pub server: String,
    /// The client's folder: known servers, keys, local history, image cache.
    pub data_dir: PathBuf,
    /// Longest a request waits for its answer.
    pub request_timeout: Duration,
    /// Whether a lost connection is re-established (and the session restored) by itself.
    pub auto_reconnect: bool,
    /// Whether a server met for the first time is pinned without asking. When false,
    /// connecting to it fails with [`ClientError::UnknownServer`] until the person accepts
    /// its fingerprint (the desktop client asks; tests and tools trust on first use).
    pub trust_new_servers: bool,
    /// The least password stretch accepted from a server (a server asking less could make a
    /// stolen hash cheap to guess). Default [`protocol::password::MIN_KDF`].
    pub min_kdf: protocol::password::KdfCost,
    /// Where the local history is kept.
    pub local_store: LocalStore,
}

/// Where a client keeps its local history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalStore {
    /// A SQLite file per user in the data directory: history survives a restart.
    #[default]
    File,
    /// In memory, gone with the client: for load tools that measure the server, not
    /// thousands of client databases. Everything else behaves the same.
    Memory,
}

impl ClientConfig {
    /// Defaults for `server`, keeping files in `data_dir`.
    pub fn new(server: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            server: server.into(),
            data_dir: data_dir.into(),
            request_timeout: Duration::from_secs(30),
            auto_reconnect: true,
            trust_new_servers: true,
            min_kdf: protocol::password::MIN_KDF,
            local_store: LocalStore::File,
        }
    }
}

/// A logged-in user.
pub(crate) struct Account {
    pub(crate) me: UserSummary,
    pub(crate) keys: KeyPair,
    /// The certificate's key version of `keys`.
    pub(crate) key_version: u32,
    /// The password's authentication key, to log in again after a lost connection (the
    /// password itself is not kept).
    pub(crate) auth_key: Mutex<Zeroizing<[u8; 32]>>,
    pub(crate) store: Store,
    /// Pairwise keys by user, with the public key they were derived from: deriving one costs
    /// a Diffie-Hellman exponentiation (about a millisecond), so each is derived once.
    pub(crate) pairwise: Mutex<HashMap<UserId, (PublicKey, PairwiseKey)>>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) link: Option<Arc<Link>>,
    pub(crate) account: Option<Arc<Account>>,
    pub(crate) contacts: Option<Contacts>,
    /// Set when the session must not be restored (kicked, logged out).
    pub(crate) ended: bool,
    /// Delivery acknowledgements waiting to be sent, by conversation.
    pub(crate) acks: HashMap<ConversationId, Seq>,
    /// Messages that arrived past a gap, by conversation (the highest seq of each), while a
    /// sync to fetch the gaps is scheduled; `None` when none is.
    pub(crate) gaps: Option<HashMap<ConversationId, Seq>>,
    /// A login whose private key could not be found or restored, until the person starts
    /// over or logs out.
    pub(crate) key_lost: Option<crate::password::KeyLost>,
}

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    pub(crate) known: KnownServers,
    pub(crate) certificate: ServerCertificate,
    pub(crate) state: Mutex<State>,
    pub(crate) events: mpsc::UnboundedSender<ClientEvent>,
    pub(crate) raw: mpsc::UnboundedSender<Event>,
}

/// A Uchat client. Cheap to clone; all clones share one connection and session.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.config.server)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unexpected(response: Response) -> ClientError {
    ClientError::Invalid(format!("unexpected answer from the server: {response:?}"))
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::File {
        path: path.to_owned(),
        source,
    }
}

impl Client {
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The server key's fingerprint (pinned in the known-servers file).
    pub fn server_fingerprint(&self) -> Fingerprint {
        self.inner.certificate.fingerprint()
    }

    /// The known-servers file.
    pub fn known_servers(&self) -> &Path {
        self.inner.known.path()
    }

    pub(crate) async fn request(&self, body: Request) -> Result<Response, ClientError> {
        let link = self
            .state()
            .link
            .clone()
            .ok_or_else(|| ClientError::Disconnected("not connected".into()))?;
        link.request(body, self.inner.config.request_timeout).await
    }

    pub(crate) fn account(&self) -> Result<Arc<Account>, ClientError> {
        self.state()
            .account
            .clone()
            .ok_or_else(|| ClientError::Invalid("log in first".into()))
    }

    /// Who is logged in.
    pub fn me(&self) -> Option<UserSummary> {
        self.state().account.as_ref().map(|a| a.me.clone())
    }

    /// Friends, groups and pending requests as last known.
    pub fn contacts(&self) -> Option<LoginBundle> {
        self.state().contacts.as_ref().map(|c| c.bundle().clone())
    }

    /// Drops the connection as a network failure would (the client reconnects by itself).
    pub fn drop_connection(&self) {
        if let Some(link) = self.state().link.clone() {
            link.close();
        }
    }

    pub(crate) async fn wait_connected(&self, limit: Duration) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let connected = self.state().link.as_ref().is_some_and(|l| !l.is_closed());
            if connected {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Disconnected(
                    "the connection did not come back".into(),
                ));
            }
            tokio::time::sleep(RECONNECT_POLL).await;
        }
    }

    /// Tells the user interface.
    pub(crate) fn emit(&self, event: ClientEvent) {
        // The receiver is gone only when the user interface stopped listening.
        let _ = self.inner.events.send(event);
    }
}
