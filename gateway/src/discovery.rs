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
    fn changes_add_the_new_remove_the_gone_and_ignore_an_empty_answer() {
        let (added, removed) = changes(&set(&[1, 2]), &set(&[2, 3]));
        assert_eq!(added, vec![SocketAddr::from(([127, 0, 0, 1], 3))]);
        assert_eq!(removed, vec![SocketAddr::from(([127, 0, 0, 1], 1))]);
        assert_eq!(changes(&set(&[1, 2]), &set(&[])), (vec![], vec![]));
        assert_eq!(changes(&set(&[1]), &set(&[1])), (vec![], vec![]));
    }
}
