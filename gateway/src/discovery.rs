//! Every replica of a service behind one name: the gateway resolves a service's host name
//! again every `--resolve-every-ms` and balances its calls across all the addresses it gets
//! (tonic's balanced channel, power of two choices), so `docker compose up --scale
//! message-svc=3` takes effect without restarting anything, and a replica whose address
//! disappears stops receiving calls at the next resolution. A replica that stops answering
//! but keeps its address stops being chosen sooner: its connection fails and the balancer
//! skips endpoints that are not ready.
//!
//! A resolution that fails or finds nothing keeps the addresses already known: a moment's
//! DNS trouble must not empty the balancer while the replicas are still there.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint, Uri};

/// Endpoints the balancer keeps in its change queue before the resolver waits.
const CHANGE_QUEUE: usize = 64;

/// Where a service's name resolves to.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses `host:port` stands for now.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = std::io::Result<Vec<SocketAddr>>> + Send;
}

/// The system's resolver (DNS, `/etc/hosts`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Dns;

impl Resolve for Dns {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// Largest hosts file read ([`HostsFile`]); a larger one is an error, and the addresses
/// already known are kept.
pub const HOSTS_FILE_MAX_BYTES: u64 = 1024 * 1024;

/// Names listed in a file of the `/etc/hosts` format (`ADDRESS NAME…` per line, `#` starts a
/// comment, a name may have several lines), read again at every resolution; names it does not
/// list go to DNS. For a deployment that lists its replicas itself (`--hosts-file`): edit the
/// file and the gateways follow within a resolution period.
#[derive(Debug, Clone)]
pub struct HostsFile(pub std::path::PathBuf);

impl HostsFile {
    /// The addresses `text` lists for `host`.
    pub fn lookup(text: &str, host: &str) -> Vec<std::net::IpAddr> {
        text.lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let addr = words.next()?.parse().ok()?;
                words
                    .any(|name| name.eq_ignore_ascii_case(host))
                    .then_some(addr)
            })
            .collect()
    }
}

impl Resolve for HostsFile {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let path = self.0.clone();
        let text = tokio::task::spawn_blocking(move || read_bounded(&path))
            .await
            .map_err(std::io::Error::other)??;
        let listed = Self::lookup(&text, host);
        if listed.is_empty() {
            return Dns.resolve(host, port).await;
        }
        Ok(listed
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }
}

/// Reads `path`, refusing a file past [`HOSTS_FILE_MAX_BYTES`].
fn read_bounded(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(HOSTS_FILE_MAX_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > HOSTS_FILE_MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "{} is larger than {HOSTS_FILE_MAX_BYTES} bytes",
            path.display()
        )));
    }
    Ok(text)
}

/// Either resolver, as the gateway's flags choose.
#[derive(Debug, Clone)]
pub enum Resolver {
    /// The system's resolver.
    Dns,
    /// A hosts file first.
    File(HostsFile),
}

impl Resolve for Resolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match self {
            Self::Dns => Dns.resolve(host, port).await,
            Self::File(file) => file.resolve(host, port).await,
        }
    }
}

/// A fixed list that can be changed while in use: stands for DNS in tests, and for a
/// deployment that names its replicas itself.
#[derive(Debug, Clone, Default)]
pub struct Listed(Arc<Mutex<Vec<SocketAddr>>>);

impl Listed {
    /// Replaces the list.
    pub fn set(&self, addrs: Vec<SocketAddr>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = addrs;
    }
}

impl Resolve for Listed {
    async fn resolve(&self, _host: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }
}

/// What changes between two resolutions: the addresses to add and those to remove. An empty
/// resolution changes nothing (see the module's documentation).
pub fn changes(
    known: &BTreeSet<SocketAddr>,
    resolved: &BTreeSet<SocketAddr>,
) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    if resolved.is_empty() {
        return (Vec::new(), Vec::new());
    }
    (
        resolved.difference(known).copied().collect(),
        known.difference(resolved).copied().collect(),
    )
}

/// A channel balanced over every address `url`'s host resolves to by `resolver`, each
/// endpoint shaped by `configure` (timeouts, `TCP_NODELAY`). A task resolves again every
/// `every` until the channel is dropped.
pub fn balanced<R: Resolve>(
    url: &str,
    every: Duration,
    resolver: R,
    configure: impl Fn(Endpoint) -> Endpoint + Send + 'static,
) -> anyhow::Result<Channel> {
    let ServiceAddr { scheme, host, port } = ServiceAddr::parse(url)?;
    let (channel, changes) = Channel::balance_channel(CHANGE_QUEUE);
    tokio::spawn(keep_resolving(
        Target {
            url: url.to_owned(),
            host,
            port,
            scheme,
        },
        every.max(Duration::from_millis(1)),
        resolver,
        configure,
        changes,
    ));
    Ok(channel)
}

/// A service URL's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddr {
    /// `http` or `https`.
    pub scheme: String,
    /// The host, without an IPv6 address's brackets.
    pub host: String,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
}

impl ServiceAddr {
    /// The parts of `url`, e.g. `http://message-svc:7003`.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("bad service address {url}"))?;
        let host = uri
            .host()
            .with_context(|| format!("no host in the service address {url}"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let scheme = uri.scheme_str().unwrap_or("http").to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(Self { scheme, host, port })
    }
}

struct Target {
    url: String,
    host: String,
    port: u16,
    scheme: String,
}

async fn keep_resolving<R: Resolve>(
    target: Target,
    every: Duration,
    resolver: R,
    configure: impl Fn(Endpoint) -> Endpoint,
    balancer: Sender<Change<SocketAddr, Endpoint>>,
) {
    let mut known = BTreeSet::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let resolved = match resolver.resolve(&target.host, target.port).await {
            Ok(addrs) => addrs.into_iter().collect(),
            Err(err) => {
                tracing::warn!(url = target.url, %err, "cannot resolve a service; keeping its known addresses");
                continue;
            }
        };
        let (added, removed) = changes(&known, &resolved);
        for addr in added {
            let Ok(endpoint) = Endpoint::from_shared(format!("{}://{addr}", target.scheme)) else {
                continue;
            };
            tracing::info!(url = target.url, %addr, "service replica added");
            if balancer
                .send(Change::Insert(addr, configure(endpoint)))
                .await
                .is_err()
            {
                return; // The channel is gone.
            }
            known.insert(addr);
        }
        for addr in removed {
            tracing::info!(url = target.url, %addr, "service replica removed");
            if balancer.send(Change::Remove(addr)).await.is_err() {
                return;
            }
            known.remove(&addr);
        }
        metrics::gauge!(crate::telemetry::REPLICAS, "service" => target.url.clone())
            .set(known.len() as f64);
        if balancer.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ports: &[u16]) -> BTreeSet<SocketAddr> {
        ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }

    #[test]
    fn a_hosts_file_lists_every_line_of_a_name_and_skips_comments() {
        let text = "127.0.0.2 message-svc  # replica a\n\
                    # 127.0.0.9 message-svc\n\
                    127.0.0.3 other Message-Svc\n\
                    not-an-address message-svc\n\
                    ::1 message-svc\n";
        let found = HostsFile::lookup(text, "message-svc");
        let expected: Vec<std::net::IpAddr> = vec![
            [127, 0, 0, 2].into(),
            [127, 0, 0, 3].into(),
            std::net::Ipv6Addr::LOCALHOST.into(),
        ];
        assert_eq!(found, expected);
        assert!(HostsFile::lookup(text, "account-svc").is_empty());
    }

    #[test]
    fn changes_add_the_new_remove_the_gone_and_ignore_an_empty_answer() {
        let (added, removed) = changes(&set(&[1, 2]), &set(&[2, 3]));
        assert_eq!(added, vec![SocketAddr::from(([127, 0, 0, 1], 3))]);
        assert_eq!(removed, vec![SocketAddr::from(([127, 0, 0, 1], 1))]);
        assert_eq!(changes(&set(&[1, 2]), &set(&[])), (vec![], vec![]));
        assert_eq!(changes(&set(&[1]), &set(&[1])), (vec![], vec![]));
    }
}
