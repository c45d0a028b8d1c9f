//! What the server holds for connections, counted byte for byte: the whole stack runs in this
//! test's process, whose allocator counts every byte live (resident memory would blur it
//! with the allocator's own bookkeeping).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use e2e::TestCluster;
use e2e::raw::connect;
use proto::account::ListOnlineRequest;

#[global_allocator]
static ALLOCATOR: allocator::Counted<allocator::Allocator> =
    allocator::Counted::new(allocator::Allocator);

/// The count is the whole process's: the tests here take turns (`cargo test` would run them
/// side by side in one process).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Connections the crowd opens: enough that what each leaves behind adds up far past noise.
const CROWD: usize = 1000;

/// What the server may still hold per connection once every one has closed: less than a
/// finished task's record (about 180 bytes here, where tokio boxes a session's future; in a
/// release build the record holds the whole future, 2.4 KiB), so keeping any part of each
/// connection fails.
const LEFT_PER_CONNECTION: usize = 64;

/// How long the server has to let go of a closed crowd.
const SETTLE: Duration = Duration::from_secs(10);

/// Logged-in users who leave at once.
const LEAVERS: usize = 400;

/// What the crowd's logouts may add to this process while they run, per leaver, above what
/// the sessions held (their clients' memory, freed as they leave, offsets part of it): a
/// fraction of what one logout in flight holds (its call's buffers while it waits for the
/// database), so that only a fraction of the crowd may be logging out at once. All 400 in
/// flight measured 3,000 - 3,200 bytes each here; taking turns, 0 - 310.
const LOGOUT_RISE_PER_LEAVER: usize = 1536;

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
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start_with(|o| {
        o.gateway.max_connections_per_ip = CROWD + 10;
        o.gateway.max_unauthenticated = CROWD + 10;
    })
    .await;
    // One connection first, so that what is made once (key pools, tables sized for a first
    // client) is made before the baseline; made once, it fits well inside the bound below.
    drop(connect(&cluster).await);
    let baseline = ALLOCATOR.live_bytes();

    let mut crowd = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        crowd.push(connect(&cluster).await.0);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_logging_out_together_takes_turns() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster =
        TestCluster::start_with(|o| o.gateway.max_connections_per_ip = LEAVERS + 10).await;
    let mut crowd = Vec::with_capacity(LEAVERS);
    for i in 0..LEAVERS {
        crowd.push(e2e::raw::raw_user(&cluster, &format!("l{i}")).await.0);
    }
    let mut admin = server::admin_client(&cluster.dir.path().join("server"))
        .await
        .unwrap();
    let held = ALLOCATOR.live_bytes();
    ALLOCATOR.reset_peak();
    drop(crowd);

    // Every logout recorded: nobody online.
    let deadline = Instant::now() + SETTLE;
    loop {
        let online = admin.list_online(ListOnlineRequest {}).await.unwrap();
        if online.into_inner().sessions.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logouts not recorded in {SETTLE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rise = ALLOCATOR.peak_bytes().saturating_sub(held);
    assert!(
        rise <= LEAVERS * LOGOUT_RISE_PER_LEAVER,
        "{} bytes per leaver above what the sessions held, while they logged out",
        rise / LEAVERS
    );
}
