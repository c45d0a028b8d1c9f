//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry points the fuzz
//! targets use, so an input that once crashed stays fixed without running a fuzzer in CI.
//!
//! `UCHAT_WRITE_SEEDS=1 cargo test -p protocol --test fuzz_corpus` (re)writes the seed files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use protocol::codec;
use protocol::frame::{DEFAULT_MAX_FRAME_LEN, FrameSealer};
use protocol::fuzzing;
use protocol::handshake::{ClientHandshake, NONCE_LEN, server_respond};
use protocol::message::{ClientMessage, Request};
use protocol::{KeyPair, ServerIdentity};

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Every golden fixture's encoded message, as raw bytes.
fn fixture_messages() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let (_, hex) = line.split_once(' ').unwrap();
            out.push(hex::decode(hex).unwrap());
        }
    }
    out
}

/// The encoded messages of one golden fixture file.
fn fixture(name: &str) -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.hex"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| hex::decode(line.split_once(' ').unwrap().1).unwrap())
        .collect()
}

fn write_seeds() {
    let messages = fixture_messages();
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for (i, message) in messages.iter().enumerate() {
        write("message", format!("seed-{i:03}"), message);
    }
    let mut sealer = FrameSealer::new(&fuzzing::frame_keys(), DEFAULT_MAX_FRAME_LEN);
    let mut stream = Vec::new();
    for (i, message) in messages.iter().enumerate().take(8) {
        let mut frame = Vec::new();
        // Each seed opens with a fresh opener, so each is sealed as the first frame (seq 0).
        FrameSealer::new(&fuzzing::frame_keys(), DEFAULT_MAX_FRAME_LEN)
            .seal_into(message, &mut frame)
            .unwrap();
        write("frame", format!("seed-{i:03}"), &frame);
        sealer.seal_into(message, &mut stream).unwrap();
    }
    write("frame", "seed-stream".into(), &stream);

    // Every request variant, as a logged-in client sends it.
    for (i, body) in fixture("request").iter().enumerate() {
        let body: Request = codec::decode(body).unwrap();
        let message = ClientMessage::Request { id: i as u64, body };
        write(
            "request",
            format!("seed-{i:03}"),
            &codec::encode(&message).unwrap(),
        );
    }

    let identity = ServerIdentity::new(KeyPair::from_secret(&[8; 32]).unwrap(), "fuzz", 0);
    let client = ClientHandshake::with_key(
        KeyPair::from_secret(&[7; 32]).unwrap(),
        [0; NONCE_LEN],
        None,
    );
    let ephemeral = KeyPair::from_secret(&[9; 32]).unwrap();
    let (flight, _) =
        server_respond(&identity, &ephemeral, [0; NONCE_LEN], client.hello()).unwrap();
    write("handshake", "seed-client-hello".into(), client.hello());
    write("handshake", "seed-server-flight".into(), &flight);
    write(
        "handshake",
        "seed-certificate".into(),
        identity.encoded_certificate(),
    );
}

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = corpus(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    count
}

#[test]
fn the_corpus_replays_without_a_panic() {
    if std::env::var_os("UCHAT_WRITE_SEEDS").is_some() {
        write_seeds();
    }
    assert!(replay("frame", fuzzing::frame) >= 9);
    assert!(replay("handshake", fuzzing::handshake) >= 3);
    assert!(replay("message", fuzzing::message) >= 10);
    assert!(replay("request", fuzzing::request) >= 20);
}

#[test]
fn seeds_are_what_they_claim_to_be() {
    // The frame seeds must really open, or the fuzzer starts from nothing useful.
    let seed = std::fs::read(corpus("frame").join("seed-000")).unwrap();
    let mut opener =
        protocol::frame::FrameOpener::new(&fuzzing::frame_keys(), DEFAULT_MAX_FRAME_LEN);
    let plain = opener
        .open(&mut bytes::BytesMut::from(&seed[..]))
        .unwrap()
        .unwrap();
    assert!(!plain.is_empty());
    let hello = std::fs::read(corpus("handshake").join("seed-client-hello")).unwrap();
    protocol::handshake::ClientHello::decode(&hello).unwrap();
    let message = std::fs::read(corpus("message").join("seed-000")).unwrap();
    assert!(codec::decode::<protocol::e2e::Body>(&message).is_ok());
    let request = std::fs::read(corpus("request").join("seed-000")).unwrap();
    assert!(codec::decode::<ClientMessage>(&request).is_ok());
}
