//! Frame properties: round trips, and every kind of tampering is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use bytes::BytesMut;
use proptest::prelude::*;
use protocol::FrameError;
use protocol::frame::{DEFAULT_MAX_FRAME_LEN, FrameOpener, FrameSealer, HEADER_LEN};
use protocol::handshake::DirectionKeys;

fn keys() -> DirectionKeys {
    DirectionKeys {
        enc: [0x42; 32],
        mac: [0x24; 32],
    }
}

fn endpoints() -> (FrameSealer, FrameOpener) {
    (
        FrameSealer::new(&keys(), DEFAULT_MAX_FRAME_LEN),
        FrameOpener::new(&keys(), DEFAULT_MAX_FRAME_LEN),
    )
}

fn seal_all(sealer: &mut FrameSealer, messages: &[&[u8]]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|m| {
            let mut out = Vec::new();
            sealer.seal_into(m, &mut out).unwrap();
            out
        })
        .collect()
}

fn open_one(opener: &mut FrameOpener, wire: &[u8]) -> Result<Option<BytesMut>, FrameError> {
    opener.open(&mut BytesMut::from(wire))
}

proptest! {
    #[test]
    fn any_sequence_round_trips_whatever_the_read_sizes(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..12),
        cut in 1usize..97,
    ) {
        let (mut sealer, mut opener) = endpoints();
        let mut wire = Vec::new();
        for m in &messages {
            sealer.seal_into(m, &mut wire).unwrap();
        }
        // Feed the stream in pieces of `cut` bytes, as a socket might deliver it.
        let mut buf = BytesMut::new();
        let mut opened = Vec::new();
        for piece in wire.chunks(cut) {
            buf.extend_from_slice(piece);
            while let Some(plain) = opener.open(&mut buf).unwrap() {
                opened.push(plain.to_vec());
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(opened, messages);
    }

    #[test]
    fn flipping_any_bit_is_refused(
        message in prop::collection::vec(any::<u8>(), 0..100),
        index in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (mut sealer, mut opener) = endpoints();
        let mut wire = Vec::new();
        sealer.seal_into(&message, &mut wire).unwrap();
        let at = index.index(wire.len());
        wire[at] ^= 1 << bit;
        // A flipped length may also just ask for more bytes; it must never yield plaintext.
        prop_assert!(!matches!(open_one(&mut opener, &wire), Ok(Some(_))));
    }
}

#[test]
fn flipping_every_byte_of_a_frame_is_refused() {
    let (mut sealer, _) = endpoints();
    let mut wire = Vec::new();
    sealer
        .seal_into(b"a message of some length", &mut wire)
        .unwrap();
    for at in 0..wire.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut bad = wire.clone();
            bad[at] ^= mask;
            let (_, mut opener) = endpoints();
            assert!(
                !matches!(open_one(&mut opener, &bad), Ok(Some(_))),
                "byte {at} mask {mask:#x}"
            );
        }
    }
}

#[test]
fn replayed_frames_are_refused() {
    let (mut sealer, mut opener) = endpoints();
    let frames = seal_all(&mut sealer, &[b"one", b"two"]);
    assert!(open_one(&mut opener, &frames[0]).unwrap().is_some());
    assert_eq!(
        open_one(&mut opener, &frames[0]).unwrap_err(),
        FrameError::BadDigest
    );
}

#[test]
fn reordered_frames_are_refused() {
    let (mut sealer, mut opener) = endpoints();
    let frames = seal_all(&mut sealer, &[b"one", b"two"]);
    assert_eq!(
        open_one(&mut opener, &frames[1]).unwrap_err(),
        FrameError::BadDigest
    );
}

#[test]
fn dropped_frames_are_refused() {
    let (mut sealer, mut opener) = endpoints();
    let frames = seal_all(&mut sealer, &[b"one", b"two", b"three"]);
    assert!(open_one(&mut opener, &frames[0]).unwrap().is_some());
    assert_eq!(
        open_one(&mut opener, &frames[2]).unwrap_err(),
        FrameError::BadDigest
    );
}

#[test]
fn frames_from_the_other_direction_are_refused() {
    let c2s = keys();
    let s2c = DirectionKeys {
        enc: [0x43; 32],
        mac: [0x25; 32],
    };
    let mut server_sealer = FrameSealer::new(&s2c, DEFAULT_MAX_FRAME_LEN);
    let mut server_opener = FrameOpener::new(&c2s, DEFAULT_MAX_FRAME_LEN);
    let reflected = seal_all(&mut server_sealer, &[b"hi"]);
    assert_eq!(
        open_one(&mut server_opener, &reflected[0]).unwrap_err(),
        FrameError::BadDigest
    );
}

#[test]
fn truncated_frames_wait_for_more_and_never_decrypt() {
    let (mut sealer, mut opener) = endpoints();
    let frames = seal_all(&mut sealer, &[b"complete"]);
    for len in 0..frames[0].len() {
        assert_eq!(open_one(&mut opener, &frames[0][..len]).unwrap(), None);
    }
}

#[test]
fn oversized_frames_are_refused_before_allocation() {
    let (_, mut opener) = endpoints();
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    header[4] = 16;
    let mut buf = BytesMut::from(&header[..]);
    let capacity = buf.capacity();
    assert!(matches!(
        opener.open(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
    assert_eq!(buf.capacity(), capacity, "nothing was reserved");
}

#[test]
fn a_frame_at_the_limit_is_accepted_and_one_block_more_is_not() {
    let max = 4096;
    let mut sealer = FrameSealer::new(&keys(), max);
    let mut opener = FrameOpener::new(&keys(), max);
    let mut wire = Vec::new();
    sealer.seal_into(&vec![1; max - 1], &mut wire).unwrap();
    assert_eq!(
        open_one(&mut opener, &wire).unwrap().unwrap().len(),
        max - 1
    );

    let mut big_sealer = FrameSealer::new(&keys(), max + 16);
    let mut wire = Vec::new();
    big_sealer.seal_into(&vec![1; max], &mut wire).unwrap();
    let mut opener = FrameOpener::new(&keys(), max);
    assert!(matches!(
        open_one(&mut opener, &wire),
        Err(FrameError::TooLarge { .. })
    ));
}
