//! `uchat-bench fanout`: one sender into a group of `--members` members (the sender among
//! them), on the real client path: the body sealed once and its key once per member, one
//! stored message, one copy told to every other member. Deliveries per second count copies
//! told; latency is send to each copy's arrival. Flat out with `--window` sends in flight,
//! or paced at `--rate` messages per second (open loop, as in `chat`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::offer::{self, Counts, Plan};
use crate::pace::Pacer;
use crate::tally::{Checks, Latency, Tally};
use crate::users;

/// The scenario's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Members of the group, the sender included.
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Messages per second the sender offers; 0 sends flat out with `--window` in flight.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Sends in flight when flat out.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Members of the group.
    pub members: usize,
    /// Messages the server answered as stored.
    pub sent: u64,
    /// Stored messages per second.
    pub messages_per_sec: f64,
    /// Copies told to members.
    pub deliveries: u64,
    /// Copies told per second.
    pub deliveries_per_sec: f64,
    /// Send to each copy's arrival.
    #[serde(flatten)]
    pub latency: Latency,
    /// Copies lost, duplicated, out of order; sends failed.
    #[serde(flatten)]
    pub checks: Checks,
}

/// Runs the scenario against `server`.
pub async fn run(server: SocketAddr, options: &Options, quiet: bool) -> anyhow::Result<Report> {
    anyhow::ensure!(
        (2..=users::MAX_PER_ROLE).contains(&options.members),
        "--members must be from 2 to {}",
        users::MAX_PER_ROLE
    );
    let dir = tempfile::tempdir().context("a temporary folder for the clients")?;
    let run = users::run_name();
    let setup = users::progress(options.members, "members", quiet);
    let sender = users::user(server, dir.path(), users::name(&run, 'f', 0)).await?;
    let room = sender
        .client
        .create_room(&format!("fan-out {run}"))
        .await
        .context("create the group")?;
    setup.inc(1);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(users::SETUP_CONCURRENCY));
    let mut joining = tokio::task::JoinSet::new();
    for n in 1..options.members {
        let (semaphore, dir, name) = (
            semaphore.clone(),
            dir.path().to_path_buf(),
            users::name(&run, 'g', n),
        );
        let setup = setup.clone();
        joining.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            let member = users::user(server, &dir, name).await?;
            member.client.join_room(room.id).await.context("join")?;
            setup.inc(1);
            anyhow::Ok(member)
        });
    }
    let start_listening = Instant::now();
    let mut members = Vec::with_capacity(options.members);
    while let Some(joined) = joining.join_next().await {
        members.push(joined??);
    }
    setup.finish_and_clear();
    // The sender learns the members as a sender would: asked once, then kept current by the
    // membership events.
    sender.client.room_members(room.id).await?;

    let start = Instant::now().max(start_listening) + Duration::from_millis(200);
    let sending = Duration::from_secs(options.duration);
    let stop = start + sending;
    let mut tally = Tally::new(start)?;
    for member in members {
        tally.listen(member);
    }
    let counts = Counts::default();
    let plan = Plan {
        conversation: room.conversation,
        sender: 0,
        senders: 1,
        rate: options.rate,
        window: options.window,
        start,
        stop,
    };
    let ticking = offer::tick_until(
        users::progress(options.duration as usize, "sending", quiet),
        stop,
    );
    offer::send(
        sender.client.clone(),
        plan,
        counts.clone(),
        Pacer::for_rate(options.rate)?,
    )
    .await;
    let _ = ticking.await;
    let sent = counts.sent();
    let expected = sent * (options.members as u64 - 1);
    let (seen, _) = tally.finish(expected).await?;
    drop(sender);
    Ok(Report {
        members: options.members,
        sent,
        messages_per_sec: sent as f64 / sending.as_secs_f64(),
        deliveries: seen.delivered,
        deliveries_per_sec: seen.per_sec(sending),
        latency: seen.latency,
        checks: seen.checks(expected, counts.failed()),
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "one sender, {} members", self.members)?;
        writeln!(
            f,
            "sent {} = {:.0}/s; copies told {} = {:.0}/s",
            self.sent, self.messages_per_sec, self.deliveries, self.deliveries_per_sec
        )?;
        writeln!(f, "{}", self.latency)?;
        writeln!(f, "{}", self.checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_member_is_told_every_message_once_in_order() {
        let cluster =
            e2e::TestCluster::start_with(|o| o.gateway.messages_per_minute = u32::MAX).await;
        let server: SocketAddr = cluster.addr().parse().unwrap();
        let options = Options {
            members: 4,
            rate: 0.0,
            window: 2,
            duration: 1,
        };
        let report = run(server, &options, true).await.unwrap();
        assert!(report.sent > 0, "{report:?}");
        assert_eq!(report.deliveries, report.sent * 3, "{report:?}");
        assert_eq!(report.checks, Checks::default(), "{report:?}");
    }
}
