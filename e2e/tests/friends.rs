//! Friend requests and friendships, live on both sides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use client_core::ClientEvent;
use e2e::{TestCluster, code};
use protocol::message::{ErrorCode, FriendDecision};

#[tokio::test]
async fn requests_are_accepted_rejected_or_deferred_until_the_next_login() {
    let cluster = TestCluster::start().await;
    let mut amy = cluster.user("amy").await;
    let bo = cluster.user("bo").await;
    let cy = cluster.user("cy").await;

    let found = amy.client.search("B").await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["bo"]
    );

    // Accepted: both sides see the friendship live.
    bo.client.add_friend(amy.id).await.unwrap();
    let bo_id = bo.id;
    amy.wait_for("bo's request", |e| match e {
        ClientEvent::FriendRequest(u) if u.id == bo_id => Some(()),
        _ => None,
    })
    .await;
    let friend = amy
        .client
        .resolve_friend_request(bo.id, FriendDecision::Accept)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(friend.user.username, "bo");
    assert_eq!(
        code(bo.client.add_friend(amy.id).await),
        ErrorCode::AlreadyFriends
    );

    // Rejected: nothing remains, and cy may ask again.
    cy.client.add_friend(amy.id).await.unwrap();
    assert_eq!(
        code(cy.client.add_friend(amy.id).await),
        ErrorCode::RequestPending
    );
    assert!(
        amy.client
            .resolve_friend_request(cy.id, FriendDecision::Reject)
            .await
            .unwrap()
            .is_none()
    );
    cy.client.add_friend(amy.id).await.unwrap();

    // Deferred: offered again at amy's next login.
    amy.client
        .resolve_friend_request(cy.id, FriendDecision::Later)
        .await
        .unwrap();
    amy.client.logout().await.unwrap();
    let mut amy = cluster.client_in(amy.dir.clone()).await;
    let bundle = amy.login("amy").await;
    let pending: Vec<&str> = bundle
        .pending_requests
        .iter()
        .map(|u| u.username.as_str())
        .collect();
    assert_eq!(pending, ["cy"]);
    assert_eq!(
        code(amy.client.add_friend(amy.id).await),
        ErrorCode::FriendSelf
    );
}

#[tokio::test]
async fn deleting_a_friend_removes_both_sides_live() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let mut bo = cluster.user("bo").await;
    let conversation = e2e::befriend(&amy, &bo).await;
    amy.client
        .send_text(conversation, client_core::plain("hi"))
        .await
        .unwrap();

    amy.client.delete_friend(bo.id).await.unwrap();
    let amy_id = amy.id;
    bo.wait_for("friend removed", |e| match e {
        ClientEvent::FriendRemoved(u) if *u == amy_id => Some(()),
        _ => None,
    })
    .await;
    assert!(bo.client.contacts().unwrap().friends.is_empty());
    assert!(
        amy.client
            .refresh_contacts()
            .await
            .unwrap()
            .friends
            .is_empty()
    );
    let refused = amy
        .client
        .send_text(conversation, client_core::plain("still there?"))
        .await;
    assert!(refused.is_err());
}
