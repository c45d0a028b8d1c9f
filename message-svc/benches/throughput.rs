//! Persisted messages per second through message-svc alone: real gRPC on loopback, a SQLite
//! file, group commit with the default batch settings.
//!
//! `cargo bench -p message-svc --bench throughput [-- SECONDS [CLIENTS [CONVERSATIONS [BATCH]]]]`
//!
//! Each client keeps one call in flight at a time: `Send` when BATCH is 1 (the default),
//! else `SendBatch` with BATCH messages, as a gateway coalescing its sessions' sends does.
//! Membership rows are written directly (friend pairs), as social-svc would have.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

/// As in the service's binaries.
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use entity::{CONVERSATION_DIRECT, conversation, friend};
use migrations::{Migrator, MigratorTrait};
use proto::message::message_client::MessageClient;
use proto::message::{SendBatchRequest, SendRequest};
use protocol::e2e::{Envelope, Sealed};
use sea_orm::{ActiveModelTrait, Set};
use serde_bytes::ByteBuf;

#[tokio::main]
async fn main() {
    allocator::return_freed_memory_promptly();
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = numbers.first().copied().unwrap_or(10);
    let clients = numbers.get(1).copied().unwrap_or(256);
    let conversations = numbers.get(2).copied().unwrap_or(64);
    let per_call = numbers.get(3).copied().unwrap_or(1).max(1);

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let db = service_kit::db::connect(&url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    for c in 1..=conversations as i64 {
        conversation::ActiveModel {
            kind: Set(CONVERSATION_DIRECT),
            created_at: Set(0),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        let (a, b) = (2 * c, 2 * c + 1);
        for (from, to) in [(a, b), (b, a)] {
            friend::ActiveModel {
                from_user_id: Set(from),
                to_user_id: Set(to),
                accepted: Set(true),
                conversation_id: Set(Some(c)),
                created_at: Set(0),
            }
            .insert(&db)
            .await
            .unwrap();
        }
    }
    let mut config = message_svc::Config::default();
    if let Some(max) = std::env::var("UCHAT_BATCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.batch_max = max;
    }
    println!(
        "{clients} clients x {per_call} per call, {conversations} conversations, \
         batch max {} wait {} us, {seconds} s",
        config.batch_max, config.batch_wait_us
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(message_svc::serve(
        listener,
        db,
        service_kit::testing::internal_key(),
        config,
        std::future::pending(),
    ));
    // A few HTTP/2 connections, shared by the clients, as a gateway would hold.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(MessageClient::new(
            service_kit::testing::channel(&format!("http://{addr}")).await,
        ));
    }

    // A well-formed one-to-one envelope of 204 bytes (160 of ciphertext): message-svc checks
    // an envelope's outer structure, never its contents.
    let envelope = Envelope::Direct(Sealed {
        iv: [0x5a; 16],
        ciphertext: ByteBuf::from(vec![0x5a; 160]),
        mac: [0x5a; 16],
    })
    .encode()
    .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let mut client = channels[i as usize % channels.len()].clone();
            let sent = sent.clone();
            let conversation = 1 + i % conversations;
            let sender = 2 * conversation;
            let envelope = envelope.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let sends: Vec<SendRequest> = (0..per_call)
                        .map(|_| {
                            n += 1;
                            SendRequest {
                                sender_id: sender,
                                conversation_id: conversation,
                                client_msg_id: [i.to_be_bytes(), n.to_be_bytes()].concat(),
                                envelope: envelope.clone(),
                            }
                        })
                        .collect();
                    let started = Instant::now();
                    if per_call == 1 {
                        let send = sends.into_iter().next().unwrap();
                        client.send(send).await.unwrap();
                    } else {
                        let outcomes = client
                            .send_batch(SendBatchRequest { sends })
                            .await
                            .unwrap()
                            .into_inner()
                            .outcomes;
                        assert!(outcomes.iter().all(|o| o.stored.is_some()));
                    }
                    latencies.push(started.elapsed());
                    sent.fetch_add(per_call, Ordering::Relaxed);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "persisted: {} in {elapsed:.1} s = {:.0} messages/s; latency p50 {:?} p99 {:?}",
        sent.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed) as f64 / elapsed,
        at(0.5),
        at(0.99)
    );
}
