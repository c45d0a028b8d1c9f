//! `uchat-bench handshake`: handshakes per second through the gateway. Each of `--clients`
//! workers connects (from its own loopback source address), runs the handshake (the server's
//! Diffie-Hellman agreement and signature check included), closes, and starts again, for
//! `--duration` seconds. No login: `chat` measures messaging, account-svc's benchmark logins.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::raw;

/// The scenario's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Workers handshaking at once.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds of handshaking.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Workers.
    pub clients: usize,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Handshakes that failed (refused, timed out, broken).
    pub failed: u64,
    /// Completed handshakes per second.
    pub handshakes_per_sec: f64,
    /// Connect-to-established latency percentiles and maximum, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// Runs the scenario against `server`.
pub async fn run(server: SocketAddr, options: &Options) -> anyhow::Result<Report> {
    let run = crate::repeat::repeat(
        options.clients,
        Duration::from_secs(options.duration),
        move |worker| async move {
            let began = Instant::now();
            drop(raw::connect(server, raw::source(worker)).await?);
            Ok(began.elapsed())
        },
    )
    .await?;
    Ok(Report {
        clients: options.clients,
        handshakes: run.done,
        failed: run.failed,
        handshakes_per_sec: run.per_sec,
        p50_ms: run.p50_ms,
        p99_ms: run.p99_ms,
        max_ms: run.max_ms,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} workers: {} handshakes = {:.0}/s, {} failed",
            self.clients, self.handshakes, self.handshakes_per_sec, self.failed
        )?;
        writeln!(
            f,
            "connect to established, ms: p50 {:.2}  p99 {:.2}  max {:.2}",
            self.p50_ms, self.p99_ms, self.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn handshakes_are_counted_and_none_fail() {
        let cluster = e2e::TestCluster::start().await;
        let server: SocketAddr = cluster.addr().parse().unwrap();
        let options = Options {
            clients: 4,
            duration: 1,
        };
        let report = run(server, &options).await.unwrap();
        assert!(report.handshakes > 0, "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
        assert!(
            report.p50_ms > 0.0 && report.p50_ms <= report.max_ms,
            "{report:?}"
        );
    }
}
