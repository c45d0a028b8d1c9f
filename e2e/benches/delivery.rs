//! Delivered messages per second and delivery latency through the whole stack:
//! `uchat-server` in-process (SQLite file), real clients from `client-core` over TCP, every
//! message end-to-end sealed by its sender and opened and stored by its recipient.
//!
//! `cargo bench -p e2e --bench delivery [-- SECONDS [PAIRS [IN_FLIGHT]]]`
//!
//! PAIRS friends each send to each other, IN_FLIGHT sends outstanding per sender. Latency is
//! from the sender's call to the recipient's event. Clients and server share the machine.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::time::Instant;

use client_core::plain;
use e2e::TestCluster;

#[tokio::main]
async fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = numbers.first().copied().unwrap_or(10);
    let pairs = numbers.get(1).copied().unwrap_or(20) as usize;
    let in_flight = numbers.get(2).copied().unwrap_or(4) as usize;
    // The per-user message limit (20/s sustained) is for people, not for this load.
    let cluster = TestCluster::start_with(|o| o.gateway.messages_per_minute = u32::MAX).await;

    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for p in 0..pairs {
        let a = cluster.user(&format!("s{p}")).await;
        let b = cluster.user(&format!("r{p}")).await;
        let conversation = e2e::befriend(&a, &b).await;
        senders.push((a, conversation));
        receivers.push(b);
    }
    println!("{pairs} pairs, {in_flight} in flight per sender, {seconds} s");

    let run = e2e::measure::Run::start(receivers, seconds);
    let deadline = run.deadline;
    let mut sends = Vec::new();
    for (p, (sender, conversation)) in senders.iter().enumerate() {
        for lane in 0..in_flight {
            let client = sender.client.clone();
            let conversation = *conversation;
            let started = run.started.clone();
            sends.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let key = format!("{p}/{lane}/{n}");
                    e2e::measure::sending(&started, &key);
                    client.send_text(conversation, plain(&key)).await.unwrap();
                }
                n
            }));
        }
    }
    let mut sent = 0;
    for send in sends {
        sent += send.await.unwrap();
    }
    println!("{}", run.finish(sent).await);
    drop(senders);
}
