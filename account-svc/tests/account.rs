//! account-svc over real gRPC on 127.0.0.1, against SQLite (memory and file) and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use account_svc::Config;
use entity::friend;
use proto::account::account_client::AccountClient;
use proto::account::*;
use proto::common::{ErrorCode, PeerAddr};
use proto::gateway::notification::Event;
use proto::internal::Authenticated;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use service_kit::status::error_code;
use service_kit::testing::{
    self as testing, Pushed, RecordingGateway, TEST_AUTH_KEY, databases, register, registration,
};
use tokio::net::TcpListener;

/// Cheap argon2 for tests; the defaults are checked by a unit test of their own.
fn config() -> Config {
    Config {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        lease_ms: 60_000,
        lease_sweep_ms: 50,
        ..Config::default()
    }
}

async fn start(db: DatabaseConnection, config: Config) -> AccountClient<Authenticated> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(account_svc::serve(
        listener,
        db,
        testing::internal_key(),
        config,
        std::future::pending(),
    ));
    AccountClient::new(testing::channel(&format!("http://{addr}")).await)
}

fn login_request(name: &str, auth_key: &[u8], gateway: &str, session: u64) -> LoginRequest {
    LoginRequest {
        username: name.into(),
        auth_key: auth_key.to_vec(),
        gateway_id: gateway.into(),
        session_id: session,
        peer: Some(PeerAddr {
            ip: "127.0.0.1".into(),
            port: 40_000 + (session % 1000) as u32,
        }),
    }
}

async fn gateway(client: &mut AccountClient<Authenticated>, id: &str) -> RecordingGateway {
    let (recorder, addr) = RecordingGateway::start().await;
    client
        .register_gateway(RegisterGatewayRequest {
            gateway_id: id.into(),
            push_addr: addr,
        })
        .await
        .unwrap();
    recorder
}

fn fields(response: &RegisterResponse) -> Vec<(Field, bool)> {
    response
        .field_errors
        .iter()
        .map(|e| (e.field(), e.taken))
        .collect()
}

#[tokio::test]
async fn registration_succeeds_and_reports_each_problem_by_field() {
    for test in databases().await {
        let mut client = start(test.db, config()).await;
        let id = register(&mut client, "小明").await;
        assert!(id > 0, "{}", test.backend);

        let mut bad = registration("");
        bad.email = "not-an-email".into();
        bad.auth_key = vec![0; 31];
        let response = client.register(bad).await.unwrap().into_inner();
        assert_eq!(response.user_id, 0);
        assert_eq!(
            fields(&response),
            [
                (Field::Username, false),
                (Field::Password, false),
                (Field::Email, false)
            ],
            "{}",
            test.backend
        );

        // Taken, compared case-insensitively, both at once.
        let mut again = registration("ALICE");
        again.email = "Ming@Example.com".into();
        register(&mut client, "alice").await;
        let mut dup = registration("小明");
        dup.email = "xiaoming@example.com".into();
        let response = client.register(dup).await.unwrap().into_inner();
        assert_eq!(fields(&response), [(Field::Username, true)]);
        let response = client.register(again).await.unwrap().into_inner();
        assert_eq!(fields(&response), [(Field::Username, true)]);
        let mut email_only = registration("bob");
        email_only.email = "ALICE@example.com".into();
        let response = client.register(email_only).await.unwrap().into_inner();
        assert_eq!(fields(&response), [(Field::Email, true)]);
    }
}

#[tokio::test]
async fn simultaneous_registrations_of_one_name_make_one_account() {
    for test in databases().await {
        let client = start(test.db, config()).await;
        let attempts = (0..6).map(|i| {
            let mut client = client.clone();
            let mut request = registration("same");
            request.email = format!("same{i}@example.com");
            tokio::spawn(async move { client.register(request).await.unwrap().into_inner() })
        });
        let mut created = 0;
        for attempt in attempts {
            let response = attempt.await.unwrap();
            if response.user_id > 0 {
                created += 1;
            } else {
                assert_eq!(fields(&response), [(Field::Username, true)]);
            }
        }
        assert_eq!(created, 1, "{}", test.backend);
    }
}

#[tokio::test]
async fn a_wrong_pair_gets_one_error_whichever_half_is_wrong() {
    for test in databases().await {
        let mut client = start(test.db, config()).await;
        register(&mut client, "carol").await;
        let wrong_password = client
            .login(login_request("carol", &[0x43; 32], "gw", 1))
            .await
            .unwrap_err();
        let unknown_user = client
            .login(login_request("nobody", &TEST_AUTH_KEY, "gw", 1))
            .await
            .unwrap_err();
        for status in [&wrong_password, &unknown_user] {
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert_eq!(error_code(status), ErrorCode::BadCredentials);
        }
        assert_eq!(wrong_password.message(), unknown_user.message());
    }
}

#[tokio::test]
async fn a_second_login_kicks_the_first_session() {
    for test in databases().await {
        let mut client = start(test.db, config()).await;
        register(&mut client, "dave").await;
        let first_gateway = gateway(&mut client, "gw-a").await;
        let _second_gateway = gateway(&mut client, "gw-b").await;

        let first = client
            .login(login_request("DAVE", &TEST_AUTH_KEY, "gw-a", 11))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((first.epoch, first.replaced), (1, false));
        let second = client
            .login(login_request("dave", &TEST_AUTH_KEY, "gw-b", 22))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((second.epoch, second.replaced), (2, true));

        let kick = first_gateway
            .wait_for("a kick", |p| matches!(p, Pushed::Kick(_)))
            .await;
        let Pushed::Kick(kick) = kick else {
            unreachable!()
        };
        assert_eq!(kick.target.unwrap().epoch, 1);
        assert_eq!(kick.reason, proto::SIGNED_IN_ELSEWHERE);

        // Only the second session is online, and a logout with the stale epoch does nothing.
        let online = client
            .list_online(ListOnlineRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(online.sessions.len(), 1, "{}", test.backend);
        assert_eq!(online.sessions[0].gateway_id, "gw-b");
        let stale = client
            .logout(LogoutRequest {
                user_id: first.user.as_ref().unwrap().id,
                epoch: 1,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!stale.logged_out);
        let current = client
            .logout(LogoutRequest {
                user_id: first.user.unwrap().id,
                epoch: 2,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(current.logged_out);
        let online = client
            .list_online(ListOnlineRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(online.sessions.is_empty());
    }
}

#[tokio::test]
async fn simultaneous_logins_leave_exactly_one_session() {
    for test in databases().await {
        let mut client = start(test.db, config()).await;
        register(&mut client, "erin").await;
        gateway(&mut client, "gw").await;
        let logins = (1..=5u64).map(|session| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .login(login_request("erin", &TEST_AUTH_KEY, "gw", session))
                    .await
                    .unwrap()
                    .into_inner()
            })
        });
        let mut epochs = Vec::new();
        for login in logins {
            epochs.push(login.await.unwrap().epoch);
        }
        epochs.sort_unstable();
        assert_eq!(
            epochs,
            [1, 2, 3, 4, 5],
            "{}: every login got its own epoch",
            test.backend
        );
        let online = client
            .list_online(ListOnlineRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(online.sessions.len(), 1);
    }
}

#[tokio::test]
async fn friends_see_presence_with_address_and_lease_expiry_takes_sessions_offline() {
    for test in databases().await {
        let db = test.db.clone();
        let mut client = start(
            test.db,
            Config {
                lease_ms: 400,
                ..config()
            },
        )
        .await;
        let frank = register(&mut client, "frank").await as i64;
        let grace = register(&mut client, "grace").await as i64;
        for (from, to) in [(frank, grace), (grace, frank)] {
            friend::ActiveModel {
                from_user_id: Set(from),
                to_user_id: Set(to),
                accepted: Set(true),
                conversation_id: Set(None),
                created_at: Set(0),
            }
            .insert(&db)
            .await
            .unwrap();
        }
        let recorder = gateway(&mut client, "gw").await;
        client
            .login(login_request("grace", &TEST_AUTH_KEY, "gw", 1))
            .await
            .unwrap();
        client
            .login(login_request("frank", &TEST_AUTH_KEY, "gw", 2))
            .await
            .unwrap();
        let online = recorder
            .wait_for("frank online", |p| {
                matches!(p, Pushed::Notify(n) if matches!(&n.event,
                    Some(Event::Presence(c)) if c.user_id == frank as u64
                        && c.presence.as_ref().is_some_and(|p| p.online)))
            })
            .await;
        let Pushed::Notify(notification) = online else {
            unreachable!()
        };
        assert_eq!(notification.target.unwrap().user_id, grace as u64);
        let Some(Event::Presence(change)) = notification.event else {
            unreachable!()
        };
        let addr = change.presence.unwrap().addr.unwrap();
        assert_eq!((addr.ip.as_str(), addr.port), ("127.0.0.1", 40_002));

        // The gateway stops renewing: once the lease is over and swept, nobody is online.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while entity::gateway::Entity::find_by_id("gw")
            .one(&db)
            .await
            .unwrap()
            .is_some()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: the expired gateway was never swept",
                test.backend
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let online = client
            .list_online(ListOnlineRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(online.sessions.is_empty(), "{}", test.backend);
        let renewed = client
            .renew_lease(RenewLeaseRequest {
                gateway_id: "gw".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&renewed), ErrorCode::UnknownGateway);
    }
}

#[tokio::test]
async fn certificates_by_id_and_by_name() {
    for test in databases().await {
        let mut client = start(test.db, config()).await;
        let heidi = register(&mut client, "heidi").await;
        let ivan = register(&mut client, "ivan").await;
        let response = client
            .get_certificates(GetCertificatesRequest {
                user_ids: vec![heidi],
                usernames: vec!["IVAN".into(), "nobody".into()],
                requester_id: heidi,
            })
            .await
            .unwrap()
            .into_inner();
        let names: Vec<_> = response
            .certificates
            .iter()
            .map(|c| (c.user_id, c.username.as_str(), c.public_key.len()))
            .collect();
        assert_eq!(names, [(heidi, "heidi", 256), (ivan, "ivan", 256)]);
        // heidi sees her own email, not a stranger's.
        let emails: Vec<&str> = response
            .certificates
            .iter()
            .map(|c| c.email.as_str())
            .collect();
        assert_eq!(emails, ["heidi@example.com", ""], "{}", test.backend);
    }
}

#[tokio::test]
async fn bad_gateway_registrations_are_refused() {
    for test in databases().await {
        let mut client = start(test.db, config()).await;
        let status = client
            .register_gateway(RegisterGatewayRequest {
                gateway_id: "gw".into(),
                push_addr: "no port".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}

#[test]
fn the_default_argon2_parameters_are_valid() {
    account_svc::password::Passwords::new(&Config::default()).unwrap();
    let _ = Arc::new(Config::default());
}

#[tokio::test]
async fn malformed_session_fields_are_refused() {
    for test in databases().await {
        let mut client = start(test.db, config()).await;
        register(&mut client, "judy").await;
        let mut no_gateway = login_request("judy", &TEST_AUTH_KEY, "", 1);
        no_gateway.gateway_id.clear();
        let mut bad_port = login_request("judy", &TEST_AUTH_KEY, "gw", 1);
        bad_port.peer.as_mut().unwrap().port = 70_000;
        let huge_session = login_request("judy", &TEST_AUTH_KEY, "gw", u64::MAX);
        for request in [no_gateway, bad_port, huge_session] {
            let status = client.login(request).await.unwrap_err();
            assert_eq!(
                error_code(&status),
                ErrorCode::InvalidRequest,
                "{}",
                test.backend
            );
        }
        let status = client
            .logout(LogoutRequest {
                user_id: u64::MAX,
                epoch: 1,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::InvalidRequest);
    }
}
