//! Property tests: messages and end-to-end bodies survive encoding and decoding, and arbitrary
//! bytes never decode into something that re-encodes differently.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use protocol::codec;
use protocol::e2e::{
    Body, Content, Envelope, ImageFormat, MessageContext, PairwiseKey, StyledText,
};
use protocol::message::*;
use protocol::{ClientMsgId, ConversationId, KeyPair, Seq, Timestamp, UserId};
use serde_bytes::ByteBuf;

fn bytes(max: usize) -> impl Strategy<Value = ByteBuf> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(ByteBuf::from)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            any::<String>(),
            any::<[u8; 32]>(),
            any::<([u8; 16], u32, u32, u32)>(),
            any::<String>(),
            0u8..=150,
            bytes(300)
        )
            .prop_map(
                |(
                    username,
                    auth_key,
                    (salt, memory_kib, iterations, parallelism),
                    email,
                    age,
                    public_key,
                )| {
                    Request::Register(Register {
                        username,
                        auth_key,
                        kdf: KdfParams {
                            salt,
                            cost: KdfCost {
                                memory_kib,
                                iterations,
                                parallelism,
                            },
                        },
                        email,
                        sex: Sex::Other,
                        age,
                        public_key,
                    })
                }
            ),
        (any::<String>(), any::<[u8; 32]>())
            .prop_map(|(username, auth_key)| Request::Login(Login { username, auth_key })),
        (any::<u64>(), any::<[u8; 16]>(), bytes(2048)).prop_map(|(c, id, envelope)| {
            Request::SendMessage(SendMessage {
                conversation: ConversationId(c),
                client_msg_id: ClientMsgId(id),
                envelope,
            })
        }),
        (
            prop::collection::vec((any::<u64>(), any::<u64>()), 0..20),
            any::<u32>()
        )
            .prop_map(|(cursors, limit)| Request::Sync {
                cursors: cursors
                    .into_iter()
                    .map(|(c, s)| Cursor {
                        conversation: ConversationId(c),
                        seq: Seq(s),
                    })
                    .collect(),
                limit,
            }),
        (any::<u64>(), any::<u64>(), bytes(4096)).prop_map(|(a, offset, data)| {
            Request::UploadChunk {
                attachment: protocol::AttachmentId(a),
                offset,
                data,
            }
        }),
        any::<String>().prop_map(|query| Request::SearchUsers { query }),
    ]
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            bytes(1024),
            any::<u64>()
        )
            .prop_map(
                |(c, s, sender, envelope, at)| ServerMessage::Event(Event::Message(
                    StoredMessage {
                        conversation: ConversationId(c),
                        seq: Seq(s),
                        sender: UserId(sender),
                        client_msg_id: ClientMsgId([1; 16]),
                        sent_at: Timestamp(at),
                        envelope,
                    }
                ))
            ),
        (any::<u64>(), any::<String>()).prop_map(|(id, message)| ServerMessage::Response {
            id,
            result: Err(Error {
                code: ErrorCode::InvalidField,
                message,
                fields: vec![FieldError {
                    field: Field::Username,
                    message: "taken".into(),
                }],
            }),
        }),
        (any::<u64>(), any::<u64>()).prop_map(|(id, nonce)| ServerMessage::Response {
            id,
            result: Ok(Response::Pong { nonce }),
        }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(id in any::<u64>(), body in request()) {
        let message = ClientMessage::Request { id, body };
        let encoded = codec::encode(&message).unwrap();
        prop_assert_eq!(codec::decode::<ClientMessage>(&encoded).unwrap(), message);
    }

    #[test]
    fn server_messages_round_trip(message in server_message()) {
        let encoded = codec::encode(&message).unwrap();
        prop_assert_eq!(codec::decode::<ServerMessage>(&encoded).unwrap(), message);
    }

    #[test]
    fn whatever_decodes_re_encodes_to_the_same_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(message) = codec::decode::<ClientMessage>(&data) {
            prop_assert_eq!(codec::encode(&message).unwrap(), data);
        }
    }

    #[test]
    fn truncated_messages_never_decode(body in request(), cut in any::<prop::sample::Index>()) {
        let encoded = codec::encode(&ClientMessage::Request { id: 1, body }).unwrap();
        let cut = cut.index(encoded.len());
        prop_assert!(codec::decode::<ClientMessage>(&encoded[..cut]).is_err());
    }

    #[test]
    fn bodies_round_trip_end_to_end(text in any::<String>(), size in 6u8..72, color in any::<[u8; 3]>(),
                                    image in prop::collection::vec(any::<u8>(), 0..2048)) {
        let alice = KeyPair::from_secret(&[0x11; 32]).unwrap();
        let bob = KeyPair::from_secret(&[0x22; 32]).unwrap();
        let to_bob = PairwiseKey::derive(&alice, UserId(1), bob.public(), UserId(2));
        let from_alice = PairwiseKey::derive(&bob, UserId(2), alice.public(), UserId(1));
        let context = MessageContext {
            conversation: ConversationId(5),
            sender: UserId(1),
            client_msg_id: ClientMsgId([9; 16]),
        };
        for body in [
            Body::Text(StyledText { text: text.clone(), font_size: size, color }),
            Body::Image {
                name: text.clone(),
                format: ImageFormat::Png,
                content: Content::Inline(ByteBuf::from(image.clone())),
            },
        ] {
            let envelope = Envelope::seal_direct(&to_bob, &context, &body).unwrap();
            let envelope = Envelope::decode(&envelope.encode().unwrap()).unwrap();
            prop_assert_eq!(envelope.open(&context, UserId(2), &from_alice).unwrap(), body);
        }
    }
}
