//! What the server holds for connections, counted byte for byte: the whole stack runs in this
//! test's process, whose allocator counts every byte live (resident memory would blur it
//! with the allocator's own bookkeeping).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use e2e::TestCluster;
use protocol::SecureConnection;
use tokio::net::TcpStream;

#[global_allocator]
static ALLOCATOR: allocator::Counted<allocator::Allocator> =
    allocator::Counted::new(allocator::Allocator);

/// Connections the crowd opens: enough that what each leaves behind adds up far past noise.
const CROWD: usize = 1000;

/// What the server may still hold per connection once every one has closed: less than a
/// finished task's record (about 180 bytes here, where tokio boxes a session's future; in a
/// release build the record holds the whole future, 2.4 KiB), so keeping any part of each
/// connection fails.
const LEFT_PER_CONNECTION: usize = 64;

/// How long the server has to let go of a closed crowd.
const SETTLE: Duration = Duration::from_secs(10);

async fn handshake(addr: &str) -> SecureConnection<TcpStream> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (conn, _) = SecureConnection::connect(stream, None, protocol::frame::DEFAULT_MAX_FRAME_LEN)
        .await
        .unwrap();
    conn
}

/// Waits until live memory is at most `bound`; returns the last reading.
async fn settle_to(bound: usize) -> usize {
    let deadline = Instant::now() + SETTLE;
    loop {
        let live = ALLOCATOR.live_bytes();
        if live <= bound || Instant::now() > deadline {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_that_leaves_leaves_nothing_held() {
    let cluster = TestCluster::start_with(|o| {
        o.gateway.max_connections_per_ip = CROWD + 10;
        o.gateway.max_unauthenticated = CROWD + 10;
    })
    .await;
    let addr = cluster.addr();
    // One connection first, so that what is made once (key pools, tables sized for a first
    // client) is made before the baseline; made once, it fits well inside the bound below.
    drop(handshake(&addr).await);
    let baseline = ALLOCATOR.live_bytes();

    let mut crowd = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        crowd.push(handshake(&addr).await);
    }
    let open = ALLOCATOR.live_bytes().saturating_sub(baseline) / CROWD;
    // The count sees connections at all (else the bound below would prove nothing).
    assert!(
        open > 4 * LEFT_PER_CONNECTION,
        "{open} bytes per open connection"
    );

    drop(crowd);
    // No one connects after the crowd: nothing else gives the server a reason to let go.
    let left = settle_to(baseline + CROWD * LEFT_PER_CONNECTION).await;
    assert!(
        left <= baseline + CROWD * LEFT_PER_CONNECTION,
        "{} bytes per closed connection still held {SETTLE:?} after they closed \
         ({open} per open one)",
        left.saturating_sub(baseline) / CROWD
    );
}
