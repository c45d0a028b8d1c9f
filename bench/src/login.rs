//! `uchat-bench login`: logins per second through the gateway. Each of `--clients` workers has
//! its own account and source address; it connects, runs the handshake, asks for its
//! password's parameters (`Prelogin`) and logs in, closes, and starts again.
//!
//! The server's argon2id hash of every login's key is included (at whatever cost the server
//! was started with: run it at its defaults for the figure users get). The client's own
//! stretch of the password is not: these workers speak the wire protocol with a ready-made
//! key (see `raw`), so the figure is the server's, not the load tool's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use protocol::message::{Login, Request, Response};

use crate::raw;

/// The scenario's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Workers logging in at once, each as its own user.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds of logging in.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Workers.
    pub clients: usize,
    /// Logins completed.
    pub logins: u64,
    /// Attempts that failed (refused, timed out, broken).
    pub failed: u64,
    /// Completed logins per second (handshakes included).
    pub logins_per_sec: f64,
    /// `Login` request to answer, milliseconds: p50.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// Runs the scenario against `server`.
pub async fn run(server: SocketAddr, options: &Options) -> anyhow::Result<Report> {
    let workers_count = options.clients.max(1);
    let run = crate::users::run_name();
    // Accounts first (registration hashes too, and is not what is measured).
    let mut names = Vec::with_capacity(workers_count);
    for worker in 0..workers_count {
        let name = crate::users::name(&run, 'k', worker);
        drop(raw::user(server, raw::source(worker), &name).await?);
        names.push(name);
    }
    let names = std::sync::Arc::new(names);
    let run = crate::repeat::repeat(
        workers_count,
        Duration::from_secs(options.duration),
        move |worker| {
            let names = names.clone();
            async move {
                let name = names.get(worker).context("a worker without a user")?;
                login(server, worker, name).await
            }
        },
    )
    .await?;
    Ok(Report {
        clients: workers_count,
        logins: run.done,
        failed: run.failed,
        logins_per_sec: run.per_sec,
        p50_ms: run.p50_ms,
        p99_ms: run.p99_ms,
        max_ms: run.max_ms,
    })
}

/// One login on a new connection; returns how long the `Login` request took.
async fn login(server: SocketAddr, worker: usize, name: &str) -> anyhow::Result<Duration> {
    let mut conn = raw::connect(server, raw::source(worker)).await?;
    let prelogin = Request::Prelogin {
        username: name.into(),
    };
    raw::ask(&mut conn, 1, prelogin).await?;
    let began = Instant::now();
    let login = Login {
        username: name.into(),
        auth_key: raw::AUTH_KEY,
    };
    match raw::ask(&mut conn, 2, Request::Login(login)).await? {
        Response::LoggedIn(_) => Ok(began.elapsed()),
        other => bail!("unexpected answer to Login: {other:?}"),
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} workers: {} logins = {:.1}/s, {} failed",
            self.clients, self.logins, self.logins_per_sec, self.failed
        )?;
        writeln!(
            f,
            "Login request to answer, ms: p50 {:.2}  p99 {:.2}  max {:.2}",
            self.p50_ms, self.p99_ms, self.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logins_are_counted_and_none_fail() {
        let cluster = e2e::TestCluster::start_with(|o| o.gateway.auth_per_minute = 1_000_000).await;
        let server: SocketAddr = cluster.addr().parse().unwrap();
        let options = Options {
            clients: 2,
            duration: 1,
        };
        let report = run(server, &options).await.unwrap();
        assert!(report.logins > 0, "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
        assert!(report.p50_ms > 0.0 && report.p50_ms <= report.max_ms);
    }
}
