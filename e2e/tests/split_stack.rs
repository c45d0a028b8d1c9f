//! The split stack as an operator runs it: every part its own process of the real binary, on
//! PostgreSQL (skipped with a notice without `UCHAT_TEST_DATABASE_URL`; `e2e::split`). One
//! account-svc, one social-svc, message-svc replicas behind one name (a hosts file the
//! gateways read again every 200 ms, as they would DNS), two gateways.
//!
//! Clients on different gateways chat one-to-one and in a group; a login on one gateway kicks
//! the session on the other. 10,000 messages from four senders while one replica is killed
//! (SIGKILL) and a third one appears: every message is stored exactly once and delivered
//! exactly once, in order per conversation, and the new replica takes calls. Then a gateway
//! is killed and restarted: its users go offline within the lease, come back, sync, and miss
//! nothing. Health follows the database; metrics answer with their series.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use client_core::{ClientEvent, LocalMessage, plain, text_of};
use e2e::processes::{Proxy, sample_sum, scrape, wait_for_health};
use e2e::split::{GatewayAddrs, LEASE_MS, SWEEP_MS, SplitStack, database_addr, via};
use e2e::{TestClient, befriend};
use protocol::message::Presence;
use protocol::{ClientMsgId, ConversationId, Seq, UserId};
use tonic_health::pb::health_check_response::ServingStatus;

/// Messages of the load, over four senders.
const TOTAL: usize = 10_000;
const SENDERS: usize = 4;

/// Every message event `client` has been told so far, by text; panics on a duplicate.
fn drain_messages(client: &mut TestClient, seen: &mut HashSet<String>) {
    while let Ok(event) = client.events.try_recv() {
        if let ClientEvent::Message(m) = event
            && let Some(text) = text_of(&m.body)
        {
            assert!(seen.insert(text.to_owned()), "{text} was delivered twice");
        }
    }
}

/// Waits until `client` has been told of every text in `expected` (and of each once).
async fn wait_told(
    client: &mut TestClient,
    seen: &mut HashSet<String>,
    expected: &HashSet<String>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        drain_messages(client, seen);
        if expected.is_subset(seen) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} messages told",
            expected.intersection(seen).count(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `count` messages `{tag}-{n}`, retrying a failed send under the same id as a client
/// would; counts every stored send in `sent`.
async fn send_run(
    client: client_core::Client,
    conversation: ConversationId,
    tag: &'static str,
    count: usize,
    sent: Arc<AtomicUsize>,
) {
    for n in 0..count {
        let id = ClientMsgId::random();
        let mut attempt = 0;
        loop {
            let body = protocol::e2e::Body::Text(plain(&format!("{tag}-{n}")));
            match client.send_with_id(conversation, id, body).await {
                Ok(_) => break,
                Err(err) => {
                    attempt += 1;
                    assert!(attempt < 20, "{tag}-{n}: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// The conversation's messages held by `client`, oldest first.
async fn held(client: &TestClient, conversation: ConversationId) -> Vec<LocalMessage> {
    client
        .client
        .history(conversation, Seq(0), u32::try_from(TOTAL * 2).unwrap())
        .await
        .unwrap()
}

/// In `messages` (in seq order), each sender's numbered messages come in the order sent.
fn in_send_order(messages: &[LocalMessage]) {
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for pair in messages.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "seqs out of order or repeated");
    }
    for m in messages {
        let Some((tag, n)) = text_of(&m.body).and_then(|t| t.rsplit_once('-')) else {
            continue;
        };
        let Ok(n) = n.parse::<i64>() else { continue };
        let previous = last.insert(tag.to_owned(), n).unwrap_or(-1);
        assert!(n > previous, "{tag}-{n} came after {tag}-{previous}");
    }
}

async fn wait_presence(client: &mut TestClient, user: UserId, online: bool) {
    client
        .wait_for("a presence change", |e| match e {
            ClientEvent::Presence { user: u, presence } if *u == user => {
                (matches!(presence, Presence::Online(_)) == online).then_some(())
            }
            _ => None,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_split_stack_loses_nothing_when_replicas_and_gateways_die() {
    let Some(url) = service_kit::testing::postgres_database_url().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // social-svc reaches the database through a proxy that can cut it off.
    let proxy = Proxy::start(database_addr(&url)).await;
    let mut stack = SplitStack::start(&dir, &url, &via(&url, proxy.addr), 2, 2).await;
    let (g1, g2) = (stack.gateway_addrs[0], stack.gateway_addrs[1]);

    // --- Across gateways: one-to-one, a group, presence and a kick. ---
    let on = |g: GatewayAddrs, name: &'static str| {
        TestClient::user(g.clients.to_string(), dir.join(name), name)
    };
    let mut amy = on(g1, "amy").await;
    let mut bo = on(g2, "bo").await;
    let mut cy = on(g1, "cy").await;
    let mut dan = on(g2, "dan").await;
    let amy_bo = befriend(&amy, &bo).await;
    let cy_dan = befriend(&cy, &dan).await;
    let room = amy.client.create_room("team").await.unwrap();
    for member in [&bo, &cy, &dan] {
        member.client.join_room(room.id).await.unwrap();
    }
    amy.client
        .send_text(amy_bo, plain("hello bo"))
        .await
        .unwrap();
    bo.wait_for_text("hello bo").await;
    dan.client
        .send_text(room.conversation, plain("hi team"))
        .await
        .unwrap();
    for member in [&mut amy, &mut bo, &mut cy] {
        member.wait_for_text("hi team").await;
    }
    let mut eve = on(g2, "eve").await;
    let eve_elsewhere = TestClient::connect(g1.clients.to_string(), dir.join("eve-laptop")).await;
    let mut eve_elsewhere = eve_elsewhere;
    eve_elsewhere.login("eve").await;
    eve.wait_for("the kick", |e| {
        matches!(e, ClientEvent::Kicked { .. }).then_some(())
    })
    .await;

    // --- 10,000 messages while a replica dies and another appears. ---
    let sent = Arc::new(AtomicUsize::new(0));
    let per_sender = TOTAL / SENDERS;
    let runs = [
        (amy.client.clone(), amy_bo, "amy"),
        (bo.client.clone(), amy_bo, "bo"),
        (cy.client.clone(), cy_dan, "cy"),
        (dan.client.clone(), room.conversation, "dan"),
    ];
    let mut senders = tokio::task::JoinSet::new();
    for (client, conversation, tag) in runs {
        senders.spawn(send_run(
            client,
            conversation,
            tag,
            per_sender,
            sent.clone(),
        ));
    }
    let reached = |n: usize| {
        let sent = sent.clone();
        async move {
            while sent.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    reached(TOTAL * 3 / 10).await;
    stack.kill_replica(0);
    reached(TOTAL * 6 / 10).await;
    // The address the new replica would take is already bound (as a port a test picked
    // can be, by the time a process binds it): it starts on a later one (the next may be
    // taken too, by a test running beside this one).
    let taken = std::net::TcpListener::bind(("127.0.0.4", stack.message_port)).unwrap();
    let third = stack.add_replica().await;
    assert!(stack.replicas[third].ip > [127, 0, 0, 4]);
    drop(taken);
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }
    assert_eq!(sent.load(Ordering::Relaxed), TOTAL);

    // Stored exactly once, gap-free, in every conversation.
    let mut stored = 0;
    for conversation in [amy_bo, cy_dan, room.conversation] {
        stored += e2e::split::stored_once(&url, conversation).await;
    }
    // The load, plus "hello bo" and "hi team".
    assert_eq!(stored, TOTAL + 2);

    // Delivered exactly once, and held in order, by every recipient.
    let texts =
        |tag: &str| -> HashSet<String> { (0..per_sender).map(|n| format!("{tag}-{n}")).collect() };
    for (client, tags) in [
        (&mut amy, ["bo", "dan"].as_slice()),
        (&mut bo, &["amy", "dan"]),
        (&mut cy, &["dan"]),
        (&mut dan, &["cy"]),
    ] {
        let expected: HashSet<String> = tags.iter().flat_map(|t| texts(t)).collect();
        wait_told(client, &mut HashSet::new(), &expected).await;
    }
    for (client, conversations) in [
        (&amy, [amy_bo, room.conversation].as_slice()),
        (&bo, &[amy_bo, room.conversation]),
        (&cy, &[cy_dan, room.conversation]),
        (&dan, &[cy_dan, room.conversation]),
    ] {
        for conversation in conversations {
            in_send_order(&held(client, *conversation).await);
        }
    }

    // The replica started mid-run took calls, without any restart.
    let c_metrics = scrape(stack.replicas[third].metrics).await;
    assert!(
        sample_sum(&c_metrics, "uchat_rpc_requests_total", &["SendBatch"]) > 0.0,
        "the new replica took no sends:\n{c_metrics}"
    );

    // --- A gateway dies: its users go offline within the lease, come back, miss nothing. ---
    stack.gateways[1].kill();
    let killed = tokio::time::Instant::now();
    wait_presence(&mut amy, bo.id, false).await;
    let offline_after = killed.elapsed();
    assert!(
        offline_after < Duration::from_millis(LEASE_MS + 3 * SWEEP_MS + 2_000),
        "bo was online {offline_after:?} after his gateway died"
    );
    let while_down: HashSet<String> = (0..20).map(|n| format!("while-down-{n}")).collect();
    for n in 0..20 {
        amy.client
            .send_text(amy_bo, plain(&format!("while-down-{n}")))
            .await
            .unwrap();
    }
    stack.gateways[1] = stack.start_gateway("gateway-2-again", g2).await;
    // bo's client reconnects by itself and syncs what was sent meanwhile.
    wait_told(&mut bo, &mut HashSet::new(), &while_down).await;
    wait_presence(&mut amy, bo.id, true).await;
    in_send_order(&held(&bo, amy_bo).await);
    assert_eq!(held(&bo, amy_bo).await.len(), 1 + 2 * per_sender + 20);

    // --- Health follows the database. ---
    proxy.down();
    let social = stack.social.to_string();
    wait_for_health(&social, ServingStatus::NotServing, Duration::from_secs(15)).await;
    proxy.up().await;
    wait_for_health(&social, ServingStatus::Serving, Duration::from_secs(15)).await;

    // --- Metrics: the series an operator watches. ---
    let gateway_text = scrape(g1.metrics).await;
    for series in [
        "uchat_gateway_connections",
        "uchat_gateway_sessions",
        "uchat_gateway_handshakes_total",
        "uchat_gateway_requests_total",
        "uchat_gateway_request_seconds_bucket",
        "uchat_gateway_rate_limited_total",
        "uchat_gateway_outbound_bytes",
        "uchat_gateway_send_batch_size_bucket",
        "uchat_gateway_replicas",
        "uchat_rpc_requests_total",
        "uchat_rpc_seconds_bucket",
    ] {
        assert!(
            gateway_text.contains(series),
            "the gateway has no {series}:\n{gateway_text}"
        );
    }
    assert_eq!(
        sample_sum(&gateway_text, "uchat_gateway_replicas", &[]),
        2.0,
        "{gateway_text}"
    );
    let replica_text = scrape(stack.replicas[1].metrics).await;
    for series in [
        "uchat_rpc_requests_total",
        "uchat_rpc_seconds_bucket",
        "uchat_message_writer_queue",
        "uchat_message_writer_batch_size_bucket",
        "uchat_message_fanout_queue",
    ] {
        assert!(
            replica_text.contains(series),
            "message-svc has no {series}:\n{replica_text}"
        );
    }
    drop((eve_elsewhere, cy, dan));
}
