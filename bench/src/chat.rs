//! `uchat-bench chat`: clients in pairs sending to each other through a running server, on the
//! real client path (client-core: handshakes, end-to-end sealing and opening, frames) with the
//! clients' local stores in memory, so what is measured is the server and not thousands of
//! client databases.
//!
//! Two ways to offer load:
//!
//! - **Paced** (`--rate R`, open loop): each sender sends at R / pairs messages per second,
//!   the senders staggered over the period, each send made at its scheduled time whether or
//!   not the last one was answered; latency counts from the scheduled time, so a server that
//!   falls behind cannot hide the queueing.
//! - **Flat out** (`--rate 0`): each sender keeps `--window` sends in flight; latency counts
//!   from the call.
//!
//! Latency is send to the recipient's event. Every message is checked: lost (answered as
//! stored but never told to its recipient), told twice, or told after a later one of its
//! conversation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use protocol::ConversationId;
use protocol::message::FriendDecision;

use crate::disk::{Probe, Stalls};
use crate::offer::{self, Counts, Plan};
use crate::pace::Pacer;
use crate::tally::{Checks, Latency, Second, Tally};
use crate::users::{self, User};

/// The scenario's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Clients, in pairs (an odd one out is left out).
    #[arg(long, default_value_t = 40)]
    pub clients: usize,
    /// Messages per second offered over all senders; 0 sends flat out with `--window` in
    /// flight per sender.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Sends in flight per sender when flat out.
    #[arg(long, default_value_t = 4)]
    pub window: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Also give each second's latencies (by when its messages were due), to show where in the
    /// run a high percentile was made.
    #[arg(long)]
    pub timeline: bool,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Clients that took part.
    pub clients: usize,
    /// Messages per second offered (0: flat out).
    pub offered_per_sec: f64,
    /// Sends the server answered as stored.
    pub sent: u64,
    /// Messages told to their recipients.
    pub delivered: u64,
    /// Delivered messages per second of sending.
    pub delivered_per_sec: f64,
    /// Send to receipt.
    #[serde(flatten)]
    pub latency: Latency,
    /// Lost, duplicated, out of order, failed.
    #[serde(flatten)]
    pub checks: Checks,
    /// What the disk did meanwhile (its stalls move a p99 by themselves).
    #[serde(flatten)]
    pub disk: Stalls,
    /// Each second's latencies, with `--timeline`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Second>,
}

/// Makes `pairs` pairs of friends; returns them with their conversations.
async fn pairs(
    server: SocketAddr,
    dir: &std::path::Path,
    pairs: usize,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<(User, User, ConversationId)>> {
    anyhow::ensure!(
        pairs <= users::MAX_PER_ROLE,
        "at most {} pairs (usernames have 8 characters)",
        users::MAX_PER_ROLE
    );
    let run = users::run_name();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(users::SETUP_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..pairs {
        let (semaphore, dir, run) = (semaphore.clone(), dir.to_path_buf(), run.clone());
        let progress = progress.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            let mut a = users::user(server, &dir, users::name(&run, 's', p)).await?;
            let mut b = users::user(server, &dir, users::name(&run, 't', p)).await?;
            a.client.add_friend(b.id).await.context("add friend")?;
            let friend = b
                .client
                .resolve_friend_request(a.id, FriendDecision::Accept)
                .await
                .context("accept")?
                .context("accepting made no friend")?;
            a.client.refresh_contacts().await.context("contacts")?;
            users::greet(&a, &mut b, friend.conversation).await?;
            users::greet(&b, &mut a, friend.conversation).await?;
            progress.inc(2);
            anyhow::Ok((p, a, b, friend.conversation))
        });
    }
    let mut made = Vec::new();
    while let Some(done) = tasks.join_next().await {
        made.push(done??);
    }
    made.sort_by_key(|(p, ..)| *p);
    Ok(made.into_iter().map(|(_, a, b, c)| (a, b, c)).collect())
}

/// Runs the scenario against `server`.
pub async fn run(server: SocketAddr, options: &Options, quiet: bool) -> anyhow::Result<Report> {
    let pair_count = options.clients / 2;
    anyhow::ensure!(pair_count > 0, "--clients must be at least 2");
    let dir = tempfile::tempdir().context("a temporary folder for the clients")?;
    let pairs = make_pairs(server, dir.path(), pair_count, quiet).await?;
    let (report, _) = exchange(pairs, options, quiet).await?;
    Ok(report)
}

/// Pairs of friends and their conversation.
pub type Pairs = Vec<(User, User, ConversationId)>;

/// Makes `count` pairs of friends for a run.
pub async fn make_pairs(
    server: SocketAddr,
    dir: &std::path::Path,
    count: usize,
    quiet: bool,
) -> anyhow::Result<Pairs> {
    let setup = users::progress(count * 2, "users", quiet);
    let made = pairs(server, dir, count, &setup).await?;
    setup.finish_and_clear();
    Ok(made)
}

/// Runs one load on `pairs` (`options.clients` is not used: every pair takes part) and
/// gives them back for the next.
pub async fn exchange(
    pairs: Pairs,
    options: &Options,
    quiet: bool,
) -> anyhow::Result<(Report, Pairs)> {
    let pair_count = pairs.len();
    let start = Instant::now() + Duration::from_millis(200);
    let sending = Duration::from_secs(options.duration);
    let stop = start + sending;
    let mut tally = Tally::new(start)?;
    let disk = Probe::start()?;
    let counts = Counts::default();
    let pacer = Pacer::for_rate(options.rate)?;
    let mut senders = tokio::task::JoinSet::new();
    let mut conversations = Vec::with_capacity(pair_count);
    for (index, (a, b, conversation)) in pairs.into_iter().enumerate() {
        // Both of a pair send and receive: a's sends are told to b and the other way round.
        for (side, from) in [&a, &b].into_iter().enumerate() {
            let plan = Plan {
                conversation,
                sender: index * 2 + side,
                senders: pair_count * 2,
                rate: options.rate,
                window: options.window,
                start,
                stop,
            };
            senders.spawn(offer::send(
                from.client.clone(),
                plan,
                counts.clone(),
                pacer.clone(),
            ));
        }
        tally.listen(a);
        tally.listen(b);
        conversations.push(conversation);
    }
    let ticking = offer::tick_until(
        users::progress(options.duration as usize, "sending", quiet),
        stop,
    );
    while let Some(done) = senders.join_next().await {
        done?;
    }
    let _ = ticking.await;
    let sent = counts.sent();
    let (seen, users) = tally.finish(sent).await?;
    let disk = disk.finish()?;
    let report = Report {
        clients: pair_count * 2,
        offered_per_sec: options.rate,
        sent,
        delivered: seen.delivered,
        delivered_per_sec: seen.per_sec(sending),
        latency: seen.latency,
        checks: seen.checks(sent, counts.failed()),
        disk,
        timeline: if options.timeline {
            seen.timeline
        } else {
            Vec::new()
        },
    };
    let mut users = users.into_iter();
    let mut pairs = Vec::with_capacity(pair_count);
    for conversation in conversations {
        if let (Some(a), Some(b)) = (users.next(), users.next()) {
            pairs.push((a, b, conversation));
        }
    }
    Ok((report, pairs))
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.offered_per_sec > 0.0 {
            writeln!(
                f,
                "{} clients, {:.0}/s offered",
                self.clients, self.offered_per_sec
            )?;
        } else {
            writeln!(f, "{} clients, flat out", self.clients)?;
        }
        writeln!(
            f,
            "sent {}, delivered {} = {:.0} delivered/s",
            self.sent, self.delivered, self.delivered_per_sec
        )?;
        writeln!(f, "{}", self.latency)?;
        writeln!(f, "{}", self.checks)?;
        writeln!(f, "{}", self.disk)?;
        for second in &self.timeline {
            writeln!(f, "{second}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cluster() -> e2e::TestCluster {
        e2e::TestCluster::start_with(|o| o.gateway.messages_per_minute = u32::MAX).await
    }

    #[test]
    fn the_json_report_keeps_its_keys_at_the_top_level() {
        let report = Report {
            clients: 2,
            offered_per_sec: 0.0,
            sent: 1,
            delivered: 1,
            delivered_per_sec: 1.0,
            latency: Latency {
                p50_ms: 1.0,
                p90_ms: 1.0,
                p99_ms: 1.0,
                max_ms: 1.0,
            },
            checks: Checks::default(),
            disk: Stalls::default(),
            timeline: Vec::new(),
        };
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "delivered_per_sec",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "lost",
            "duplicated",
            "out_of_order",
            "failed",
            "disk_stalls",
        ] {
            assert!(json.get(key).is_some(), "no {key} in {json}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_run_counts_every_message_and_loses_none() {
        let cluster = cluster().await;
        let server: SocketAddr = cluster.addr().parse().unwrap();
        for rate in [0.0, 200.0] {
            let options = Options {
                clients: 4,
                rate,
                window: 2,
                duration: 1,
                timeline: false,
            };
            let report = run(server, &options, true).await.unwrap();
            assert!(report.sent > 0, "{report:?}");
            assert_eq!(report.delivered, report.sent, "{report:?}");
            assert_eq!(report.checks, Checks::default(), "{report:?}");
            assert!(
                report.latency.p50_ms > 0.0 && report.latency.p50_ms <= report.latency.max_ms,
                "{report:?}"
            );
        }
    }
}
