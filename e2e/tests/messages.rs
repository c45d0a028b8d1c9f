//! Chat through the whole stack: text, images, large files, offline delivery, groups,
//! resends, restarts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use client_core::{ClientEvent, plain, text_of};
use e2e::{TestCluster, befriend, code};
use protocol::e2e::{Body, Content, ImageFormat, StyledText};
use protocol::message::ErrorCode;

#[tokio::test]
async fn styled_text_and_an_image_recognised_by_its_bytes() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let mut bo = cluster.user("bo").await;
    let conversation = befriend(&amy, &bo).await;

    let styled = StyledText {
        text: "two\nlines".into(),
        font_size: 18,
        color: [200, 30, 30],
    };
    amy.client
        .send_text(conversation, styled.clone())
        .await
        .unwrap();
    let got = bo.wait_for_text("two\nlines").await;
    assert_eq!(got.body, Body::Text(styled));
    assert_eq!(got.sender, amy.id);
    // Both sides compute the same safety number from the keys they hold.
    let seen_by_amy = amy.client.safety_number(bo.id).await.unwrap();
    assert_eq!(seen_by_amy, bo.client.safety_number(amy.id).await.unwrap());
    assert_eq!(seen_by_amy.split(' ').count(), 12);

    // A PNG named like anything else is still an image.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..5000u32).map(|i| (i % 256) as u8));
    amy.client
        .send_file(conversation, "holiday.dat", &png, |_, _| {})
        .await
        .unwrap();
    let (format, content) = bo
        .wait_for("the image", |e| match e {
            ClientEvent::Message(m) => match &m.body {
                Body::Image {
                    format,
                    content,
                    name,
                } if name == "holiday.dat" => Some((*format, content.clone())),
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(format, ImageFormat::Png);
    let cached = bo.client.cached_image(format, &content).await.unwrap();
    assert_eq!(std::fs::read(&cached).unwrap(), png);
    assert!(cached.starts_with(bo.dir.join("images")));
}

#[tokio::test]
async fn a_20_mb_file_goes_through_while_both_keep_chatting() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let mut bo = cluster.user("bo").await;
    let conversation = befriend(&amy, &bo).await;

    let file: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sent = Arc::new(AtomicU64::new(0));
    let progress = sent.clone();
    let sender = amy.client.clone();
    let file_copy = file.clone();
    let upload = tokio::spawn(async move {
        sender
            .send_file(conversation, "big.bin", &file_copy, move |done, _| {
                progress.store(done, Ordering::Relaxed);
            })
            .await
    });
    // Chat both ways while the upload runs.
    for i in 0..10 {
        amy.client
            .send_text(conversation, plain(&format!("amy {i}")))
            .await
            .unwrap();
        bo.client
            .send_text(conversation, plain(&format!("bo {i}")))
            .await
            .unwrap();
    }
    bo.wait_for_text("amy 9").await;
    upload.await.unwrap().unwrap();
    assert!(
        sent.load(Ordering::Relaxed) >= file.len() as u64,
        "progress reached the end"
    );

    let attachment = bo
        .wait_for("the file", |e| match e {
            ClientEvent::Message(m) => match &m.body {
                Body::File {
                    content: Content::Attachment(a),
                    size,
                    ..
                } => {
                    assert_eq!(*size, file.len() as u64);
                    Some(a.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .await;
    let received = Arc::new(AtomicU64::new(0));
    let seen = received.clone();
    let downloaded = bo
        .client
        .download(&attachment, move |done, _| {
            seen.store(done, Ordering::Relaxed)
        })
        .await
        .unwrap();
    assert!(downloaded == file, "the file arrived intact");
    assert!(received.load(Ordering::Relaxed) > file.len() as u64 - 1);
    let history = bo
        .client
        .history(conversation, protocol::Seq(0), 100)
        .await
        .unwrap();
    assert_eq!(history.len(), 21, "20 texts and the file");
}

#[tokio::test]
async fn a_download_that_does_not_match_the_senders_checksum_is_refused() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let bo = cluster.user("bo").await;
    let conversation = befriend(&amy, &bo).await;
    // Three chunks: the checksum is taken over all of them, not only the last.
    let file: Vec<u8> = (0..600 * 1024u32).map(|i| (i % 253) as u8).collect();
    let (_, body) = amy
        .client
        .send_file_with_id(
            conversation,
            protocol::ClientMsgId::random(),
            "f.bin",
            &file,
            |_, _| {},
        )
        .await
        .unwrap();
    let Body::File {
        content: Content::Attachment(attachment),
        ..
    } = body
    else {
        panic!("a 600 KiB file is an attachment");
    };
    assert_eq!(
        bo.client.download(&attachment, |_, _| {}).await.unwrap(),
        file
    );

    let mut forged = attachment.clone();
    forged.sha256[0] ^= 1;
    let err = bo.client.download(&forged, |_, _| {}).await.unwrap_err();
    assert!(
        err.to_string().contains("does not match its checksum"),
        "{err}"
    );
}

#[tokio::test]
async fn messages_to_an_offline_user_arrive_at_login_with_the_unread_count() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let bo = cluster.user("bo").await;
    let conversation = befriend(&amy, &bo).await;
    bo.client.logout().await.unwrap();
    for i in 0..3 {
        amy.client
            .send_text(conversation, plain(&format!("while away {i}")))
            .await
            .unwrap();
    }
    let mut bo = cluster.client_in(bo.dir.clone()).await;
    let bundle = bo.login("bo").await;
    let state = bundle
        .conversations
        .iter()
        .find(|c| c.conversation == conversation)
        .unwrap();
    assert_eq!(state.unread(), 3);
    assert_eq!(bo.client.unread(conversation).await.unwrap(), 3);
    let history = bo
        .client
        .history(conversation, protocol::Seq(0), 10)
        .await
        .unwrap();
    let texts: Vec<&str> = history.iter().filter_map(|m| text_of(&m.body)).collect();
    assert_eq!(texts, ["while away 0", "while away 1", "while away 2"]);
    bo.client
        .mark_read(conversation, history[2].seq)
        .await
        .unwrap();
    assert_eq!(bo.client.unread(conversation).await.unwrap(), 0);
}

#[tokio::test]
async fn a_group_of_five_chats_with_sender_names() {
    let cluster = TestCluster::start().await;
    let mut users = Vec::new();
    for name in ["ann", "ben", "cat", "dan", "eve"] {
        users.push(cluster.user(name).await);
    }
    let room = users[0].client.create_room("Club").await.unwrap();
    assert_eq!(
        code(users[1].client.create_room("club").await),
        ErrorCode::RoomNameTaken
    );
    assert_eq!(
        code(
            users[1]
                .client
                .join_room(protocol::RoomId(room.id.0 + 999))
                .await
        ),
        ErrorCode::RoomNotFound
    );
    assert_eq!(
        code(users[0].client.join_room(room.id).await),
        ErrorCode::AlreadyMember
    );
    for user in &users[1..] {
        user.client.join_room(room.id).await.unwrap();
    }
    let members = users[0].client.room_members(room.id).await.unwrap();
    let names: Vec<&str> = members.iter().map(|m| m.username.as_str()).collect();
    assert_eq!(names, ["ann", "ben", "cat", "dan", "eve"]);

    for (i, user) in users.iter().enumerate() {
        user.client
            .send_text(room.conversation, plain(&format!("hello from {i}")))
            .await
            .unwrap();
    }
    for (reader, user) in users.iter_mut().enumerate() {
        for i in (0..5).filter(|i| *i != reader) {
            let message = user.wait_for_text(&format!("hello from {i}")).await;
            let sender = members.iter().find(|m| m.id == message.sender).unwrap();
            assert_eq!(sender.username, ["ann", "ben", "cat", "dan", "eve"][i]);
        }
    }
    // Someone outside cannot write to it.
    let outsider = cluster.user("fay").await;
    assert!(
        outsider
            .client
            .send_text(room.conversation, plain("let me in"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_group_message_sealed_for_old_members_is_sealed_again_for_the_current_ones() {
    let cluster = TestCluster::start().await;
    let ann = cluster.user("ann").await;
    let ben = cluster.user("ben").await;
    let mut cat = cluster.user("cat").await;
    let room = ann.client.create_room("Book club").await.unwrap();
    ben.client.join_room(room.id).await.unwrap();
    let known = ann.client.room_members(room.id).await.unwrap();
    cat.client.join_room(room.id).await.unwrap();
    // ann's client has not heard of cat yet: it seals for ann and ben; the server refuses
    // that (cat could not read it), so the client seals again for all three.
    ann.client.put_members_for_test(room.id, known);
    ann.client
        .send_text(room.conversation, plain("welcome, cat"))
        .await
        .unwrap();
    cat.wait_for_text("welcome, cat").await;
}

#[tokio::test]
async fn a_resend_after_a_dropped_connection_is_stored_once() {
    let cluster = TestCluster::start().await;
    let mut amy = cluster.user("amy").await;
    let mut bo = cluster.user("bo").await;
    let conversation = befriend(&amy, &bo).await;

    // The connection drops before the send: it waits in the outbox and goes out after the
    // reconnect.
    amy.client.drop_connection();
    amy.wait_for("disconnected", |e| {
        matches!(e, ClientEvent::Disconnected).then_some(())
    })
    .await;
    let failed = amy.client.send_text(conversation, plain("queued")).await;
    assert!(
        failed.as_ref().is_err_and(|e| e.is_transient()),
        "{failed:?}"
    );
    amy.wait_for("resent", |e| {
        matches!(e, ClientEvent::Sent { .. }).then_some(())
    })
    .await;
    bo.wait_for_text("queued").await;

    // The answer to a stored message is lost: the resend gets the same seq, no second row.
    let seq = amy
        .client
        .send_text(conversation, plain("once"))
        .await
        .unwrap();
    amy.client
        .requeue_last_for_test(conversation)
        .await
        .unwrap();
    amy.client.drop_connection();
    let resent = amy
        .wait_for("resent", |e| match e {
            ClientEvent::Sent { seq, .. } => Some(*seq),
            _ => None,
        })
        .await;
    assert_eq!(resent, seq);
    bo.wait_for_text("once").await;
    let history = bo
        .client
        .history(conversation, protocol::Seq(0), 50)
        .await
        .unwrap();
    let count = |t: &str| {
        history
            .iter()
            .filter(|m| text_of(&m.body) == Some(t))
            .count()
    };
    assert_eq!((count("queued"), count("once")), (1, 1));
}

#[tokio::test]
async fn a_restart_loses_nothing_and_the_database_holds_no_plaintext() {
    let mut cluster = TestCluster::start().await;
    let mut amy = cluster.user("amy").await;
    let mut bo = cluster.user("bo").await;
    let conversation = befriend(&amy, &bo).await;
    let secret = "the plaintext marker 7f3a";
    amy.client
        .send_text(conversation, plain(secret))
        .await
        .unwrap();
    bo.wait_for_text(secret).await;
    // A file too large to travel inside its message: its chunks go to the attachments file.
    let file_marker = b"the attachment marker 5c1e ";
    let file: Vec<u8> = file_marker
        .iter()
        .copied()
        .cycle()
        .take(client_core::INLINE_MAX + 4096)
        .collect();
    amy.client
        .send_file(conversation, "notes.txt", &file, |_, _| {})
        .await
        .unwrap();
    bo.wait_for("the file", |e| match e {
        ClientEvent::Message(m) => {
            matches!(&m.body, Body::File { name, .. } if name == "notes.txt").then_some(())
        }
        _ => None,
    })
    .await;

    cluster.restart().await;
    // Both clients reconnect by themselves and carry on.
    amy.wait_for("reconnected", |e| {
        matches!(e, ClientEvent::Reconnected).then_some(())
    })
    .await;
    bo.wait_for("reconnected", |e| {
        matches!(e, ClientEvent::Reconnected).then_some(())
    })
    .await;
    amy.client
        .send_text(conversation, plain("after the restart"))
        .await
        .unwrap();
    bo.wait_for_text("after the restart").await;
    let mut fresh = cluster.client_in(bo.dir.join("elsewhere")).await;
    std::fs::create_dir_all(fresh.dir.join("keys")).unwrap();
    for entry in std::fs::read_dir(bo.dir.join("keys")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), fresh.dir.join("keys").join(entry.file_name())).unwrap();
    }
    fresh.login("bo").await;
    let history = fresh
        .client
        .history(conversation, protocol::Seq(0), 10)
        .await
        .unwrap();
    let texts: Vec<&str> = history.iter().filter_map(|m| text_of(&m.body)).collect();
    assert_eq!(texts, [secret, "after the restart"]);

    cluster.stop().await;
    // With the server gone, history still shows, from the local store.
    let offline = bo
        .client
        .history(conversation, protocol::Seq(0), 10)
        .await
        .unwrap();
    let texts: Vec<&str> = offline.iter().filter_map(|m| text_of(&m.body)).collect();
    assert_eq!(texts, [secret, "after the restart"]);
    let mut stored = Vec::new();
    for file in [cluster.database_file(), cluster.attachments_file()] {
        let wal = file.with_extension("db-wal");
        let main = std::fs::read(&file).unwrap();
        assert!(!main.is_empty(), "{} is empty", file.display());
        stored.extend(main);
        stored.extend(std::fs::read(wal).unwrap_or_default());
    }
    for needle in [secret.as_bytes(), b"after the restart", file_marker] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "the server's database holds plaintext"
        );
    }
}

#[tokio::test]
async fn a_key_swapped_by_the_server_is_noticed() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let bo = cluster.user("bo").await;
    befriend(&amy, &bo).await;
    let before = amy.client.safety_number(bo.id).await.unwrap();

    // A malicious (or compromised) server hands out another key for bo.
    let db = sea_orm::Database::connect(format!(
        "sqlite://{}?mode=rw",
        cluster.database_file().display()
    ))
    .await
    .unwrap();
    let impostor = protocol::KeyPair::generate().unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "UPDATE users SET public_key = ? WHERE id = ?",
        [
            impostor.public().as_bytes().to_vec().into(),
            i64::try_from(bo.id.0).unwrap().into(),
        ],
    ))
    .await
    .unwrap();
    drop(db);

    let mut again = cluster.client_in(amy.dir.clone()).await;
    again.login("amy").await;
    let bo_id = bo.id;
    again
        .wait_for("key changed", |e| match e {
            ClientEvent::KeyChanged { user } if *user == bo_id => Some(()),
            _ => None,
        })
        .await;
    assert_ne!(again.client.safety_number(bo.id).await.unwrap(), before);
}

#[tokio::test]
async fn a_message_missing_below_ones_held_is_fetched_at_the_next_sync() {
    // bo holds m1 and m3 but not m2 (its push was lost while bo's own later message, or a
    // faster push, was stored): the next sync must start after m1, not after m3.
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let mut bo = cluster.user("bo").await;
    let conversation = befriend(&amy, &bo).await;
    for text in ["m1", "m2", "m3"] {
        amy.client
            .send_text(conversation, plain(text))
            .await
            .unwrap();
        bo.wait_for_text(text).await;
    }
    let store = bo.dir.join(format!("user-{}.db", bo.id.0));
    let db = sea_orm::Database::connect(format!("sqlite://{}?mode=rw", store.display()))
        .await
        .unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "DELETE FROM messages WHERE conversation = ? AND seq = 2",
        [i64::try_from(conversation.0).unwrap().into()],
    ))
    .await
    .unwrap();
    drop(db);

    bo.client.drop_connection();
    let again = bo
        .wait_for("m2 again", |e| match e {
            ClientEvent::Message(m) => text_of(&m.body).map(str::to_owned),
            _ => None,
        })
        .await;
    assert_eq!(again, "m2", "m3, held already, is not told twice");
}

/// A client keeping its history in memory (what the load tool uses) chats like any other,
/// history included, and leaves no database in its folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_its_history_in_memory_chats_and_writes_no_database() {
    let cluster = TestCluster::start().await;
    let amy = cluster.user("amy").await;
    let dir = tempfile::tempdir().unwrap();
    let mut bo = e2e::TestClient::connect_with(cluster.addr(), dir.path().join("bo"), |c| {
        c.local_store = client_core::LocalStore::Memory;
    })
    .await;
    bo.id = bo.client.register(e2e::form("bo")).await.unwrap();
    bo.login("bo").await;
    let conversation = befriend(&amy, &bo).await;
    for text in ["m1", "m2"] {
        amy.client
            .send_text(conversation, plain(text))
            .await
            .unwrap();
        bo.wait_for_text(text).await;
    }
    let held = bo
        .client
        .history(conversation, protocol::Seq(0), 10)
        .await
        .unwrap();
    let texts: Vec<&str> = held.iter().filter_map(|m| text_of(&m.body)).collect();
    assert_eq!(texts, ["m1", "m2"]);
    let files: Vec<String> = std::fs::read_dir(&bo.dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        files.iter().all(|f| !f.ends_with(".db")),
        "a database was written: {files:?}"
    );
}
