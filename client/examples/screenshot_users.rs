//! Scripted users for `scripts/screenshots.sh`: registers `amy` in the desktop client's data
//! folder and a few friends in folders of their own, makes them friends, starts a group, and
//! sends styled text in English and Chinese, an image and unread messages. Prints `ready`
//! and keeps the friends online until standard input closes.
//!
//! `cargo run -p client --example screenshot_users -- SERVER AMY_DIR OTHERS_DIR`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::PathBuf;

use client_core::{Client, ClientConfig, RegisterForm};
use protocol::e2e::StyledText;
use protocol::message::{FriendDecision, Sex};

const PASSWORD: &str = "correct horse";

async fn user(server: &str, dir: PathBuf, name: &str, email: &str) -> Client {
    let (client, _events) = Client::connect(ClientConfig::new(server, dir))
        .await
        .expect("connect");
    client
        .register(RegisterForm {
            username: name.into(),
            password: PASSWORD.into(),
            email: email.into(),
            sex: Sex::Undisclosed,
            age: 28,
        })
        .await
        .expect("register");
    client.login(name, PASSWORD).await.expect("login");
    client
}

fn text(text: &str, font_size: u8, color: [u8; 3]) -> StyledText {
    StyledText {
        text: text.into(),
        font_size,
        color,
    }
}

/// A small picture: a sunset of bands.
fn picture() -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 200, |x, y| {
        let sky = (y * 255 / 200) as u8;
        if (x as i32 - 160).pow(2) + (y as i32 - 150).pow(2) < 2500 {
            image::Rgb([250, 190, 40])
        } else if y > 150 {
            image::Rgb([30, 60, 120])
        } else {
            image::Rgb([250, 120u8.saturating_add(sky / 3), 80 + sky / 2])
        }
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (server, amy_dir, others) = (
        args.next().expect("SERVER"),
        PathBuf::from(args.next().expect("AMY_DIR")),
        PathBuf::from(args.next().expect("OTHERS_DIR")),
    );
    let amy = user(&server, amy_dir, "amy", "amy@example.com").await;
    let bob = user(&server, others.join("bob"), "bob", "bob@example.com").await;
    let ming = user(&server, others.join("ming"), "小明", "ming@example.com").await;
    let carl = user(&server, others.join("carl"), "carl", "carl@example.com").await;
    let dana = user(&server, others.join("dana"), "dana", "dana@example.com").await;
    let amy_id = amy.me().unwrap().id;
    for friend in [&bob, &ming, &carl, &dana] {
        friend.add_friend(amy_id).await.unwrap();
        let id = friend.me().unwrap().id;
        amy.resolve_friend_request(id, FriendDecision::Accept)
            .await
            .unwrap();
        friend.refresh_contacts().await.unwrap();
    }
    let conversation = |client: &Client| {
        client
            .contacts()
            .unwrap()
            .friends
            .iter()
            .find(|f| f.user.id == amy_id)
            .unwrap()
            .conversation
    };
    let room = bob.create_room("同学会").await.unwrap();
    amy.join_room(room.id).await.unwrap();
    ming.join_room(room.id).await.unwrap();

    let to_bob = conversation(&bob);
    bob.send_text(
        to_bob,
        text("Are we still on for dinner tonight?", 14, [20, 20, 20]),
    )
    .await
    .unwrap();
    amy.send_text(
        to_bob,
        text("Yes! 7 pm at the noodle place.", 18, [30, 90, 200]),
    )
    .await
    .unwrap();
    bob.send_text(to_bob, text("Great, see you there", 14, [20, 20, 20]))
        .await
        .unwrap();
    let to_ming = conversation(&ming);
    ming.send_text(to_ming, text("你好！周末一起去爬山吗？", 20, [200, 40, 40]))
        .await
        .unwrap();
    amy.send_text(
        to_ming,
        text("好啊，我们几点出发？\nSee you at 8.", 16, [20, 120, 60]),
    )
    .await
    .unwrap();
    ming.send_file(to_ming, "sunset.png", &picture(), |_, _| {})
        .await
        .unwrap();
    ming.send_text(to_ming, text("上次拍的日落", 14, [90, 60, 160]))
        .await
        .unwrap();
    let to_carl = conversation(&carl);
    for line in [
        "Did you get the report?",
        "It is due tomorrow",
        "Call me when you can",
    ] {
        carl.send_text(to_carl, text(line, 14, [20, 20, 20]))
            .await
            .unwrap();
    }
    let group = room.conversation;
    bob.send_text(
        group,
        text("Reunion on Saturday, everyone in?", 14, [20, 20, 20]),
    )
    .await
    .unwrap();
    ming.send_text(group, text("我来！带蛋糕", 16, [200, 100, 0]))
        .await
        .unwrap();
    amy.logout().await.unwrap();
    drop(dana);
    println!("ready");
    // Friends stay online (green dots) until the script closes standard input.
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read(&mut [0u8; 1])).await;
}
