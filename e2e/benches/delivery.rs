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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_core::{ClientEvent, plain, text_of};
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

    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for mut receiver in receivers {
        let (started, latencies) = (started.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let end = deadline + Duration::from_secs(5);
            while let Ok(Some(event)) =
                tokio::time::timeout_at(end.into(), receiver.events.recv()).await
            {
                if let ClientEvent::Message(message) = event {
                    let key = text_of(&message.body).unwrap_or_default().to_owned();
                    if let Some(at) = started.lock().unwrap().remove(&key) {
                        latencies.lock().unwrap().push(at.elapsed());
                    }
                }
            }
            drop(receiver);
        }));
    }
    let begin = Instant::now();
    let mut sends = Vec::new();
    for (p, (sender, conversation)) in senders.iter().enumerate() {
        for lane in 0..in_flight {
            let client = sender.client.clone();
            let conversation = *conversation;
            let started = started.clone();
            sends.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let key = format!("{p}/{lane}/{n}");
                    started.lock().unwrap().insert(key.clone(), Instant::now());
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
    let sending = begin.elapsed().as_secs_f64();
    for task in tasks {
        task.await.unwrap();
    }
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "sent {sent}, delivered live {} in {sending:.1} s = {:.0} delivered/s; latency p50 {:?} p99 {:?}",
        latencies.len(),
        latencies.len() as f64 / sending,
        at(0.5),
        at(0.99)
    );
    drop(senders);
}
