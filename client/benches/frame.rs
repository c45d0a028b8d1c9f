//! CPU time per frame of the main window with a 10,000-message chat open and 500 contacts,
//! drawn headless through egui_kittest (layout and tessellation, no GPU). Prints the median,
//! p90 and max over the frames after the first layout pass settles.
//!
//! `cargo bench -p client --bench frame [-- FRAMES]`

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Instant;

use client::i18n::Lang;
use client::net::Update;
use client::{App, Options};
use egui_kittest::Harness;
use protocol::e2e::{Body, StyledText};
use protocol::message::{ConversationState, Friend, LoginBundle, Presence, Sex, UserSummary};
use protocol::{ClientMsgId, ConversationId, Seq, Timestamp, UserId};

const CONTACTS: u64 = 500;
const MESSAGES: u64 = 10_000;

fn user(id: u64) -> UserSummary {
    UserSummary {
        id: UserId(id),
        username: format!("user{id}"),
        sex: Sex::Undisclosed,
        age: 30,
    }
}

fn main() {
    let frames: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(Options {
        server: "127.0.0.1:1".into(),
        data_dir: dir.path().into(),
        downloads: dir.path().join("dl"),
        lang: Lang::En,
        username: String::new(),
        cjk_font: client::fonts::find(),
        min_kdf: protocol::password::MIN_KDF,
    })
    .unwrap();
    let mut h = Harness::builder()
        .with_size([1200.0, 860.0])
        .allow_missing_glyphs()
        .build_ui_state(|ui, app: &mut App| app.show(ui), app);
    let friends: Vec<Friend> = (2..2 + CONTACTS)
        .map(|id| Friend {
            user: user(id),
            conversation: ConversationId(id),
            presence: if id % 3 == 0 {
                Presence::Online("127.0.0.1:50000".parse().unwrap())
            } else {
                Presence::Offline
            },
            last_message_at: Some(Timestamp(1_700_000_000_000 + id * 1000)),
        })
        .collect();
    let open = ConversationId(2);
    let bundle = LoginBundle {
        me: user(1),
        friends,
        rooms: Vec::new(),
        pending_requests: Vec::new(),
        conversations: vec![ConversationState {
            conversation: open,
            max_seq: Seq(MESSAGES),
            delivered_seq: Seq(MESSAGES),
            read_seq: Seq(MESSAGES),
        }],
    };
    let state = &mut h.state_mut().state;
    state.apply(Update::LoggedIn(Box::new(client::net::Session {
        contacts: bundle,
        conversations: Vec::new(),
    })));
    state.open_chat(open);
    let messages = (1..=MESSAGES)
        .map(|seq| client_core::LocalMessage {
            conversation: open,
            seq: Seq(seq),
            sender: UserId(1 + seq % 2),
            client_msg_id: ClientMsgId([(seq % 251) as u8; 16]),
            sent_at: Timestamp(1_700_000_000_000 + seq * 60_000),
            body: Body::Text(StyledText {
                text: format!("message {seq}: the quick brown fox jumps over the lazy dog"),
                font_size: 14,
                color: [0, 0, 0],
            }),
        })
        .collect();
    // Pages arrive as the client would load them; here all at once.
    state.apply(Update::History {
        conversation: open,
        messages,
    });
    for _ in 0..20 {
        h.step();
    }
    let mut times = Vec::with_capacity(frames);
    for _ in 0..frames {
        let start = Instant::now();
        h.step();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    // Only rows in view are laid out: the shape count stays that of one screenful.
    let shapes = h.output().shapes.len();
    println!(
        "frame ({CONTACTS} contacts, {MESSAGES} messages, {frames} frames, {shapes} shapes): \
         median {:.3} ms, p90 {:.3} ms, max {:.3} ms",
        at(0.5),
        at(0.9),
        at(1.0)
    );
}
