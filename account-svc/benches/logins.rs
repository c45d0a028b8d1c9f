//! Logins per second through account-svc over real gRPC, on a SQLite file, with the default
//! argon2id parameters (or those given by the usual environment variables).
//!
//! `cargo bench -p account-svc --bench logins [-- SECONDS [CLIENTS]]`

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use clap::Parser;
use migrations::{Migrator, MigratorTrait};
use proto::account::account_client::AccountClient;
use proto::account::{LoginRequest, RegisterRequest};
use proto::common::PeerAddr;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    config: account_svc::Config,
}

#[tokio::main]
async fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = numbers.first().copied().unwrap_or(10);
    let clients = numbers.get(1).copied().unwrap_or(8) as usize;
    // Only the environment configures it here: `cargo bench` passes its own flags.
    let config = Flags::parse_from(["logins"]).config;

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let db = service_kit::db::connect(&url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    println!(
        "argon2id m={} KiB t={} p={}, {} hashes at once, {clients} clients, {seconds} s",
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        config.max_concurrent_hashes
    );
    tokio::spawn(account_svc::serve(
        listener,
        db,
        service_kit::testing::internal_key(),
        config,
        std::future::pending(),
    ));
    let client = AccountClient::new(service_kit::testing::channel(&format!("http://{addr}")).await);

    for i in 0..clients {
        client
            .clone()
            .register(RegisterRequest {
                username: format!("u{i}"),
                auth_key: vec![0x42; 32],
                kdf: Some(service_kit::testing::test_kdf()),
                email: format!("u{i}@example.com"),
                sex: 0,
                age: 30,
                public_key: vec![5; 256],
            })
            .await
            .unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut session = 0u64;
                while Instant::now() < deadline {
                    session += 1;
                    let started = Instant::now();
                    client
                        .login(LoginRequest {
                            username: format!("u{i}"),
                            auth_key: vec![0x42; 32],
                            gateway_id: "bench".into(),
                            session_id: session,
                            peer: Some(PeerAddr {
                                ip: "127.0.0.1".into(),
                                port: 1,
                            }),
                        })
                        .await
                        .unwrap();
                    latencies.push(started.elapsed());
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
        "logins: {} in {elapsed:.1} s = {:.1}/s; latency p50 {:?} p99 {:?}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        at(0.50),
        at(0.99)
    );
}
