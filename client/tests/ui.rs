//! The desktop client's screens, driven through accessibility labels against a real
//! in-process server. Every action a person takes often (register, log in, add and delete a
//! friend, open a chat) is counted: each takes at most two clicks.

mod common;

use client::state::{Delivery, Screen};
use common::{PASSWORD, Person, conversation_with, friend_of, registered, runtime};
use e2e::TestCluster;
use egui_kittest::kittest::Queryable;
use protocol::e2e::Body;

const MOST_CLICKS: usize = 2;

#[test]
fn registration_checks_fields_as_typed_and_shows_the_servers_errors() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = Person::new(&cluster, "amy");
    amy.click("Register");
    amy.type_into("Email", "not-an-email");
    assert!(
        amy.sees("An address like name@host.tld"),
        "email error beside the field"
    );
    amy.type_into("Username", "much too long");
    assert!(amy.sees("1 to 8 letters or digits, no spaces"));
    amy.type_into("Password", "one");
    amy.type_into("Repeat password", "two");
    assert!(amy.sees("The passwords differ"));

    // A valid form registers and logs in at once.
    let mut bob = Person::new(&cluster, "bob");
    let clicks = bob.register("bob");
    assert!(clicks <= MOST_CLICKS, "register took {clicks} clicks");
    assert_eq!(bob.app().state.screen, Screen::Main);

    // The server's own check: the name is taken, shown beside the username.
    let mut other = Person::new(&cluster, "other");
    other.click("Register");
    other.fill_registration("bob", "bob2@example.com");
    other.click("Create account");
    other.accept_server();
    other.wait("the taken-name error", |p| p.sees("This username is taken"));
}

#[test]
fn login_asks_for_a_new_servers_fingerprint_and_refuses_a_changed_key() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let amy = rt.block_on(cluster.user("amy"));
    // The account's key, as if carried over from the computer it was made on.
    let with_key = |p: &Person| {
        let keys = p.dir.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        for file in std::fs::read_dir(amy.dir.join("keys")).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), keys.join(file.file_name())).unwrap();
        }
    };
    let fingerprint = cluster
        .server
        .as_ref()
        .map(|s| s.fingerprint.to_string())
        .unwrap();

    let mut ui = Person::new(&cluster, "first");
    with_key(&ui);
    ui.type_into("Username", "amy");
    ui.type_into("Password", PASSWORD);
    ui.click("Log in");
    ui.wait("the fingerprint prompt", |p| {
        p.sees_button("Accept and continue")
    });
    assert!(
        ui.sees(&fingerprint),
        "the prompt shows the server's fingerprint"
    );
    ui.click("Cancel");
    assert_eq!(
        ui.app().state.screen,
        Screen::Login,
        "declining connects nowhere"
    );

    // A pinned server that presents another key: a full-screen warning, never a login.
    let mut pinned = Person::new(&cluster, "pinned");
    with_key(&pinned);
    std::fs::create_dir_all(&pinned.dir).unwrap();
    let wrong = "ab".repeat(32);
    std::fs::write(
        pinned.dir.join("known_servers"),
        format!("{} {wrong}\n", cluster.addr()),
    )
    .unwrap();
    pinned.type_into("Username", "amy");
    pinned.type_into("Password", PASSWORD);
    pinned.click("Log in");
    pinned.wait("the changed-key warning", |p| {
        p.sees("Warning: the server's key has changed")
    });
    assert!(pinned.sees(&fingerprint), "the presented fingerprint");
    assert!(pinned.sees_text("abab abab"), "the pinned fingerprint");
    assert_ne!(pinned.app().state.screen, Screen::Main);

    // Accepting once, the next login goes straight in, in one click.
    let clicks = ui.login("amy");
    assert!(clicks <= MOST_CLICKS, "log in took {clicks} clicks");
}

#[test]
fn friends_are_made_through_requests_answered_now_or_later_and_deleted() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = Person::new(&cluster, "amy");
    let mut bob = Person::new(&cluster, "bob");
    amy.register("amy");
    bob.register("bob");

    amy.type_into("Find users by name", "bob");
    amy.clicks = 0;
    amy.click("Search");
    amy.wait("the search result", |p| p.sees_button("Add bob"));
    amy.click("Add bob");
    assert!(
        amy.clicks <= MOST_CLICKS,
        "add friend took {} clicks",
        amy.clicks
    );

    bob.wait("the request", |p| p.sees("amy wants to be your friend"));
    bob.click("Later");
    bob.wait("the request to leave the list", |p| {
        !p.sees("amy wants to be your friend")
    });
    // Later: asked again at the next login.
    bob.click("Log out");
    bob.login("bob");
    bob.wait("the request again", |p| {
        p.sees("amy wants to be your friend")
    });
    bob.click("Accept");
    bob.wait("amy in the contacts", |p| p.sees_button("amy"));
    amy.wait("bob in the contacts", |p| p.sees_button("bob"));

    amy.clicks = 0;
    amy.click("bob");
    assert!(amy.clicks <= 1, "open a chat took {} clicks", amy.clicks);
    amy.clicks = 0;
    amy.click("Delete friend");
    amy.wait("the confirmation", |p| p.sees_button("Yes, delete"));
    amy.click("Yes, delete");
    assert!(
        amy.clicks <= MOST_CLICKS,
        "delete friend took {} clicks",
        amy.clicks
    );
    amy.wait("bob gone", |p| !p.sees_button("bob"));
    bob.wait("amy gone on the other side", |p| !p.sees_button("amy"));
}

#[test]
fn styled_messages_arrive_counted_unread_and_the_list_follows_the_last_message() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = registered(&cluster, "amy");
    let bob = friend_of(&rt, &cluster, &mut amy, "bob");
    let mut carl = friend_of(&rt, &cluster, &mut amy, "carl");
    amy.wait("both friends", |p| {
        p.sees_button("bob") && p.sees_button("carl")
    });
    let (with_bob, with_carl) = (
        conversation_with(&amy, "bob"),
        conversation_with(&amy, "carl"),
    );

    // Three messages to a closed chat: a badge of 3, the total in the title, carl on top.
    rt.block_on(async {
        for text in ["one", "two", "three"] {
            carl.client
                .send_text(with_carl, client_core::plain(text))
                .await
                .unwrap();
        }
    });
    amy.wait("carl's badge", |p| p.sees_button("carl (3)"));
    assert_eq!(amy.app().title(), "Uchat (3 unread)");
    assert_eq!(amy.app().state.order[0].name(), "carl");
    rt.block_on(bob.client.send_text(with_bob, client_core::plain("hi")))
        .unwrap();
    amy.wait("bob moves up", |p| {
        p.app()
            .state
            .order
            .first()
            .is_some_and(|c| c.name() == "bob")
    });

    // Opening the chat clears the badge, here and in the server's read mark.
    amy.click("carl (3)");
    amy.wait("carl's history", |p| p.sees("three"));
    amy.wait("the badge to clear", |p| p.sees_button("carl"));
    assert_eq!(amy.app().title(), "Uchat (1 unread)");

    // Styled text: size and colour travel with the message; Enter sends.
    amy.h.state_mut().state.main.font_size = 22;
    amy.h.state_mut().state.main.color = [200, 20, 20];
    amy.type_into(
        "Message (Enter sends, Shift+Enter breaks the line)",
        "big red",
    );
    amy.press(egui::Key::Enter);
    amy.wait("the message stored", |p| {
        p.app().state.chats[&with_carl].lines.iter().any(|l| {
            l.delivery == Delivery::Stored && client_core::text_of(&l.body) == Some("big red")
        })
    });
    let got = rt.block_on(carl.wait_for_text("big red"));
    let Body::Text(text) = got.body else {
        panic!("not text")
    };
    assert_eq!((text.font_size, text.color), (22, [200, 20, 20]));
}

#[test]
fn groups_are_made_joined_by_number_and_show_who_said_what() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = registered(&cluster, "amy");
    let mut bob = registered(&cluster, "bob");
    amy.type_into("Group name", "team");
    amy.click("Create group");
    amy.wait("the group number", |p| {
        p.sees_text("is ready: its number is")
    });
    let room = amy.app().state.contacts.as_ref().unwrap().bundle().rooms[0].id;
    bob.type_into("Group number", &room.to_string());
    bob.click("Join group");
    bob.wait("the group in the list", |p| p.sees_button("team"));
    bob.click("team");
    bob.type_into(
        "Message (Enter sends, Shift+Enter breaks the line)",
        "hello team",
    );
    bob.click("Send");
    amy.wait("the group's badge", |p| p.sees_button("team (1)"));
    amy.click("team (1)");
    amy.wait("bob's message with his name", |p| {
        p.sees("hello team") && p.sees("bob")
    });
}

#[test]
fn a_dropped_file_is_sent_with_progress_and_saved_by_the_other_side() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = registered(&cluster, "amy");
    let mut bob = registered(&cluster, "bob");
    bob.type_into("Find users by name", "amy");
    bob.click("Search");
    bob.wait("amy found", |p| p.sees_button("Add amy"));
    bob.click("Add amy");
    amy.wait("the request", |p| p.sees_button("Accept"));
    amy.click("Accept");
    amy.wait("bob in the list", |p| p.sees_button("bob"));
    amy.click("bob");

    // Larger than fits in a message: uploaded as an encrypted attachment, chunk by chunk.
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let path = amy.dir.join("notes.bin");
    std::fs::write(&path, &bytes).unwrap();
    amy.drop_file(&path);
    amy.wait("the file stored", |p| {
        p.app()
            .state
            .chats
            .values()
            .flat_map(|c| &c.lines)
            .any(|l| {
                matches!(&l.body, Body::File { name, .. } if name == "notes.bin")
                    && l.delivery == Delivery::Stored
            })
    });

    bob.wait("amy's badge", |p| p.sees_button("amy (1)"));
    bob.click("amy (1)");
    bob.wait("the file in the chat", |p| p.sees_button("Save notes.bin"));
    bob.click("Save notes.bin");
    let saved = bob.downloads.join("notes.bin");
    bob.wait("the file saved", |p| p.sees_text("Saved to"));
    assert_eq!(std::fs::read(saved).unwrap(), bytes);
}

#[test]
fn a_second_login_elsewhere_shows_the_kicked_screen() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = registered(&cluster, "amy");
    // The same account on another client (sharing the key folder, as a second computer
    // would after importing it).
    let elsewhere = rt.block_on(async {
        let mut other = cluster.client_in(amy.dir.clone()).await;
        other.login("amy").await;
        other
    });
    amy.wait("the kicked screen", |p| p.sees("Signed in elsewhere"));
    amy.click("Log in again");
    assert_eq!(amy.app().state.screen, Screen::Login);
    drop(elsewhere);
}

#[test]
fn chinese_labels_render_with_a_cjk_font() {
    let Some(_) = client::fonts::find() else {
        let required = std::env::var_os("UCHAT_REQUIRE_CJK_FONT").is_some();
        assert!(
            !required,
            "no CJK font installed, but UCHAT_REQUIRE_CJK_FONT is set"
        );
        eprintln!("skipped: no CJK font installed (apt install fonts-wqy-microhei)");
        return;
    };
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut ui = Person::new(&cluster, "zh");
    // The harness fails on any glyph that no installed font has.
    ui.h.get_by_label("中文").click();
    ui.h.step();
    ui.h.step();
    assert!(ui.sees_button("登录"), "the login button in Chinese");
    assert!(ui.sees_button("注册"));
    ui.click("注册");
    assert!(ui.sees_button("创建账号"));
}

#[test]
fn older_history_loads_on_scroll_and_new_messages_wait_below_a_button() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = registered(&cluster, "amy");
    let carl = friend_of(&rt, &cluster, &mut amy, "carl");
    let with_amy = conversation_with(&amy, "carl");
    rt.block_on(async {
        for n in 1..=120 {
            let text = client_core::plain(&format!("old {n}"));
            carl.client.send_text(with_amy, text).await.unwrap();
        }
        carl.client
            .send_text(with_amy, client_core::plain("newest"))
            .await
            .unwrap();
    });
    amy.wait("carl's badge", |p| p.sees_button("carl (121)"));
    amy.click("carl (121)");
    amy.wait("the newest page", |p| p.sees("newest"));
    let loaded = |p: &Person| p.app().state.chats[&with_amy].lines.len();
    assert!(loaded(&amy) < 121, "one page first, not the whole history");

    // Scrolling up reaches older pages until the start of the conversation.
    amy.wait("the first message, scrolling up", |p| {
        if let Some(message) = p.h.query_all_by_label_contains("old ").next() {
            message.scroll_up();
        }
        p.sees("old 1") && p.sees("Start of the conversation")
    });
    assert_eq!(loaded(&amy), 121);

    // Scrolled up, a new message waits below a button instead of moving the view.
    rt.block_on(
        carl.client
            .send_text(with_amy, client_core::plain("just now")),
    )
    .unwrap();
    amy.wait("the new-messages button", |p| {
        p.sees_button("New messages ↓")
    });
    assert!(
        amy.sees("old 1"),
        "the view stayed where the person was reading"
    );
    amy.click("New messages ↓");
    amy.wait("the newest message in view", |p| p.sees("just now"));
}

#[test]
fn an_image_shows_inline_opens_full_size_and_saves() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = registered(&cluster, "amy");
    let bob = friend_of(&rt, &cluster, &mut amy, "bob");
    let with_amy = bob.client.contacts().unwrap().friends[0].conversation;
    let mut png = Vec::new();
    let picture = image::RgbaImage::from_pixel(64, 48, image::Rgba([250, 120, 40, 255]));
    image::DynamicImage::ImageRgba8(picture)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    rt.block_on(
        bob.client
            .send_file(with_amy, "sunset.png", &png, |_, _| {}),
    )
    .unwrap();
    amy.wait("bob's badge", |p| p.sees_button("bob (1)"));
    amy.click("bob (1)");
    amy.wait("the picture inline", |p| p.sees("sunset.png"));
    amy.h.get_by_label("sunset.png").click();
    amy.h.step();
    amy.wait("the full-size view", |p| p.sees_button("Close"));
    amy.click("Save");
    amy.wait("the picture saved", |p| p.sees_text("Saved to"));
    assert_eq!(
        std::fs::read(amy.downloads.join("sunset.png")).unwrap(),
        png
    );
    amy.click("Close");
    assert!(!amy.sees_button("Close"));
}

#[test]
fn the_password_is_changed_from_the_contact_panel_and_opens_the_account_anywhere() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    let mut amy = registered(&cluster, "amy");
    amy.click("Change password");
    assert!(
        amy.app().state.main.password.is_some(),
        "the form opened: {:?}",
        amy.app().state.screen
    );
    amy.type_into("Current password", PASSWORD);
    amy.type_into("New password", "short");
    assert!(amy.sees("At least 8 characters"), "the rule shows as typed");
    if let Some(form) = &mut amy.app_mut().state.main.password {
        form.new.clear();
    }
    amy.type_into("New password", "a new passphrase");
    amy.type_into("Repeat new password", "a new passphrase");
    amy.click("Save the new password");
    amy.wait("the change confirmed", |p| p.sees_text("Password changed"));
    assert!(amy.app().state.main.password.is_none(), "the form closed");

    // Another computer opens the account with the new password, and not with the old one.
    let elsewhere = rt.block_on(cluster.client());
    assert!(
        rt.block_on(elsewhere.client.login("amy", PASSWORD))
            .is_err()
    );
    rt.block_on(elsewhere.client.login("amy", "a new passphrase"))
        .expect("the new password logs in");
}

#[test]
fn a_lost_key_is_explained_and_starting_over_opens_the_account() {
    let rt = runtime();
    let cluster = rt.block_on(TestCluster::start());
    // Registered on a computer that was lost before its first login: the server never got
    // the wrapped key.
    let gone = rt.block_on(cluster.client());
    rt.block_on(gone.client.register(e2e::form("cat"))).unwrap();

    let mut cat = Person::new(&cluster, "cat");
    cat.type_into("Username", "cat");
    cat.type_into("Password", PASSWORD);
    cat.click("Log in");
    cat.accept_server();
    cat.wait("the key-lost screen", |p| {
        p.sees_button("Start over with a new key")
    });
    assert_eq!(cat.app().state.screen, Screen::KeyLost);
    assert!(cat.sees_text("log in there"), "the way back is named");
    cat.click("Start over with a new key");
    cat.wait("the main window", |p| p.sees("Log out"));
}
