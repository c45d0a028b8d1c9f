//! The internal gRPC ports of `uchat-server` answer only callers holding the deployment's
//! internal key: another local user who finds the port cannot list who is online, read
//! anyone's messages or make the gateway kick someone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::TestCluster;
use proto::account::ListOnlineRequest;
use proto::account::account_client::AccountClient;
use proto::gateway::push_client::PushClient;
use proto::gateway::{KickRequest, Target};
use proto::internal::InternalKey;
use tonic::transport::{Channel, Endpoint};

async fn plain(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn internal_ports_refuse_callers_without_the_key() {
    let cluster = TestCluster::start().await;
    let _amy = cluster.user("amy").await;
    let running = cluster.server.as_ref().unwrap();

    // No key: refused before any handler runs.
    let mut stranger = AccountClient::new(plain(&running.account_url).await);
    let refused = stranger
        .list_online(ListOnlineRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");

    // A wrong key: refused too.
    let guess = InternalKey::generate().unwrap();
    let mut guesser = AccountClient::new(guess.authenticate(plain(&running.account_url).await));
    let refused = guesser.list_online(ListOnlineRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");

    // The gateway's push server: a stranger cannot kick amy off.
    let kick = KickRequest {
        target: Some(Target {
            user_id: 1,
            epoch: 0,
        }),
        reason: "forged".into(),
    };
    let mut forger = PushClient::new(plain(&running.push_url).await);
    let refused = forger.kick(kick).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");

    // The data directory's owner (`uchat-server online`) holds the key.
    let mut admin = server::admin_client(&cluster.dir.path().join("server"))
        .await
        .unwrap();
    let online = admin
        .list_online(ListOnlineRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(online.sessions.len(), 1);
}

#[cfg(unix)]
#[tokio::test]
async fn the_internal_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let cluster = TestCluster::start().await;
    let file = cluster
        .dir
        .path()
        .join("server")
        .join(server::INTERNAL_KEY_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());
}
