//! Delivered messages per second through the split stack on PostgreSQL, and how long sends
//! stall when a message-svc replica is killed: every part a process of the release binaries
//! (`e2e::split`), clients from `client-core` in this process.
//!
//! ```text
//! cargo build --release --bins
//! UCHAT_TEST_DATABASE_URL=postgres://… cargo bench -p e2e --bench split -- [SECONDS [PAIRS [IN_FLIGHT [REPLICAS [kill]]]]]
//! ```
//!
//! PAIRS friends each send to each other with IN_FLIGHT sends outstanding per sender, through
//! two gateways (a pair's two users on different ones). With `kill`, the first replica is
//! killed (SIGKILL) halfway: the figure is how long after the kill the last send that was in
//! flight then was answered (the stall a user sees), and the longest send after it.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_core::plain;
use e2e::TestClient;
use e2e::split::SplitStack;

/// A send: when it was made and when it was answered.
type Span = (Instant, Instant);

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numbers: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let seconds = numbers.first().copied().unwrap_or(10);
    let pairs = numbers.get(1).copied().unwrap_or(20) as usize;
    let in_flight = numbers.get(2).copied().unwrap_or(4) as usize;
    let replicas = numbers.get(3).copied().unwrap_or(1) as usize;
    let kill = args.iter().any(|a| a == "kill");
    let Some(url) = service_kit::testing::postgres_database_url().await else {
        eprintln!("set UCHAT_TEST_DATABASE_URL to a PostgreSQL server");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut stack = SplitStack::start(dir.path(), &url, &url, replicas.max(1), 2).await;
    let (g1, g2) = (stack.gateway_addrs[0], stack.gateway_addrs[1]);

    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for p in 0..pairs {
        let a = TestClient::user(
            g1.clients.to_string(),
            dir.path().join(format!("s{p}")),
            &format!("s{p}"),
        )
        .await;
        let b = TestClient::user(
            g2.clients.to_string(),
            dir.path().join(format!("r{p}")),
            &format!("r{p}"),
        )
        .await;
        let conversation = e2e::befriend(&a, &b).await;
        senders.push((a, conversation));
        receivers.push(b);
    }
    println!(
        "split stack on PostgreSQL: {replicas} message-svc, 2 gateways; {pairs} pairs, \
         {in_flight} in flight per sender, {seconds} s{}",
        if kill {
            ", one replica killed halfway"
        } else {
            ""
        }
    );

    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let run = e2e::measure::Run::start(receivers, seconds);
    let deadline = run.deadline;
    let begin = Instant::now();
    let mut sends = Vec::new();
    for (p, (sender, conversation)) in senders.iter().enumerate() {
        for lane in 0..in_flight {
            let client = sender.client.clone();
            let conversation = *conversation;
            let (started, spans) = (run.started.clone(), spans.clone());
            sends.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let key = format!("{p}/{lane}/{n}");
                    let at = e2e::measure::sending(&started, &key);
                    // A send refused while a replica dies is made again, as a person would.
                    while client.send_text(conversation, plain(&key)).await.is_err() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    spans.lock().unwrap().push((at, Instant::now()));
                }
                n
            }));
        }
    }
    let mut killed_at = None;
    if kill {
        tokio::time::sleep_until((begin + Duration::from_secs(seconds / 2)).into()).await;
        killed_at = Some(Instant::now());
        stack.kill_replica(0);
    }
    let mut sent = 0;
    for send in sends {
        sent += send.await.unwrap();
    }
    println!("{}", run.finish(sent).await);
    if let Some(killed) = killed_at {
        let spans = spans.lock().unwrap();
        let stalled = spans
            .iter()
            .filter(|(made, answered)| *made <= killed && *answered >= killed)
            .map(|(_, answered)| answered.duration_since(killed))
            .max()
            .unwrap_or_default();
        let longest_after = spans
            .iter()
            .filter(|(made, _)| *made >= killed)
            .map(|(made, answered)| answered.duration_since(*made))
            .max()
            .unwrap_or_default();
        println!(
            "replica killed: sends in flight then answered within {stalled:?}; the longest send made after it took {longest_after:?}"
        );
    }
    drop(senders);
}
