//! `uchat-server` as a library: the whole stack in one process (migrations, account-svc,
//! social-svc, message-svc and the gateway). The gateway makes the same gRPC calls as in the
//! split deployment, into the services' handlers in this process rather than over loopback
//! (`proto::transport`). The end-to-end tests start it exactly as the binary does.

mod attachments;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use migrations::{Migrator, MigratorTrait};
use proto::account::account_client::AccountClient;
use proto::internal::{Authenticated, InternalKey};
use proto::message::message_client::MessageClient;
use proto::social::social_client::SocialClient;
use protocol::{Fingerprint, ServerIdentity};
use service_kit::push::Pusher;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The server key's file name in the data directory.
pub const SERVER_KEY_FILE: &str = "server.key";

/// The SQLite database's file name in the data directory.
pub const DATABASE_FILE: &str = "uchat.db";

pub use attachments::ATTACHMENTS_FILE;

/// The file in the data directory where a running server writes account-svc's loopback
/// address, for `uchat-server online`.
pub const ADMIN_ADDR_FILE: &str = "admin.addr";

/// The internal key's file name in the data directory: every call between the parts of the
/// server carries it, so no other local user can call the services' loopback ports.
pub const INTERNAL_KEY_FILE: &str = "internal.key";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the SQLite file and the server key live (created on first start).
    pub data_dir: PathBuf,
    /// Where clients connect.
    pub listen: SocketAddr,
    /// A database URL instead of the SQLite file in the data directory.
    pub database_url: Option<String>,
    /// The server's name in its certificate (used when the key is created).
    pub server_name: String,
    /// account-svc's settings.
    pub account: account_svc::Config,
    /// message-svc's settings.
    pub message: message_svc::Config,
    /// The gateway's settings.
    pub gateway: gateway::Config,
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// The server key's fingerprint (clients pin it).
    pub fingerprint: Fingerprint,
    /// account-svc's loopback URL.
    pub account_url: String,
    /// The gateway's push server's loopback URL.
    pub push_url: String,
    /// Whether the server key was created by this start.
    pub key_created: bool,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
    admin_file: PathBuf,
}

impl Running {
    /// Stops gracefully: the gateway drains its sessions, then the services stop.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        let result = self.task.await.context("the server task failed")?;
        let _ = std::fs::remove_file(&self.admin_file);
        result
    }

    /// Waits until the server stops by itself (it does not, unless a part fails).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("the server task failed")?
    }
}

async fn loopback() -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot listen on loopback")?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

/// A client of the account-svc of the server running on `data_dir`, authenticated with the
/// internal key there (`uchat-server online`; only the data directory's owner can read it).
pub async fn admin_client(data_dir: &Path) -> anyhow::Result<AccountClient<Authenticated>> {
    let file = data_dir.join(ADMIN_ADDR_FILE);
    let url = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "no running server found ({} is missing); start uchat-server first",
            file.display()
        )
    })?;
    let key = InternalKey::load(&data_dir.join(INTERNAL_KEY_FILE))?;
    let channel = tonic::transport::Endpoint::from_shared(url.trim().to_owned())
        .context("the address in the data directory is malformed")?
        .connect()
        .await
        .context("the server in this data directory is not answering")?;
    Ok(AccountClient::new(key.authenticate(channel)))
}

/// Makes the data directory readable by its owner only: it holds the server's private key and
/// the password hashes.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
    }
    Ok(())
}

/// The SQLite URL of the data directory's database.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join(DATABASE_FILE).display()
    )
}

/// A deployment's keys, as they are in its key directory.
#[derive(Debug)]
pub struct Keys {
    /// The server's long-term identity (every gateway of the deployment uses it).
    pub identity: ServerIdentity,
    /// Whether this call created the server key.
    pub server_key_created: bool,
    /// The key every internal call carries.
    pub internal: InternalKey,
}

/// Opens the keys in `dir` ([`SERVER_KEY_FILE`], [`INTERNAL_KEY_FILE`]), creating the
/// directory (owner only) and whichever key is missing (0600). `uchat-server` calls it on
/// its data directory at each start; `uchat-server keys` makes a split deployment's keys once.
pub fn keys(dir: &Path, server_name: &str) -> anyhow::Result<Keys> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    private_dir(dir)?;
    let key_path = dir.join(SERVER_KEY_FILE);
    let (identity, server_key_created) =
        ServerIdentity::load_or_generate(&key_path, server_name)
            .with_context(|| format!("server key {}", key_path.display()))?;
    let internal = InternalKey::load_or_create(&dir.join(INTERNAL_KEY_FILE))?;
    Ok(Keys {
        identity,
        server_key_created,
        internal,
    })
}

/// Starts everything and returns once clients can connect.
pub async fn start(options: Options) -> anyhow::Result<Running> {
    let Keys {
        identity,
        server_key_created: key_created,
        internal: internal_key,
    } = keys(&options.data_dir, &options.server_name)?;
    let url = options
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(&options.data_dir));
    let (db, checkpointer) = service_kit::db::connect_serving(&url)
        .await
        .context("cannot open the database")?;
    Migrator::up(&db, None)
        .await
        .context("cannot migrate the database")?;
    // With the data directory's SQLite file, attachments get a file of their own; a database
    // named by URL holds them too.
    let (files, files_checkpointer) = match options.database_url {
        Some(_) => (db.clone(), None),
        None => {
            let main = options.data_dir.join(DATABASE_FILE);
            attachments::open(&options.data_dir, &main).await?
        }
    };

    let clients = gateway::bind_with_backlog(options.listen, options.gateway.listen_backlog)?;
    let client_addr = clients.local_addr()?;
    let (account_listener, account_url) = loopback().await?;
    let (push_listener, push_url) = loopback().await?;

    let (stop, stopped) = watch::channel(false);
    let signal = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    // The gateway calls the services in process (`proto::transport`), and they push to it in
    // process, by its advertised address. account-svc is also served on loopback, for
    // `uchat-server online`.
    let hub = gateway::Hub::default();
    let push = Pusher::new(internal_key.clone()).with_local(
        push_listener.local_addr()?.to_string(),
        service_kit::in_process(gateway::push_service(hub.clone(), &internal_key)),
    );
    let (account, sweeper) =
        account_svc::start(db.clone(), options.account, push.clone(), &internal_key)
            .await
            .context("cannot start account-svc")?;
    let social = social_svc::service(db.clone(), push.clone(), &internal_key);
    let message = message_svc::service(
        message_svc::Stores {
            messages: db.clone(),
            attachments: files.clone(),
        },
        Arc::new(options.message),
        push,
        &internal_key,
    );
    // The services stop only after the gateway drained: its last logouts reach account-svc.
    let (services_stop, services_stopped) = watch::channel(false);
    let admin = tokio::spawn({
        let router = service_kit::server().add_service(account.clone());
        let db = db.clone();
        async move {
            service_kit::serve_router(router, account_listener, &db, signal(services_stopped)).await
        }
    });
    let in_process = |service| internal_key.authenticate(service);
    let services = gateway::Services {
        account: AccountClient::new(in_process(service_kit::in_process(account))),
        social: SocialClient::new(in_process(service_kit::in_process(social))),
        message: MessageClient::new(in_process(service_kit::in_process(message))),
        key: internal_key.clone(),
    };
    let fingerprint = identity.fingerprint();
    let listeners = gateway::Listeners {
        clients,
        push: push_listener,
        push_advertise: None,
    };
    let gateway_config = options.gateway;
    let gateway = tokio::spawn(gateway::serve_with_hub(
        listeners,
        Arc::new(identity),
        services,
        gateway_config,
        hub,
        signal(stopped),
    ));

    let admin_file = options.data_dir.join(ADMIN_ADDR_FILE);
    std::fs::write(&admin_file, &account_url)
        .with_context(|| format!("cannot write {}", admin_file.display()))?;

    let task = tokio::spawn(async move {
        let gateway_result = gateway.await;
        services_stop.send_replace(true);
        let admin_result = admin.await;
        sweeper.abort();
        // The connection closes when the last background task holding it ends.
        drop((db, files));
        drop((checkpointer, files_checkpointer));
        gateway_result.context("gateway task")??;
        admin_result.context("account-svc task")??;
        Ok(())
    });
    Ok(Running {
        client_addr,
        fingerprint,
        account_url,
        push_url,
        key_created,
        stop,
        task,
        admin_file,
    })
}
