//! message-svc replicas behind one name: the gateway balances over whatever the name resolves
//! to, a replica that dies takes no message with it (every send is stored exactly once) nor
//! fails the reads it was answering, and one that appears gets calls without a restart. On PostgreSQL (replicas share it; skipped with a notice without
//! `UCHAT_TEST_DATABASE_URL`). Each replica runs in a runtime of its own, so killing it drops
//! every socket and task it had, as SIGKILL would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use client_core::{ClientEvent, plain, text_of};
use e2e::{TestClient, befriend, test_options};
use gateway::discovery::Listed;
use proto::internal::InternalKey;
use protocol::ServerIdentity;
use tokio::net::TcpListener;

/// A message-svc in a runtime of its own.
struct Replica {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Replica {
    fn start(url: &str, key: &InternalKey) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (url, key) = (url.to_owned(), key.clone());
        runtime.spawn(async move {
            let db = service_kit::db::connect(&url).await.unwrap();
            let listener = TcpListener::from_std(listener).unwrap();
            let config = message_svc::Config::default();
            message_svc::serve(listener, db, key, config, std::future::pending()).await
        });
        Self {
            addr,
            runtime: Some(runtime),
        }
    }

    /// Stops everything the replica had at once: its sockets close mid-call.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// account-svc, social-svc and a gateway in this runtime; message-svc found through `listed`.
async fn stack(url: &str, key: &InternalKey, listed: &Listed, dir: &std::path::Path) -> String {
    let db = service_kit::db::connect(url).await.unwrap();
    let options = test_options(dir.join("server"));
    let account = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let social = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let push = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let urls = gateway::ServiceUrls {
        account: format!("http://{}", account.local_addr().unwrap()),
        social: format!("http://{}", social.local_addr().unwrap()),
        // The name is what DNS would resolve; `listed` answers for it here.
        message: "http://message-svc:7003".into(),
        resolve_every: Duration::from_millis(50),
    };
    tokio::spawn(account_svc::serve(
        account,
        db.clone(),
        key.clone(),
        options.account,
        std::future::pending(),
    ));
    tokio::spawn(social_svc::serve(
        social,
        db,
        key.clone(),
        std::future::pending(),
    ));
    let services = gateway::Services::connect_with(&urls, key.clone(), listed.clone()).unwrap();
    let clients = gateway::bind_with_backlog("127.0.0.1:0".parse().unwrap(), 1024).unwrap();
    let addr = clients.local_addr().unwrap().to_string();
    let (identity, _) =
        ServerIdentity::load_or_generate(&dir.join("server.key"), "uchat-test").unwrap();
    let listeners = gateway::Listeners {
        clients,
        push,
        push_advertise: None,
    };
    let gateway_config = gateway::Config {
        messages_per_minute: u32::MAX,
        ..options.gateway
    };
    tokio::spawn(gateway::serve(
        listeners,
        Arc::new(identity),
        services,
        gateway_config,
        std::future::pending(),
    ));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_loses_nothing_and_a_new_one_takes_calls() {
    let Some(url) = service_kit::testing::postgres_database_url().await else {
        return;
    };
    let key = InternalKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut first = Replica::start(&url, &key);
    let mut second = Replica::start(&url, &key);
    let listed = Listed::default();
    listed.set(vec![first.addr, second.addr]);
    let addr = stack(&url, &key, &listed, dir.path()).await;

    let amy = TestClient::user(addr.clone(), dir.path().join("amy"), "amy").await;
    let mut bo = TestClient::user(addr, dir.path().join("bo"), "bo").await;
    let conversation = befriend(&amy, &bo).await;

    let total = 300;
    let mut third = None;
    for n in 0..total {
        if n == 100 {
            // Killed mid-run, and gone from the name at the next resolution.
            first.kill();
            listed.set(vec![second.addr]);
        }
        if n == 200 {
            let started = Replica::start(&url, &key);
            listed.set(vec![second.addr, started.addr]);
            third = Some(started);
        }
        if n == 250 {
            // Only the replica that came mid-run is left: it must be taking calls.
            second.kill();
            listed.set(third.iter().map(|r| r.addr).collect());
        }
        amy.client
            .send_text(conversation, plain(&format!("m{n}")))
            .await
            .unwrap_or_else(|e| panic!("send {n}: {e}"));
    }

    // Every message was stored exactly once, gap-free, whichever replica took it.
    assert_eq!(e2e::split::stored_once(&url, conversation).await, total);

    // bo is told of every message exactly once: a push that overtook another, or one lost
    // with its replica, leaves a gap that bo's client fetches.
    let mut seen = std::collections::HashSet::new();
    while seen.len() < total {
        let text = bo
            .wait_for("a message", |e| match e {
                ClientEvent::Message(m) => text_of(&m.body).map(str::to_owned),
                _ => None,
            })
            .await;
        assert!(seen.insert(text.clone()), "{text} was delivered twice");
    }
    drop(third);
}

/// How many queries of the test database wait for a lock.
async fn waiting_on_locks(db: &sea_orm::DatabaseConnection) -> i64 {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND datname = current_database()",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_replica_dies_mid_call_is_answered_by_another() {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let Some(url) = service_kit::testing::postgres_database_url().await else {
        return;
    };
    let key = service_kit::testing::internal_key();
    let dir = tempfile::tempdir().unwrap();
    let mut first = Replica::start(&url, &key);
    let listed = Listed::default();
    listed.set(vec![first.addr]);
    let addr = stack(&url, &key, &listed, dir.path()).await;
    let amy = TestClient::user(addr.clone(), dir.path().join("amy"), "amy").await;
    let mut bo = TestClient::user(addr, dir.path().join("bo"), "bo").await;
    let conversation = befriend(&amy, &bo).await;
    amy.client
        .send_text(conversation, plain("hello"))
        .await
        .unwrap();
    bo.wait_for_text("hello").await;

    // The friendships (a sync's first read) locked away, so bo's sync is still at the
    // replica when it dies.
    let db = service_kit::db::connect(&url).await.unwrap();
    let lock = db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE friends IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let sync = tokio::spawn({
        let client = bo.client.clone();
        async move { client.sync().await }
    });
    let began = std::time::Instant::now();
    while waiting_on_locks(&db).await == 0 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the sync never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = Replica::start(&url, &key);
    listed.set(vec![second.addr]);
    first.kill();
    lock.commit().await.unwrap();

    let synced = sync.await.unwrap();
    assert!(
        synced.is_ok(),
        "the sync failed with its replica: {synced:?}"
    );
    drop(second);
}
