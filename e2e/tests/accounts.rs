//! Registration, login, kicking and presence, through the whole stack.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use client_core::ClientEvent;
use e2e::{PASSWORD, TestCluster, code, form};
use protocol::message::{ErrorCode, Field, FriendDecision, Presence};

#[tokio::test]
async fn registration_errors_are_clear_and_per_field() {
    let cluster = TestCluster::start().await;
    let c = cluster.client().await;
    c.client.register(form("amy")).await.unwrap();

    let err = c.client.register(form("AMY")).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UsernameTaken), "{err}");

    let mut taken_email = form("bo");
    taken_email.email = "amy@example.com".into();
    assert_eq!(
        code(c.client.register(taken_email).await),
        ErrorCode::EmailTaken
    );

    let mut bad = form("toolongname1");
    bad.email = "not an email".into();
    let err = c.client.register(bad.clone()).await.unwrap_err();
    let client_core::ClientError::Server(error) = &err else {
        panic!("{err}")
    };
    assert_eq!(error.code, ErrorCode::InvalidField);
    let fields: Vec<Field> = error.fields.iter().map(|f| f.field).collect();
    for field in [Field::Username, Field::Email] {
        assert!(fields.contains(&field), "{field:?} missing from {error}");
    }
    // The server never sees the password: its rule is checked here, before anything is sent.
    bad.password = "short".into();
    let err = c.client.register(bad).await.unwrap_err();
    let client_core::ClientError::Server(error) = &err else {
        panic!("{err}")
    };
    assert_eq!(error.fields[0].field, Field::Password, "{error}");
    assert!(error.fields[0].message.contains("at least 8"), "{error}");
}

#[tokio::test]
async fn a_wrong_password_or_name_is_refused_alike() {
    let cluster = TestCluster::start().await;
    let _amy = cluster.user("amy").await;
    let other = cluster.client().await;
    assert_eq!(
        code(other.client.login("amy", "wrong").await),
        ErrorCode::BadCredentials
    );
    assert_eq!(
        code(other.client.login("nobody", PASSWORD).await),
        ErrorCode::BadCredentials
    );
}

#[tokio::test]
async fn a_second_login_kicks_the_first() {
    let cluster = TestCluster::start().await;
    let mut first = cluster.user("amy").await;
    let mut second = cluster.client_in(first.dir.clone()).await;
    second.login("amy").await;
    let reason = first
        .wait_for("kicked", |e| match e {
            ClientEvent::Kicked { reason } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(reason.contains("signed in elsewhere"), "{reason}");
    // The kicked client does not come back by itself, and its requests fail.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(first.client.search("a").await.is_err());
    // The new session works.
    assert!(second.client.search("a").await.is_ok());
}

#[tokio::test]
async fn a_kicked_client_busy_with_messages_does_not_log_in_again() {
    let cluster = TestCluster::start_with(|options| {
        options.gateway.messages_per_minute = 1_000_000;
    })
    .await;
    let mut first = cluster.user("amy").await;
    let bo = cluster.user("bo").await;
    let conversation = e2e::befriend(&first, &bo).await;
    // A burst for amy, so her client is still handling messages when the kick comes: its
    // `Kicked` event waits behind them while the connection is already closed.
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..200 {
        let client = bo.client.clone();
        sends.spawn(async move {
            client
                .send_text(conversation, client_core::plain(&format!("burst {i}")))
                .await
        });
    }
    while let Some(sent) = sends.join_next().await {
        sent.unwrap().unwrap();
    }
    let mut second = cluster.client_in(first.dir.clone()).await;
    second.login("amy").await;
    first
        .wait_for("kicked", |e| match e {
            ClientEvent::Kicked { .. } => Some(()),
            _ => None,
        })
        .await;
    // Past the first reconnection delay: a kicked client that came back would have kicked
    // the second session in turn.
    tokio::time::sleep(client_core::RECONNECT_FIRST_DELAY * 3).await;
    assert!(
        second.client.search("a").await.is_ok(),
        "the second session was kicked back"
    );
}

#[tokio::test]
async fn presence_shows_address_and_port_both_ways() {
    let cluster = TestCluster::start().await;
    let mut amy = cluster.user("amy").await;
    let bo = cluster.user("bo").await;
    bo.client.add_friend(amy.id).await.unwrap();
    amy.client
        .resolve_friend_request(bo.id, FriendDecision::Accept)
        .await
        .unwrap();

    // bo goes offline and comes back: amy sees both, with bo's address.
    bo.client.logout().await.unwrap();
    let bo_id = bo.id;
    amy.wait_for("bo offline", |e| match e {
        ClientEvent::Presence {
            user,
            presence: Presence::Offline,
        } if *user == bo_id => Some(()),
        _ => None,
    })
    .await;
    let mut bo = cluster.client_in(bo.dir.clone()).await;
    let bundle = bo.login("bo").await;
    let seen = amy
        .wait_for("bo online", |e| match e {
            ClientEvent::Presence {
                user,
                presence: Presence::Online(addr),
            } if *user == bo_id => Some(*addr),
            _ => None,
        })
        .await;
    assert_eq!(seen.ip().to_string(), "127.0.0.1");
    assert_ne!(seen.port(), 0);
    // And bo's login shows amy online with hers.
    let amy_seen = bundle.friends.iter().find(|f| f.user.id == amy.id).unwrap();
    let Presence::Online(addr) = amy_seen.presence else {
        panic!("amy shows offline")
    };
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), seen.port(), "two connections, two ports");
}

#[tokio::test]
async fn rate_limits_answer_with_a_clear_error() {
    let cluster = TestCluster::start_with(|o| o.gateway.searches_per_minute = 1).await;
    let amy = cluster.user("amy").await;
    let mut limited = None;
    for _ in 0..40 {
        if let Err(err) = amy.client.search("a").await {
            limited = Some(err);
            break;
        }
    }
    let err = limited.expect("the search limit was never reached");
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    assert!(err.to_string().contains("too many searches"), "{err}");
}

#[tokio::test]
async fn the_gateway_keeps_its_lease_so_sessions_stay_online() {
    // A lease of 600 ms swept every 100 ms: only renewals keep amy online.
    let cluster = TestCluster::start_with(|o| {
        o.account.lease_ms = 600;
        o.account.lease_sweep_ms = 100;
    })
    .await;
    let amy = cluster.user("amy").await;
    let bo = cluster.user("bo").await;
    bo.client.add_friend(amy.id).await.unwrap();
    amy.client
        .resolve_friend_request(bo.id, FriendDecision::Accept)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let contacts = bo.client.refresh_contacts().await.unwrap();
    let seen = contacts
        .friends
        .iter()
        .find(|f| f.user.id == amy.id)
        .unwrap();
    assert!(
        matches!(seen.presence, Presence::Online(_)),
        "amy was swept offline"
    );
}

#[tokio::test]
async fn look_alike_names_are_refused() {
    let cluster = TestCluster::start().await;
    let c = cluster.client().await;
    c.client.register(form("amudwe")).await.unwrap();
    c.client.register(form("ace")).await.unwrap();
    let mut fullwidth = form("ａｍｕｄｗｅ");
    fullwidth.email = "fullwidth@example.com".into();
    assert_eq!(
        code(c.client.register(fullwidth).await),
        ErrorCode::UsernameTaken,
        "the fullwidth twin is the same name"
    );
    // All Cyrillic, and looking like `ace`.
    let mut cyrillic = form("\u{430}\u{441}\u{435}");
    cyrillic.email = "cyrillic@example.com".into();
    assert_eq!(
        code(c.client.register(cyrillic).await),
        ErrorCode::UsernameTaken
    );
    // One Cyrillic letter among Latin ones: mixed scripts, refused beside the field.
    let mut mixed = form("\u{430}mudwe2");
    mixed.email = "mixed@example.com".into();
    let err = c.client.register(mixed).await.unwrap_err();
    let client_core::ClientError::Server(error) = &err else {
        panic!("{err}")
    };
    assert_eq!(error.fields[0].field, Field::Username, "{error}");
    assert!(error.fields[0].message.contains("one script"), "{error}");
}
