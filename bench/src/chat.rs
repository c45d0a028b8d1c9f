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

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use client_core::{Client, ClientConfig, ClientEvent, LocalStore, RegisterForm, plain, text_of};
use hdrhistogram::Histogram;
use protocol::message::{FriendDecision, Sex};
use protocol::{ConversationId, UserId};
use tokio::sync::mpsc::UnboundedReceiver;

/// The password every benchmark user gets.
const PASSWORD: &str = "benchmark password";
/// Registrations and logins made at once while setting up.
const SETUP_CONCURRENCY: usize = 16;
/// After the last send, recipients keep listening until every message sent was told, or
/// until no message came for this long (what is still missing then counts as lost)...
const DRAIN_QUIET: Duration = Duration::from_secs(5);
/// ...and never for longer than this.
const DRAIN_MAX: Duration = Duration::from_secs(120);

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
    /// Latency percentiles and maximum, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Sent but never told.
    pub lost: u64,
    /// Told more than once.
    pub duplicated: u64,
    /// Told after a later message of the same conversation.
    pub out_of_order: u64,
    /// Sends that failed (an error from the server or the connection).
    pub failed: u64,
}

/// One user of the run.
struct User {
    client: Client,
    events: UnboundedReceiver<ClientEvent>,
    id: UserId,
}

/// Registers and logs in `name`, its history in memory.
async fn user(server: SocketAddr, dir: &std::path::Path, name: String) -> anyhow::Result<User> {
    let mut config = ClientConfig::new(server.to_string(), dir.join(&name));
    config.local_store = LocalStore::Memory;
    // The server tells new accounts how hard to stretch their passwords; the benchmark
    // measures messaging, so it accepts whatever the server was started with (see --help).
    config.min_kdf = protocol::password::KdfCost {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    let (client, events) = Client::connect(config)
        .await
        .with_context(|| format!("connect {name}"))?;
    client
        .register(RegisterForm {
            username: name.clone(),
            password: PASSWORD.into(),
            email: format!("{name}@bench.invalid"),
            sex: Sex::Undisclosed,
            age: 30,
        })
        .await
        .with_context(|| format!("register {name}"))?;
    let bundle = client
        .login(&name, PASSWORD)
        .await
        .with_context(|| format!("log in {name}"))?;
    Ok(User {
        client,
        events,
        id: bundle.me.id,
    })
}

/// Makes `pairs` pairs of friends; returns them with their conversations.
async fn pairs(
    server: SocketAddr,
    dir: &std::path::Path,
    pairs: usize,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<(User, User, ConversationId)>> {
    anyhow::ensure!(
        pairs <= MAX_PAIRS,
        "at most {MAX_PAIRS} pairs (usernames have 8 characters)"
    );
    // Usernames have at most 8 characters: 3 letters for the run, `s` or `t`, 4 digits for
    // the pair. Letters that look like digits or like other letters (`o`, `l`, `rn` for
    // `m`…) are left out: the server refuses a name confusable with one taken.
    let run: String = (0..3)
        .map(|_| {
            let letters = RUN_LETTERS.as_bytes();
            let pick = rand_u32() as usize % letters.len();
            char::from(letters.get(pick).copied().unwrap_or(b'a'))
        })
        .collect();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..pairs {
        let (semaphore, dir, run) = (semaphore.clone(), dir.to_path_buf(), run.clone());
        let progress = progress.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            let a = user(server, &dir, format!("{run}s{p:04}")).await?;
            let b = user(server, &dir, format!("{run}t{p:04}")).await?;
            a.client.add_friend(b.id).await.context("add friend")?;
            let friend = b
                .client
                .resolve_friend_request(a.id, FriendDecision::Accept)
                .await
                .context("accept")?
                .context("accepting made no friend")?;
            a.client.refresh_contacts().await.context("contacts")?;
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

/// Pairs one run can make (four digits in a username).
pub const MAX_PAIRS: usize = 10_000;

/// Letters a run's name is made of: none confusable with a digit or another letter.
const RUN_LETTERS: &str = "abcdefghjkpqsuvwxyz";

fn rand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// What the recipients saw.
#[derive(Default)]
struct Seen {
    latencies: Option<Histogram<u64>>,
    delivered: u64,
    duplicated: u64,
    out_of_order: u64,
    /// When the last message was told.
    last: Option<Instant>,
    /// (recipient, conversation, seq) told.
    told: HashSet<(u64, u64, u64)>,
    /// The highest seq told, by (recipient, conversation).
    highest: HashMap<(u64, u64), u64>,
}

/// Runs the scenario against `server`.
pub async fn run(server: SocketAddr, options: &Options, quiet: bool) -> anyhow::Result<Report> {
    let pair_count = options.clients / 2;
    anyhow::ensure!(pair_count > 0, "--clients must be at least 2");
    let dir = tempfile::tempdir().context("a temporary folder for the clients")?;
    let bar = |len: u64, what: &str| {
        let bar = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(len)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        bar
    };
    let setup = bar(u64::try_from(pair_count * 2).unwrap_or(u64::MAX), "users");
    let users = pairs(server, dir.path(), pair_count, &setup).await?;
    setup.finish_and_clear();

    let start = Instant::now() + Duration::from_millis(200);
    let sending = Duration::from_secs(options.duration);
    let stop = start + sending;
    let seen = Arc::new(Mutex::new(Seen {
        latencies: Some(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        ..Seen::default()
    }));
    let mut receivers = Vec::new();
    let (finish, finished) = tokio::sync::watch::channel(false);
    let mut senders = tokio::task::JoinSet::new();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for (index, (a, b, conversation)) in users.into_iter().enumerate() {
        // Both of a pair send and receive: a's sends are told to b and the other way round.
        for from in [&a, &b] {
            let client = from.client.clone();
            let sender = index * 2 + usize::from(from.id != a.id);
            let plan = Plan {
                conversation,
                sender,
                senders: pair_count * 2,
                rate: options.rate,
                window: options.window.max(1),
                start,
                stop,
            };
            senders.spawn(send(client, plan, sent.clone(), failed.clone()));
        }
        for user in [a, b] {
            receivers.push(tokio::spawn(receive(
                user,
                start,
                finished.clone(),
                seen.clone(),
            )));
        }
    }
    let progress = bar(options.duration, "sending");
    let ticking = {
        let progress = progress.clone();
        tokio::spawn(async move {
            while Instant::now() < stop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress.inc(1);
            }
        })
    };
    while let Some(done) = senders.join_next().await {
        done?;
    }
    let _ = ticking.await;
    progress.finish_and_clear();
    drain(&seen, sent.load(std::sync::atomic::Ordering::Relaxed)).await;
    finish.send_replace(true);
    for receiver in receivers {
        receiver.await?;
    }

    let seen = Arc::try_unwrap(seen)
        .map_err(|_| anyhow::anyhow!("a receiver is still running"))?
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let latencies = seen.latencies.context("no histogram")?;
    let ms = |micros: u64| micros as f64 / 1000.0;
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Report {
        clients: pair_count * 2,
        offered_per_sec: options.rate,
        sent,
        delivered: seen.delivered,
        delivered_per_sec: seen.delivered as f64
            / seen
                .last
                .map_or(sending, |last| last.saturating_duration_since(start))
                .max(sending)
                .as_secs_f64(),
        p50_ms: ms(latencies.value_at_quantile(0.50)),
        p90_ms: ms(latencies.value_at_quantile(0.90)),
        p99_ms: ms(latencies.value_at_quantile(0.99)),
        max_ms: ms(latencies.max()),
        lost: sent.saturating_sub(seen.delivered),
        duplicated: seen.duplicated,
        out_of_order: seen.out_of_order,
        failed: failed.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// One sender's schedule.
#[derive(Clone, Copy)]
struct Plan {
    conversation: ConversationId,
    sender: usize,
    senders: usize,
    rate: f64,
    window: usize,
    start: Instant,
    stop: Instant,
}

/// The text of a message: who sent it and when it was due, in microseconds after `start`.
fn text(sender: usize, n: u64, due_micros: u128) -> String {
    format!("{sender}:{n}:{due_micros}")
}

async fn send(
    client: Client,
    plan: Plan,
    sent: Arc<std::sync::atomic::AtomicU64>,
    failed: Arc<std::sync::atomic::AtomicU64>,
) {
    let count = |ok: bool| {
        let counter = if ok { &sent } else { &failed };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    if plan.rate > 0.0 {
        // Open loop: every send at its time, without waiting for the ones before.
        let period = Duration::from_secs_f64(plan.senders as f64 / plan.rate);
        let offset = period.mul_f64(plan.sender as f64 / plan.senders as f64);
        let mut in_flight = tokio::task::JoinSet::new();
        let mut n = 0u64;
        loop {
            let due = plan.start + offset + period.mul_f64(n as f64);
            if due >= plan.stop {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            let body = text(plan.sender, n, due.duration_since(plan.start).as_micros());
            let client = client.clone();
            in_flight.spawn(async move {
                client
                    .send_text(plan.conversation, plain(&body))
                    .await
                    .is_ok()
            });
            while let Some(done) = in_flight.try_join_next() {
                count(done.unwrap_or(false));
            }
            n += 1;
        }
        while let Some(done) = in_flight.join_next().await {
            count(done.unwrap_or(false));
        }
    } else {
        // Flat out: `window` lanes, each sending as soon as its last send was answered.
        let mut lanes = tokio::task::JoinSet::new();
        for lane in 0..plan.window {
            let client = client.clone();
            lanes.spawn(async move {
                let (mut ok, mut bad) = (0u64, 0u64);
                let mut n = lane as u64;
                while Instant::now() < plan.stop {
                    let due = Instant::now().duration_since(plan.start).as_micros();
                    let body = text(plan.sender, n, due);
                    match client.send_text(plan.conversation, plain(&body)).await {
                        Ok(_) => ok += 1,
                        Err(_) => bad += 1,
                    }
                    n += plan.window as u64;
                }
                (ok, bad)
            });
        }
        while let Some(done) = lanes.join_next().await {
            let (ok, bad) = done.unwrap_or((0, 0));
            sent.fetch_add(ok, std::sync::atomic::Ordering::Relaxed);
            failed.fetch_add(bad, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Waits until `sent` messages were told, or none came for [`DRAIN_QUIET`], or
/// [`DRAIN_MAX`] passed.
async fn drain(seen: &Mutex<Seen>, sent: u64) {
    let began = Instant::now();
    let mut last_count = 0;
    let mut last_change = began;
    while began.elapsed() < DRAIN_MAX {
        let delivered = seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .delivered;
        if delivered >= sent {
            return;
        }
        if delivered != last_count {
            (last_count, last_change) = (delivered, Instant::now());
        } else if last_change.elapsed() > DRAIN_QUIET {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn receive(
    mut user: User,
    start: Instant,
    mut finished: tokio::sync::watch::Receiver<bool>,
    seen: Arc<Mutex<Seen>>,
) {
    loop {
        let event = tokio::select! {
            event = user.events.recv() => event,
            _ = finished.wait_for(|f| *f) => None,
        };
        let Some(event) = event else { break };
        let ClientEvent::Message(message) = event else {
            continue;
        };
        let now = Instant::now();
        let Some(due) = text_of(&message.body)
            .and_then(|t| t.rsplit(':').next())
            .and_then(|d| d.parse::<u64>().ok())
        else {
            continue;
        };
        let latency = now
            .duration_since(start + Duration::from_micros(due))
            .as_micros();
        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (user.id.0, message.conversation.0, message.seq.0);
        if !seen.told.insert(key) {
            seen.duplicated += 1;
            continue;
        }
        seen.delivered += 1;
        seen.last = Some(now);
        let highest = seen
            .highest
            .entry((user.id.0, message.conversation.0))
            .or_default();
        if message.seq.0 < *highest {
            seen.out_of_order += 1;
        } else {
            *highest = message.seq.0;
        }
        if let Some(histogram) = seen.latencies.as_mut() {
            let _ = histogram.record(u64::try_from(latency).unwrap_or(u64::MAX).max(1));
        }
    }
    drop(user.client);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cluster() -> e2e::TestCluster {
        e2e::TestCluster::start_with(|o| o.gateway.messages_per_minute = u32::MAX).await
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
            };
            let report = run(server, &options, true).await.unwrap();
            assert!(report.sent > 0, "{report:?}");
            assert_eq!(report.delivered, report.sent, "{report:?}");
            assert_eq!(
                (
                    report.lost,
                    report.duplicated,
                    report.out_of_order,
                    report.failed
                ),
                (0, 0, 0, 0),
                "{report:?}"
            );
            assert!(
                report.p50_ms > 0.0 && report.p50_ms <= report.max_ms,
                "{report:?}"
            );
        }
    }
}
