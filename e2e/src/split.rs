//! The split stack started from the real binaries ([`crate::processes`]) on PostgreSQL: one
//! account-svc, one social-svc, message-svc replicas behind one name, gateways. The name
//! `message-svc` is resolved from a hosts file the gateways read again every 200 ms, as they
//! would DNS, so replicas come and go while they run. Used by the split-stack test and the
//! split-stack benchmark.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::TEST_KDF;
use crate::processes::{Proc, binary, free_port};

/// A gateway's lease in the split stack, and how often account-svc sweeps expired ones.
pub const LEASE_MS: u64 = 2_000;
/// See [`LEASE_MS`].
pub const SWEEP_MS: u64 = 300;
/// How long a part may take to become healthy.
pub const START_WAIT: Duration = Duration::from_secs(30);
/// How many loopback addresses a replica tries when the one it was given is taken.
pub const REPLICA_START_ATTEMPTS: u8 = 8;

fn s(v: impl ToString) -> String {
    v.to_string()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until `proc` serves at `addr`.
///
/// # Panics
/// When it exits first, with why, or does not serve within [`START_WAIT`].
async fn serving(proc: &mut Proc, addr: SocketAddr) {
    if let Err(exited) = proc.wait_serving(&s(addr), START_WAIT).await {
        panic!("the part for {addr} exited before serving:\n{}", exited.log);
    }
}

/// A gateway's addresses.
#[derive(Debug, Clone, Copy)]
pub struct GatewayAddrs {
    /// Where clients connect.
    pub clients: SocketAddr,
    /// Its push server (and health).
    pub push: SocketAddr,
    /// Its metrics.
    pub metrics: SocketAddr,
}

/// A message-svc replica.
pub struct Replica {
    /// Its process.
    pub proc: Proc,
    /// Its address behind the name.
    pub ip: [u8; 4],
    /// Its metrics.
    pub metrics: SocketAddr,
}

/// A running split stack (every process is killed when it is dropped).
pub struct SplitStack {
    /// Where the keys, the hosts file and the logs are.
    pub dir: PathBuf,
    /// The database every process but social-svc uses.
    pub database_url: String,
    /// account-svc's address.
    pub account: SocketAddr,
    /// social-svc's address.
    pub social: SocketAddr,
    /// The port every message-svc replica listens on, each on its own loopback address.
    pub message_port: u16,
    /// The replicas started so far (killed ones included).
    pub replicas: Vec<Replica>,
    /// The gateways' processes, by index into [`SplitStack::gateway_addrs`].
    pub gateways: Vec<Proc>,
    /// The gateways' addresses.
    pub gateway_addrs: Vec<GatewayAddrs>,
    _services: Vec<Proc>,
}

impl SplitStack {
    /// Makes the keys, migrates `database_url`, starts account-svc, social-svc (on
    /// `social_database_url`, which may go through a proxy), `replicas` message-svc replicas
    /// and `gateways` gateways, and waits until each says it is serving. Logs go to `dir`.
    ///
    /// # Panics
    /// When a part does not start.
    pub async fn start(
        dir: &Path,
        database_url: &str,
        social_database_url: &str,
        replicas: usize,
        gateways: usize,
    ) -> Self {
        let keys = dir.join("keys");
        let made = std::process::Command::new(binary("uchat-server"))
            .args(["--data-dir", &s(keys.display()), "keys"])
            .output()
            .unwrap_or_else(|e| panic!("uchat-server keys: {e}"));
        assert!(made.status.success(), "uchat-server keys: {made:?}");
        let migrated = std::process::Command::new(binary("migrate"))
            .args(["--database-url", database_url, "up"])
            .output()
            .unwrap_or_else(|e| panic!("migrate: {e}"));
        assert!(migrated.status.success(), "migrate up: {migrated:?}");

        let mut stack = Self {
            dir: dir.to_path_buf(),
            database_url: database_url.to_owned(),
            account: local(free_port([127, 0, 0, 1])),
            social: local(free_port([127, 0, 0, 1])),
            message_port: free_port([127, 0, 0, 2]),
            replicas: Vec::new(),
            gateways: Vec::new(),
            gateway_addrs: Vec::new(),
            _services: Vec::new(),
        };
        let account = stack.service(
            "account-svc",
            stack.account,
            database_url,
            &[
                s("--lease-ms"),
                s(LEASE_MS),
                s("--lease-sweep-ms"),
                s(SWEEP_MS),
                s("--argon2-memory-kib"),
                s(1024),
                s("--argon2-iterations"),
                s(1),
                s("--client-kdf-memory-kib"),
                s(TEST_KDF.memory_kib),
                s("--client-kdf-iterations"),
                s(TEST_KDF.iterations),
            ],
        );
        let social = stack.service("social-svc", stack.social, social_database_url, &[]);
        stack._services = vec![account, social];
        let addrs = [stack.account, stack.social];
        for (proc, addr) in stack._services.iter_mut().zip(addrs) {
            serving(proc, addr).await;
        }
        for _ in 0..replicas {
            stack.add_replica().await;
        }
        for _ in 0..gateways {
            let addrs = GatewayAddrs {
                clients: local(free_port([127, 0, 0, 1])),
                push: local(free_port([127, 0, 0, 1])),
                metrics: local(free_port([127, 0, 0, 1])),
            };
            stack.gateway_addrs.push(addrs);
            let name = format!("gateway-{}", stack.gateways.len() + 1);
            let gateway = stack.start_gateway(&name, addrs).await;
            stack.gateways.push(gateway);
        }
        stack
    }

    fn key_args(&self) -> [String; 2] {
        [
            s("--internal-key-file"),
            s(self.dir.join("keys/internal.key").display()),
        ]
    }

    fn service(&self, name: &str, listen: SocketAddr, url: &str, extra: &[String]) -> Proc {
        let mut args = vec![s("--listen"), s(listen), s("--database-url"), s(url)];
        args.extend(self.key_args());
        args.extend_from_slice(extra);
        Proc::start(name, name, &args, &self.dir)
    }

    /// Starts one more message-svc replica on the next loopback address, waits until it
    /// serves and lists it under the name. A replica that finds its address taken (a port
    /// [`free_port`] released is bound again first) starts again on the next one.
    ///
    /// # Panics
    /// When it does not start.
    pub async fn add_replica(&mut self) -> usize {
        let index = self.replicas.len();
        let name = format!("message-svc-{}", index + 1);
        let mut last = self.replicas.last().map_or(1, |r| r.ip[3]);
        for _ in 0..REPLICA_START_ATTEMPTS {
            last = last.saturating_add(1);
            let ip = [127, 0, 0, last];
            let listen = SocketAddr::from((ip, self.message_port));
            let metrics = local(free_port([127, 0, 0, 1]));
            let mut args = vec![
                s("--listen"),
                s(listen),
                s("--database-url"),
                s(&self.database_url),
                s("--metrics-listen"),
                s(metrics),
            ];
            args.extend(self.key_args());
            let mut proc = Proc::start(&name, "message-svc", &args, &self.dir);
            match proc.wait_serving(&s(listen), START_WAIT).await {
                Ok(()) => {
                    self.replicas.push(Replica { proc, ip, metrics });
                    self.list_replicas();
                    return index;
                }
                Err(exited) if exited.address_taken() => continue,
                Err(exited) => panic!("{name} exited before serving:\n{}", exited.log),
            }
        }
        panic!("{name}: every address it tried was taken");
    }

    /// Kills replica `index` (SIGKILL) and takes it off the name, as a container's DNS entry
    /// goes with it.
    pub fn kill_replica(&mut self, index: usize) {
        if let Some(replica) = self.replicas.get_mut(index) {
            replica.proc.kill();
        }
        self.list_replicas();
    }

    /// Writes the hosts file: every running replica under `message-svc`.
    fn list_replicas(&mut self) {
        let text: String = self
            .replicas
            .iter_mut()
            .filter_map(|r| {
                let [a, b, c, d] = r.ip;
                r.proc
                    .running()
                    .then(|| format!("{a}.{b}.{c}.{d} message-svc\n"))
            })
            .collect();
        // Written whole and renamed, so a gateway never reads half a file.
        let fresh = self.hosts_file().with_extension("new");
        std::fs::write(&fresh, text).unwrap_or_else(|e| panic!("hosts file: {e}"));
        std::fs::rename(&fresh, self.hosts_file()).unwrap_or_else(|e| panic!("hosts file: {e}"));
    }

    fn hosts_file(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    /// Starts a gateway named `name` on `addrs` and waits until it is registered.
    pub async fn start_gateway(&self, name: &str, addrs: GatewayAddrs) -> Proc {
        let mut args = vec![
            s("--listen"),
            s(addrs.clients),
            s("--push-listen"),
            s(addrs.push),
            s("--metrics-listen"),
            s(addrs.metrics),
            s("--account-url"),
            format!("http://{}", self.account),
            s("--social-url"),
            format!("http://{}", self.social),
            s("--message-url"),
            format!("http://message-svc:{}", self.message_port),
            s("--hosts-file"),
            s(self.hosts_file().display()),
            s("--resolve-every-ms"),
            s(200),
            s("--server-key"),
            s(self.dir.join("keys/server.key").display()),
            s("--messages-per-minute"),
            s(u32::MAX),
            s("--auth-per-minute"),
            s(60_000),
        ];
        args.extend(self.key_args());
        let mut proc = Proc::start(name, "gateway", &args, &self.dir);
        serving(&mut proc, addrs.push).await;
        proc
    }
}

/// `url` (a PostgreSQL URL) with its host and port replaced by `addr`, to go through a proxy.
///
/// # Panics
/// When `url` has no `user@host:port/database` shape.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme_user, rest) = url
        .split_once('@')
        .unwrap_or_else(|| panic!("no @ in {url}"));
    let (_, path) = rest
        .split_once('/')
        .unwrap_or_else(|| panic!("no / in {url}"));
    format!("{scheme_user}@{addr}/{path}")
}

/// The `host:port` of a PostgreSQL URL, as an address.
///
/// # Panics
/// When it is not an IP address and port.
pub fn database_addr(url: &str) -> SocketAddr {
    let rest = url.split_once('@').map_or(url, |(_, rest)| rest);
    let host_port = rest
        .split_once('/')
        .map_or(rest, |(host_port, _)| host_port);
    host_port
        .parse()
        .unwrap_or_else(|e| panic!("{host_port} in {url}: {e}"))
}

/// Checks that `conversation`'s messages in the database `url` names are numbered 1, 2, …
/// without a gap and that no send is stored twice (a retried send keeps its client message
/// id); returns how many there are.
///
/// # Panics
/// When they are not, or the database cannot be read.
pub async fn stored_once(url: &str, conversation: protocol::ConversationId) -> usize {
    use sea_orm::{ConnectionTrait, Statement};

    let db = service_kit::db::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let id = i64::try_from(conversation.0).unwrap_or(i64::MAX);
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT seq, client_msg_id FROM chat_history WHERE conversation_id = $1 ORDER BY seq",
            [id.into()],
        ))
        .await
        .unwrap_or_else(|e| panic!("read chat_history: {e}"));
    let seqs: Vec<i64> = rows
        .iter()
        .filter_map(|r| r.try_get::<i64>("", "seq").ok())
        .collect();
    let expected: Vec<i64> = (1..=i64::try_from(rows.len()).unwrap_or(0)).collect();
    assert_eq!(seqs, expected, "conversation {conversation:?} has gaps");
    let ids: std::collections::HashSet<Vec<u8>> = rows
        .iter()
        .filter_map(|r| r.try_get::<Vec<u8>>("", "client_msg_id").ok())
        .collect();
    assert_eq!(ids.len(), rows.len(), "a retried send was stored twice");
    rows.len()
}
