//! The worked examples of `docs/PROTOCOL.md`, recomputed from the code and compared with the
//! document, so the specification cannot drift from the implementation.
//!
//! After an intended change, `UCHAT_UPDATE_VECTORS=1 cargo test -p protocol --test vectors`
//! rewrites the block between the `vectors` markers in the document.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use bytes::BytesMut;
use protocol::codec;
use protocol::crypto::dh::prime_bytes;
use protocol::e2e::{
    Body, ContentKey, MessageContext, PairwiseKey, StyledText, fixed, safety_number,
};
use protocol::frame::DEFAULT_MAX_FRAME_LEN;
use protocol::handshake::{ClientHandshake, server_respond};
use protocol::message::{ClientMessage, Request, Response, ServerMessage};
use protocol::{ClientMsgId, ConversationId, KeyPair, ServerIdentity, UserId};

const BEGIN: &str = "<!-- vectors:begin -->";
const END: &str = "<!-- vectors:end -->";

/// The password of the account example.
const ACCOUNT_PASSWORD: &str = "correct horse 电池";

fn counting(from: u8) -> [u8; 32] {
    std::array::from_fn(|i| from.wrapping_add(i as u8))
}

/// Every value of the worked example, in the document's order.
fn compute() -> Vec<(&'static str, Vec<u8>)> {
    let client_secret = counting(0x01);
    let server_static_secret = counting(0x21);
    let server_ephemeral_secret = counting(0x41);
    let client_nonce = [0xa1; 32];
    let server_nonce = [0xb2; 32];

    let client_key = KeyPair::from_secret(&client_secret).unwrap();
    let server_static = KeyPair::from_secret(&server_static_secret).unwrap();
    let server_ephemeral = KeyPair::from_secret(&server_ephemeral_secret).unwrap();
    let identity = ServerIdentity::new(
        KeyPair::from_secret(&server_static_secret).unwrap(),
        "uchat-test",
        1_700_000_000,
    );
    let e_c = client_key.public().as_bytes().to_vec();
    let z_ephemeral = client_key.agree(server_ephemeral.public());
    let z_static = client_key.agree(server_static.public());

    let client = ClientHandshake::with_key(client_key, client_nonce, Some(identity.fingerprint()));
    let client_hello = client.hello().to_vec();
    let (flight, server_keys) =
        server_respond(&identity, &server_ephemeral, server_nonce, &client_hello).unwrap();
    let established = client.finish(&flight).unwrap();
    assert_eq!(
        established.keys.client_to_server.enc,
        server_keys.client_to_server.enc
    );

    let request = codec::encode(&ClientMessage::Request {
        id: 1,
        body: Request::Ping { nonce: 42 },
    })
    .unwrap();
    let response = codec::encode(&ServerMessage::Response {
        id: 1,
        result: Ok(Response::Pong { nonce: 42 }),
    })
    .unwrap();
    let (mut c2s, _) = established.keys.client_codec(DEFAULT_MAX_FRAME_LEN);
    let (mut s2c, _) = server_keys.server_codec(DEFAULT_MAX_FRAME_LEN);
    let iv_a: [u8; 16] = std::array::from_fn(|i| i as u8);
    let iv_b: [u8; 16] = std::array::from_fn(|i| 0x10 + i as u8);
    let mut c2s_frame_0 = Vec::new();
    c2s.seal_with_iv(&request, &iv_a, &mut c2s_frame_0).unwrap();
    let mut c2s_frame_1 = Vec::new();
    c2s.seal_with_iv(&request, &iv_a, &mut c2s_frame_1).unwrap();
    let mut s2c_frame_0 = Vec::new();
    s2c.seal_with_iv(&response, &iv_b, &mut s2c_frame_0)
        .unwrap();

    // The frames open on the other side, in order.
    let (_, mut server_opener) = server_keys.server_codec(DEFAULT_MAX_FRAME_LEN);
    let mut wire = BytesMut::from(&[c2s_frame_0.clone(), c2s_frame_1.clone()].concat()[..]);
    assert_eq!(
        &server_opener.open(&mut wire).unwrap().unwrap()[..],
        &request[..]
    );
    assert_eq!(
        &server_opener.open(&mut wire).unwrap().unwrap()[..],
        &request[..]
    );

    // End-to-end: users 1 and 2 with the client's and server's static secrets as their keys.
    let alice = KeyPair::from_secret(&client_secret).unwrap();
    let bob = KeyPair::from_secret(&server_static_secret).unwrap();
    let pairwise = PairwiseKey::derive(&alice, UserId(1), bob.public(), UserId(2));
    let safety = safety_number((UserId(1), alice.public()), (UserId(2), bob.public()));

    // Sealed messages from user 1: one-to-one to user 2 in conversation 7; to a group of users
    // 1 and 2 in conversation 9; and the first chunk of an attachment. The third user of the
    // examples has the server's ephemeral secret as key.
    let body = Body::Text(StyledText {
        text: "hi 你好".into(),
        font_size: 14,
        color: [200, 30, 30],
    });
    let client_msg_id = ClientMsgId([0x11; 16]);
    let direct_context = MessageContext {
        conversation: ConversationId(7),
        sender: UserId(1),
        client_msg_id,
    };
    let direct = fixed::seal_direct(&pairwise, &direct_context, &body, [0xc0; 16]).unwrap();
    let carol = KeyPair::from_secret(&server_ephemeral_secret).unwrap();
    let pairwise_1_3 = PairwiseKey::derive(&alice, UserId(1), carol.public(), UserId(3));
    let content_key_bytes: [u8; 64] = std::array::from_fn(|i| 0x70 + i as u8);
    let content_key = ContentKey::from_bytes(&content_key_bytes);
    let group_context = MessageContext {
        conversation: ConversationId(9),
        ..direct_context
    };
    let group = fixed::seal_group(
        &group_context,
        &body,
        &content_key,
        [0xd0; 16],
        &[
            (UserId(2), &pairwise, [0xd2; 16]),
            (UserId(3), &pairwise_1_3, [0xd3; 16]),
        ],
    )
    .unwrap();
    let chunk = fixed::seal_chunk(&content_key, 0, b"the first chunk", [0xe0; 16]);
    // What the examples seal opens on the other side.
    let bob_side = PairwiseKey::derive(&bob, UserId(2), alice.public(), UserId(1));
    assert_eq!(
        direct.open(&direct_context, UserId(2), &bob_side).unwrap(),
        body
    );
    assert_eq!(
        group.open(&group_context, UserId(2), &bob_side).unwrap(),
        body
    );
    let carol_side = PairwiseKey::derive(&carol, UserId(3), alice.public(), UserId(1));
    assert_eq!(
        group.open(&group_context, UserId(3), &carol_side).unwrap(),
        body
    );
    assert_eq!(
        content_key.open_chunk(0, &chunk).unwrap(),
        b"the first chunk"
    );

    // Account keys (protocol 2) of user 1, whose private key is the client secret above, at a
    // deliberately tiny cost so any implementation recomputes them at once.
    let account_params = protocol::password::KdfParams {
        salt: std::array::from_fn(|i| 0x90 + i as u8),
        cost: protocol::password::KdfCost {
            memory_kib: 64,
            iterations: 2,
            parallelism: 1,
        },
    };
    let (master, auth_key, wrap_key) =
        protocol::password::fixed::keys(ACCOUNT_PASSWORD, &account_params);
    let wrapped = protocol::password::fixed::wrap(
        ACCOUNT_PASSWORD,
        &account_params,
        UserId(1),
        1,
        &alice,
        [0xf0; 16],
    );

    let keys = &established.keys;
    vec![
        ("p", prime_bytes().to_vec()),
        ("client_secret", client_secret.to_vec()),
        ("client_nonce", client_nonce.to_vec()),
        ("server_static_secret", server_static_secret.to_vec()),
        ("server_ephemeral_secret", server_ephemeral_secret.to_vec()),
        ("server_nonce", server_nonce.to_vec()),
        ("e_c", e_c),
        ("e_s", server_ephemeral.public().as_bytes().to_vec()),
        ("S", server_static.public().as_bytes().to_vec()),
        ("certificate", identity.encoded_certificate().to_vec()),
        ("fingerprint", identity.fingerprint().0.to_vec()),
        ("client_hello", client_hello),
        ("server_flight", flight),
        ("dh_ephemeral", z_ephemeral.as_bytes().to_vec()),
        ("dh_static", z_static.as_bytes().to_vec()),
        ("c2s_enc", keys.client_to_server.enc.to_vec()),
        ("c2s_mac", keys.client_to_server.mac.to_vec()),
        ("s2c_enc", keys.server_to_client.enc.to_vec()),
        ("s2c_mac", keys.server_to_client.mac.to_vec()),
        ("ping_plaintext", request),
        ("c2s_frame_seq0", c2s_frame_0),
        ("c2s_frame_seq1", c2s_frame_1),
        ("pong_plaintext", response),
        ("s2c_frame_seq0", s2c_frame_0),
        ("e2e_pairwise_1_2", pairwise.to_bytes().to_vec()),
        ("e2e_safety_number_1_2", safety.into_bytes()),
        ("e2e_pairwise_1_3", pairwise_1_3.to_bytes().to_vec()),
        ("e2e_body", codec::encode(&body).unwrap()),
        ("e2e_direct_envelope", direct.encode().unwrap()),
        ("e2e_content_key", content_key_bytes.to_vec()),
        ("account_password", ACCOUNT_PASSWORD.as_bytes().to_vec()),
        (
            "account_kdf_params",
            codec::encode(&account_params).unwrap(),
        ),
        ("account_master_key", master.to_vec()),
        ("account_auth_key", auth_key.to_vec()),
        ("account_wrap_key", wrap_key.to_vec()),
        ("account_wrapped_key", codec::encode(&wrapped).unwrap()),
        ("e2e_group_envelope", group.encode().unwrap()),
        ("e2e_chunk_0", chunk),
    ]
}

fn render(values: &[(&str, Vec<u8>)]) -> String {
    let mut out = String::from("```text\n");
    for (name, value) in values {
        out.push_str(&format!("{name} ({} bytes):\n", value.len()));
        if name.starts_with("e2e_safety") {
            out.push_str(&format!("  \"{}\"\n", String::from_utf8_lossy(value)));
            continue;
        }
        for line in value.chunks(32) {
            out.push_str(&format!("  {}\n", hex::encode(line)));
        }
    }
    out.push_str("```\n");
    out
}

fn document() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md")
}

#[test]
fn the_document_vectors_match_the_code() {
    let rendered = render(&compute());
    let path = document();
    let doc = std::fs::read_to_string(&path).unwrap();
    let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("{} has no {BEGIN} … {END} block", path.display());
    };
    let block_start = begin + BEGIN.len() + 1;
    if std::env::var_os("UCHAT_UPDATE_VECTORS").is_some() {
        let updated = format!("{}{}{}", &doc[..block_start], rendered, &doc[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    let in_doc = &doc[block_start..end];
    for (line, (expected, actual)) in in_doc.lines().zip(rendered.lines()).enumerate() {
        assert_eq!(
            expected,
            actual,
            "docs/PROTOCOL.md vectors, line {}",
            line + 1
        );
    }
    assert_eq!(in_doc.lines().count(), rendered.lines().count());
}
