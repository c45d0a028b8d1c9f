//! An account that follows its person (protocol 2): the password is stretched on the client,
//! the private key is kept by the server wrapped under it, so logging in on a computer that
//! never saw the account restores the key and the history; changing the password; starting
//! over with a new key when the old one is lost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use client_core::{ClientError, ClientEvent, UNDECRYPTABLE, plain, text_of};
use e2e::{PASSWORD, TestClient, TestCluster, befriend, code};
use protocol::message::{ClientMessage, ErrorCode, KdfParams, Request, Response, ServerMessage};
use protocol::{SecureConnection, Seq};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::net::TcpStream;

fn texts(messages: &[client_core::LocalMessage]) -> Vec<&str> {
    messages.iter().filter_map(|m| text_of(&m.body)).collect()
}

/// The private key file of `client`'s only account, and its bytes.
fn key_file(client: &TestClient) -> (std::path::PathBuf, Vec<u8>) {
    let entry = std::fs::read_dir(client.dir.join("keys"))
        .unwrap()
        .next()
        .expect("a key file")
        .unwrap();
    let bytes = std::fs::read(entry.path()).unwrap();
    (entry.path(), bytes)
}

async fn database(cluster: &TestCluster) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(format!(
        "sqlite://{}?mode=rw",
        cluster.database_file().display()
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn a_computer_that_never_saw_the_account_restores_its_key_and_history() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let mut bob = cluster.user("bob").await;
    let conversation = befriend(&amy, &bob).await;
    let room = amy.client.create_room("Book club").await.unwrap();
    bob.client.join_room(room.id).await.unwrap();
    amy.client
        .send_text(conversation, plain("hello bob"))
        .await
        .unwrap();
    bob.wait_for_text("hello bob").await;
    bob.client
        .send_text(conversation, plain("hi amy"))
        .await
        .unwrap();
    amy.client
        .send_text(room.conversation, plain("welcome to the club"))
        .await
        .unwrap();
    bob.wait_for_text("welcome to the club").await;
    let safety = amy.client.safety_number(bob.id).await.unwrap();
    let (_, key_at_home) = key_file(&amy);
    amy.client.logout().await.unwrap();

    let mut laptop = cluster.client().await;
    assert!(!laptop.dir.join("keys").exists(), "a computer with no key");
    laptop.login("amy").await;
    let (path, restored) = key_file(&laptop);
    assert_eq!(restored, key_at_home, "the same private key, restored");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the restored key is owner-only");
    }

    let direct = laptop
        .client
        .history(conversation, Seq(0), 50)
        .await
        .unwrap();
    assert_eq!(texts(&direct), ["hello bob", "hi amy"]);
    let group = laptop
        .client
        .history(room.conversation, Seq(0), 50)
        .await
        .unwrap();
    assert_eq!(texts(&group), ["welcome to the club"]);
    assert_eq!(laptop.client.safety_number(bob.id).await.unwrap(), safety);
    // amy never read bob's answer; her own messages are read as written.
    assert_eq!(laptop.client.unread(conversation).await.unwrap(), 1);
    assert_eq!(laptop.client.unread(room.conversation).await.unwrap(), 0);

    // And the conversation goes on from the laptop.
    laptop
        .client
        .send_text(conversation, plain("on my laptop now"))
        .await
        .unwrap();
    bob.wait_for_text("on my laptop now").await;
}

#[tokio::test]
async fn the_server_keeps_neither_the_password_nor_a_key_it_can_open() {
    let mut cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let (_, key_hex) = key_file(&amy);
    let secret = hex::decode(String::from_utf8(key_hex.clone()).unwrap().trim()).unwrap();

    let db = database(&cluster).await;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT wrapped_key, password_hash FROM users WHERE username = 'amy'",
        ))
        .await
        .unwrap()
        .unwrap();
    let wrapped: Vec<u8> = row.try_get("", "wrapped_key").unwrap();
    let hash: String = row.try_get("", "password_hash").unwrap();
    drop(db);
    assert_eq!(wrapped.len(), 80, "the key is kept, wrapped");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    cluster.stop().await;
    let mut stored = std::fs::read(cluster.database_file()).unwrap();
    let wal = cluster.database_file().with_extension("db-wal");
    stored.extend(std::fs::read(wal).unwrap_or_default());
    let holds = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(
        !holds(PASSWORD.as_bytes()),
        "the password reached the server"
    );
    assert!(!holds(&secret), "the private key is stored in the clear");
    assert!(!holds(&key_hex), "the private key file is stored");
}

/// A raw `Prelogin` of `username`.
async fn prelogin(conn: &mut SecureConnection<TcpStream>, id: u64, username: &str) -> KdfParams {
    let body = Request::Prelogin {
        username: username.into(),
    };
    conn.write_message(&ClientMessage::Request { id, body })
        .await
        .unwrap();
    loop {
        match conn.read_message::<ServerMessage>().await.unwrap() {
            Some(ServerMessage::Response {
                id: got,
                result: Ok(Response::Prelogin(params)),
            }) if got == id => return params,
            Some(ServerMessage::Response { id: got, result }) if got == id => {
                panic!("{result:?}")
            }
            Some(_) => continue,
            None => panic!("closed"),
        }
    }
}

#[tokio::test]
async fn prelogin_answers_known_and_unknown_names_alike_and_steadily() {
    let cluster = TestCluster::start().await;
    let _amy = cluster.user("amy").await;
    let stream = TcpStream::connect(cluster.addr()).await.unwrap();
    let (mut conn, _) =
        SecureConnection::connect(stream, None, protocol::frame::DEFAULT_MAX_FRAME_LEN)
            .await
            .unwrap();
    let known = prelogin(&mut conn, 1, "amy").await;
    let unknown = prelogin(&mut conn, 2, "ghost").await;
    assert_eq!(known, prelogin(&mut conn, 3, "AMY").await, "stable");
    assert_eq!(unknown, prelogin(&mut conn, 4, "ghost").await, "stable");
    assert_eq!(known.cost, unknown.cost, "the same shape and cost");
    assert_ne!(known.salt, unknown.salt);
    assert_ne!(unknown.salt, prelogin(&mut conn, 5, "ghosts").await.salt);

    // A wrong password and an unknown name get the same answer.
    let somewhere = cluster.client().await;
    assert_eq!(
        code(somewhere.client.login("amy", "not it").await),
        ErrorCode::BadCredentials
    );
    assert_eq!(
        code(somewhere.client.login("ghost", PASSWORD).await),
        ErrorCode::BadCredentials
    );
}

#[tokio::test]
async fn a_new_password_logs_in_anywhere_and_the_old_one_nowhere() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let new = "a much longer passphrase";
    assert_eq!(
        code(amy.client.change_password("not it", new).await),
        ErrorCode::BadCredentials
    );
    amy.client.change_password(PASSWORD, new).await.unwrap();

    let elsewhere = cluster.client().await;
    assert_eq!(
        code(elsewhere.client.login("amy", PASSWORD).await),
        ErrorCode::BadCredentials
    );
    let bundle = elsewhere.client.login("amy", new).await.unwrap();
    assert_eq!(bundle.me.username, "amy");
    assert_eq!(key_file(&elsewhere).1, key_file(&amy).1, "the key follows");
}

#[tokio::test]
async fn starting_over_makes_a_new_key_that_friends_are_warned_of() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let bob = cluster.user("bob").await;
    let conversation = befriend(&amy, &bob).await;
    amy.client
        .send_text(conversation, plain("before the loss"))
        .await
        .unwrap();
    let safety = bob.client.safety_number(amy.id).await.unwrap();
    amy.client.logout().await.unwrap();

    // The server's copy no longer opens (damaged), and the new computer has no key file.
    let db = database(&cluster).await;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "UPDATE users SET wrapped_key = ? WHERE id = ?",
        [
            vec![0u8; 80].into(),
            i64::try_from(amy.id.0).unwrap().into(),
        ],
    ))
    .await
    .unwrap();
    drop(db);
    let mut laptop = cluster.client().await;
    let lost = laptop.client.login("amy", PASSWORD).await.unwrap_err();
    assert!(matches!(lost, ClientError::KeyLost), "{lost}");
    assert!(lost.to_string().contains("start over"), "{lost}");
    let bundle = laptop.client.start_over().await.unwrap();
    laptop.id = bundle.me.id;

    // Older messages stay unreadable here, shown as such.
    let history = laptop
        .client
        .history(conversation, Seq(0), 10)
        .await
        .unwrap();
    assert_eq!(texts(&history), [UNDECRYPTABLE]);

    // bob's client notices the new key at its next login, with a new safety number.
    let mut bob_again = cluster.client_in(bob.dir.clone()).await;
    bob_again.login("bob").await;
    let amy_id = amy.id;
    bob_again
        .wait_for("key changed", |e| match e {
            ClientEvent::KeyChanged { user } if *user == amy_id => Some(()),
            _ => None,
        })
        .await;
    assert_ne!(
        bob_again.client.safety_number(amy.id).await.unwrap(),
        safety
    );
    laptop
        .client
        .send_text(conversation, plain("with my new key"))
        .await
        .unwrap();
    bob_again.wait_for_text("with my new key").await;
}
