//! End-to-end encryption of message content: the server stores envelopes it cannot open.
//!
//! Every user has a long-term Diffie-Hellman key pair in the `ffdhe2048` group. Two users share a
//! pairwise key derived from `DH(a, B)`:
//!
//! ```text
//! pairwise = HKDF-SHA256(salt = "uchat e2e v1", IKM = DH(a, B) (256 bytes BE),
//!                        info = "uchat e2e v1 pairwise" || low id u64 BE || high id u64 BE)
//!            → 64 bytes: enc key [32] || mac key [32]
//!
//! sealed body  = iv [16], ciphertext = AES-256-CBC(enc, iv, bincode(Body)),
//!                mac = HMAC-MD5(mac, "uchat-e2e-v1 body" || conversation u64 BE ||
//!                               sender u64 BE || client_msg_id [16] || iv || ciphertext)
//! group wrap   = for each member r: iv_r, wrapped = AES-256-CBC(pairwise(sender, r).enc, iv_r,
//!                content key [64]), mac = HMAC-MD5(pairwise(sender, r).mac,
//!                "uchat-e2e-v1 wrap" || conversation || sender || client_msg_id ||
//!                r u64 BE || body mac || iv_r || wrapped)
//! ```
//!
//! One-to-one messages seal the body with the pairwise key. Group messages seal it once with a
//! fresh random content key and wrap that key for each member; the wrap's MAC covers the body's
//! MAC, so one member cannot pass off another body under the sender's name. The sender includes
//! itself among the recipients, so its other sessions can read what it sent.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec;
use crate::crypto::cipher::{BLOCK_LEN, DecryptKey, EncryptKey, random_iv};
use crate::crypto::dh::{KeyPair, PublicKey};
use crate::crypto::kdf::{E2E_PAIRWISE_INFO, E2E_PAIRWISE_SALT, Prk};
use crate::crypto::mac::{MacKey, TAG_LEN};
use crate::error::{E2eError, EnvelopeError};
use crate::ids::{AttachmentId, ClientMsgId, ConversationId, UserId};

const BODY_LABEL: &[u8] = b"uchat-e2e-v1 body";
const WRAP_LABEL: &[u8] = b"uchat-e2e-v1 wrap";
const CHUNK_LABEL: &[u8] = b"uchat-e2e-v1 chunk";
const SAFETY_LABEL: &[u8] = b"uchat safety number v1";

/// Length of a content key: AES-256 key and HMAC-MD5 key.
pub const CONTENT_KEY_LEN: usize = 64;

/// Plaintext bytes per attachment chunk; a sealed chunk is then exactly 256 KiB.
pub const ATTACHMENT_CHUNK_PLAINTEXT: usize = 256 * 1024 - 2 * BLOCK_LEN - TAG_LEN;

/// Bytes a sealed chunk adds to its plaintext at most: IV, one block of padding, MAC.
pub const CHUNK_OVERHEAD: usize = BLOCK_LEN + BLOCK_LEN + TAG_LEN;

/// An encryption key and a MAC key, used together.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ContentKey {
    enc: [u8; 32],
    mac: [u8; 32],
}

impl ContentKey {
    /// Makes a fresh random key from the operating system's random source.
    pub fn generate() -> Result<Self, E2eError> {
        let mut bytes = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|_| E2eError::Random)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Rebuilds a key from its 64 bytes (`enc || mac`).
    pub fn from_bytes(bytes: &[u8; CONTENT_KEY_LEN]) -> Self {
        let (enc, mac) = bytes.split_at(32);
        let mut key = Self {
            enc: [0; 32],
            mac: [0; 32],
        };
        key.enc.copy_from_slice(enc);
        key.mac.copy_from_slice(mac);
        key
    }

    /// Returns the 64 bytes (`enc || mac`).
    pub fn to_bytes(&self) -> Zeroizing<[u8; CONTENT_KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
        let (enc, mac) = out.split_at_mut(32);
        enc.copy_from_slice(&self.enc);
        mac.copy_from_slice(&self.mac);
        out
    }

    pub(crate) fn seal_iv(
        &self,
        label: &[u8],
        context: &[&[u8]],
        plaintext: &[u8],
        iv: [u8; BLOCK_LEN],
    ) -> Sealed {
        let ciphertext = EncryptKey::new(&self.enc).encrypt(&iv, plaintext);
        let mac = self.tag(label, context, &iv, &ciphertext);
        Sealed {
            iv,
            ciphertext: ByteBuf::from(ciphertext),
            mac,
        }
    }

    pub(crate) fn open(
        &self,
        label: &[u8],
        context: &[&[u8]],
        sealed: &Sealed,
    ) -> Result<Vec<u8>, E2eError> {
        let expected = self.tag(label, context, &sealed.iv, &sealed.ciphertext);
        if !crate::crypto::mac::ct_eq(&expected, &sealed.mac) {
            return Err(E2eError::BadMac);
        }
        DecryptKey::new(&self.enc)
            .decrypt(&sealed.iv, &sealed.ciphertext)
            .ok_or(E2eError::Malformed)
    }

    fn tag(
        &self,
        label: &[u8],
        context: &[&[u8]],
        iv: &[u8; BLOCK_LEN],
        ciphertext: &[u8],
    ) -> [u8; TAG_LEN] {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(context.len() + 3);
        parts.push(label);
        parts.extend_from_slice(context);
        parts.push(iv);
        parts.push(ciphertext);
        MacKey::new(&self.mac).tag(&parts)
    }

    /// Seals one attachment chunk: `iv [16] || ciphertext || mac [16]`, the MAC binding the
    /// chunk's index so chunks cannot be reordered.
    pub fn seal_chunk(&self, index: u64, plaintext: &[u8]) -> Vec<u8> {
        self.seal_chunk_iv(index, plaintext, random_iv())
    }

    fn seal_chunk_iv(&self, index: u64, plaintext: &[u8], iv: [u8; BLOCK_LEN]) -> Vec<u8> {
        let sealed = self.seal_iv(CHUNK_LABEL, &[&index.to_be_bytes()], plaintext, iv);
        let mut out = Vec::with_capacity(BLOCK_LEN + sealed.ciphertext.len() + TAG_LEN);
        out.extend_from_slice(&sealed.iv);
        out.extend_from_slice(&sealed.ciphertext);
        out.extend_from_slice(&sealed.mac);
        out
    }

    /// Opens a chunk made by [`ContentKey::seal_chunk`] with the same index.
    pub fn open_chunk(&self, index: u64, chunk: &[u8]) -> Result<Vec<u8>, E2eError> {
        let (iv, rest) = chunk
            .split_first_chunk::<BLOCK_LEN>()
            .ok_or(E2eError::Malformed)?;
        let (ciphertext, mac) = rest
            .split_last_chunk::<TAG_LEN>()
            .ok_or(E2eError::Malformed)?;
        let sealed = Sealed {
            iv: *iv,
            ciphertext: ByteBuf::from(ciphertext.to_vec()),
            mac: *mac,
        };
        self.open(CHUNK_LABEL, &[&index.to_be_bytes()], &sealed)
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

/// The key two users share, derived from their long-term key pairs.
#[derive(Clone, PartialEq, Eq)]
pub struct PairwiseKey(ContentKey);

impl PairwiseKey {
    /// Derives the key between `me` (holding `mine`) and `them` (whose public key is
    /// `theirs`). Both sides derive the same key. One modular exponentiation: cache it.
    pub fn derive(mine: &KeyPair, me: UserId, theirs: &PublicKey, them: UserId) -> Self {
        let shared = mine.agree(theirs);
        let (low, high) = if me <= them { (me, them) } else { (them, me) };
        let prk = Prk::extract(E2E_PAIRWISE_SALT, &[shared.as_bytes()]);
        let okm: Zeroizing<[u8; CONTENT_KEY_LEN]> = Zeroizing::new(prk.expand(&[
            E2E_PAIRWISE_INFO,
            &low.0.to_be_bytes(),
            &high.0.to_be_bytes(),
        ]));
        Self(ContentKey::from_bytes(&okm))
    }
}

impl PairwiseKey {
    /// Returns the derived 64 bytes (`enc || mac`), for test vectors.
    pub fn to_bytes(&self) -> Zeroizing<[u8; CONTENT_KEY_LEN]> {
        self.0.to_bytes()
    }
}

impl std::fmt::Debug for PairwiseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairwiseKey(..)")
    }
}

/// What a message is bound to: the MACs cover these, so an envelope cannot be replayed into
/// another conversation or under another sender or id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageContext {
    /// The conversation.
    pub conversation: ConversationId,
    /// The sender.
    pub sender: UserId,
    /// The sender's id for the message.
    pub client_msg_id: ClientMsgId,
}

impl MessageContext {
    fn parts(&self) -> [[u8; 8]; 2] {
        [
            self.conversation.0.to_be_bytes(),
            self.sender.0.to_be_bytes(),
        ]
    }
}

/// Ciphertext with its IV and MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The CBC IV.
    pub iv: [u8; BLOCK_LEN],
    /// The ciphertext.
    pub ciphertext: ByteBuf,
    /// HMAC-MD5 over the label, context, IV and ciphertext.
    pub mac: [u8; TAG_LEN],
}

/// A group message's content key, wrapped for one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The member who can unwrap it.
    pub recipient: UserId,
    /// The CBC IV.
    pub iv: [u8; BLOCK_LEN],
    /// The content key, encrypted with the sender-recipient pairwise key.
    pub wrapped: ByteBuf,
    /// HMAC-MD5 over the wrap (see the module docs).
    pub mac: [u8; TAG_LEN],
}

/// What the server stores for a message: opaque to it. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Envelope {
    /// A one-to-one message, sealed with the pairwise key.
    Direct(Sealed),
    /// A group message, sealed with a content key wrapped for each member.
    Group {
        /// The body, sealed with the content key.
        body: Sealed,
        /// The content key for each member.
        keys: Vec<WrappedKey>,
    },
}

impl Envelope {
    /// Seals a one-to-one message.
    pub fn seal_direct(
        key: &PairwiseKey,
        context: &MessageContext,
        body: &Body,
    ) -> Result<Self, E2eError> {
        Self::seal_direct_iv(key, context, body, random_iv())
    }

    fn seal_direct_iv(
        key: &PairwiseKey,
        context: &MessageContext,
        body: &Body,
        iv: [u8; BLOCK_LEN],
    ) -> Result<Self, E2eError> {
        let plain = Zeroizing::new(codec::encode(body)?);
        let parts = context.parts();
        let sealed = key.0.seal_iv(
            BODY_LABEL,
            &[&parts[0], &parts[1], &context.client_msg_id.0],
            &plain,
            iv,
        );
        Ok(Self::Direct(sealed))
    }

    /// Seals a group message for `recipients`, each with the pairwise key between the sender
    /// and that member (include the sender itself).
    pub fn seal_group(
        context: &MessageContext,
        body: &Body,
        recipients: &[(UserId, PairwiseKey)],
    ) -> Result<Self, E2eError> {
        let content_key = ContentKey::generate()?;
        let recipients: Vec<_> = recipients
            .iter()
            .map(|(user, key)| (*user, key, random_iv()))
            .collect();
        Self::seal_group_iv(context, body, &content_key, random_iv(), &recipients)
    }

    fn seal_group_iv(
        context: &MessageContext,
        body: &Body,
        content_key: &ContentKey,
        body_iv: [u8; BLOCK_LEN],
        recipients: &[(UserId, &PairwiseKey, [u8; BLOCK_LEN])],
    ) -> Result<Self, E2eError> {
        let plain = Zeroizing::new(codec::encode(body)?);
        let parts = context.parts();
        let body = content_key.seal_iv(
            BODY_LABEL,
            &[&parts[0], &parts[1], &context.client_msg_id.0],
            &plain,
            body_iv,
        );
        let key_bytes = content_key.to_bytes();
        let keys = recipients
            .iter()
            .map(|(recipient, pairwise, iv)| {
                let recipient_bytes = recipient.0.to_be_bytes();
                let sealed = pairwise.0.seal_iv(
                    WRAP_LABEL,
                    &[
                        &parts[0],
                        &parts[1],
                        &context.client_msg_id.0,
                        &recipient_bytes,
                        &body.mac,
                    ],
                    key_bytes.as_slice(),
                    *iv,
                );
                WrappedKey {
                    recipient: *recipient,
                    iv: sealed.iv,
                    wrapped: sealed.ciphertext,
                    mac: sealed.mac,
                }
            })
            .collect();
        Ok(Self::Group { body, keys })
    }

    /// Opens the envelope as `reader`, with the pairwise key between `reader` and the sender.
    pub fn open(
        &self,
        context: &MessageContext,
        reader: UserId,
        with_sender: &PairwiseKey,
    ) -> Result<Body, E2eError> {
        let parts = context.parts();
        let body_context: [&[u8]; 3] = [&parts[0], &parts[1], &context.client_msg_id.0];
        let plain = match self {
            Self::Direct(sealed) => {
                Zeroizing::new(with_sender.0.open(BODY_LABEL, &body_context, sealed)?)
            }
            Self::Group { body, keys } => {
                let wrapped = keys
                    .iter()
                    .find(|k| k.recipient == reader)
                    .ok_or(E2eError::NotARecipient(reader.0))?;
                let reader_bytes = reader.0.to_be_bytes();
                let key_bytes = Zeroizing::new(with_sender.0.open(
                    WRAP_LABEL,
                    &[
                        &parts[0],
                        &parts[1],
                        &context.client_msg_id.0,
                        &reader_bytes,
                        &body.mac,
                    ],
                    &Sealed {
                        iv: wrapped.iv,
                        ciphertext: wrapped.wrapped.clone(),
                        mac: wrapped.mac,
                    },
                )?);
                let key_bytes: &[u8; CONTENT_KEY_LEN] = key_bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| E2eError::Malformed)?;
                let content_key = ContentKey::from_bytes(key_bytes);
                Zeroizing::new(content_key.open(BODY_LABEL, &body_context, body)?)
            }
        };
        Ok(codec::decode(&plain)?)
    }

    /// What `reader` needs of this envelope: a group message's body with only the content key
    /// wrapped for `reader` (none if it was not sealed for them); a one-to-one message whole.
    /// Each wrap is sealed on its own and binds the body's MAC, so the copy opens for `reader`
    /// exactly as the whole envelope does; it leaves out only the keys others unwrap, which
    /// would make every copy grow with the group (128 bytes a member).
    pub fn for_reader(&self, reader: UserId) -> Self {
        match self {
            Self::Direct(sealed) => Self::Direct(sealed.clone()),
            Self::Group { body, keys } => Self::Group {
                body: body.clone(),
                keys: keys
                    .iter()
                    .filter(|k| k.recipient == reader)
                    .cloned()
                    .collect(),
            },
        }
    }

    /// Encodes the envelope for [`SendMessage`](crate::message::SendMessage).
    pub fn encode(&self) -> Result<Vec<u8>, E2eError> {
        Ok(codec::encode(self)?)
    }

    /// Decodes an envelope from a stored message.
    pub fn decode(bytes: &[u8]) -> Result<Self, E2eError> {
        Ok(codec::decode(bytes)?)
    }
}

/// What a server can know of an envelope without opening it: its kind and, for a group
/// message, whom its content key is wrapped for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeShape {
    /// A one-to-one message.
    Direct,
    /// A group message, with the members its key is wrapped for, in the envelope's order.
    Group(Vec<UserId>),
}

/// Length of a wrapped content key: 64 bytes and a block of PKCS#7 padding.
pub const WRAPPED_KEY_LEN: usize = CONTENT_KEY_LEN + BLOCK_LEN;

impl EnvelopeShape {
    /// Checks an envelope's outer structure: a known kind with nothing after it, ciphertexts of
    /// whole blocks, wrapped keys of the one possible length, one per recipient.
    pub fn of(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: Envelope =
            codec::decode(bytes).map_err(|err| EnvelopeError::Undecodable(err.to_string()))?;
        let whole_blocks = |len: usize| len > 0 && len.is_multiple_of(BLOCK_LEN);
        match envelope {
            Envelope::Direct(sealed) => {
                if !whole_blocks(sealed.ciphertext.len()) {
                    return Err(EnvelopeError::Blocks("body"));
                }
                Ok(Self::Direct)
            }
            Envelope::Group { body, keys } => {
                if !whole_blocks(body.ciphertext.len()) {
                    return Err(EnvelopeError::Blocks("body"));
                }
                let mut recipients = Vec::with_capacity(keys.len());
                for key in &keys {
                    if key.wrapped.len() != WRAPPED_KEY_LEN {
                        return Err(EnvelopeError::WrappedKeyLength {
                            expected: WRAPPED_KEY_LEN,
                            got: key.wrapped.len(),
                        });
                    }
                    if recipients.contains(&key.recipient) {
                        return Err(EnvelopeError::DuplicateRecipient(key.recipient.0));
                    }
                    recipients.push(key.recipient);
                }
                Ok(Self::Group(recipients))
            }
        }
    }
}

/// The plaintext of a message. Append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Styled multi-line text.
    Text(StyledText),
    /// An image, shown inline.
    Image {
        /// The file name it was sent with.
        name: String,
        /// Its format, recognised from its bytes.
        format: ImageFormat,
        /// The bytes, inline or as an attachment.
        content: Content,
    },
    /// Any other file, saved on click.
    File {
        /// The file name.
        name: String,
        /// Size in bytes of the plaintext.
        size: u64,
        /// The bytes, inline or as an attachment.
        content: Content,
    },
}

/// Text with a font size and colour (F4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyledText {
    /// The text, possibly several lines.
    pub text: String,
    /// Font size in points.
    pub font_size: u8,
    /// Colour as red, green, blue.
    pub color: [u8; 3],
}

/// Where a body's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// In the envelope itself (small content).
    Inline(ByteBuf),
    /// In an attachment, encrypted chunk by chunk with its own key.
    Attachment(AttachmentRef),
}

/// How to fetch and decrypt an attachment. Travels only inside the encrypted envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The server's id for the uploaded ciphertext.
    pub id: AttachmentId,
    /// Size of the plaintext in bytes.
    pub size: u64,
    /// The content key (`enc || mac`, 64 bytes) of the chunks.
    pub key: ByteBuf,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
}

/// Image formats shown inline, recognised from their first bytes (F4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// GIF (87a or 89a).
    Gif,
    /// Windows bitmap.
    Bmp,
    /// WebP.
    WebP,
}

impl ImageFormat {
    /// Recognises an image from its first bytes, whatever its file name says.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        let starts = |magic: &[u8]| bytes.starts_with(magic);
        if starts(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if starts(&[0xff, 0xd8, 0xff]) {
            Some(Self::Jpeg)
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Some(Self::Gif)
        } else if starts(b"BM") && bytes.len() >= 26 {
            Some(Self::Bmp)
        } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
            Some(Self::WebP)
        } else {
            None
        }
    }
}

/// Returns the SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The SHA-256 of content fed piece by piece (an attachment's chunks as they arrive), so no
/// single step hashes a whole file: a 100 MB file is about 60 ms of one core, long enough to
/// stall every other task on an async worker.
#[derive(Clone, Default)]
pub struct Checksum(Sha256);

impl Checksum {
    /// Adds the next piece.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The SHA-256 of every piece added, in order.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Computes the safety number of two users: 60 digits in 12 groups of 5, the same on both
/// sides, which they compare in person to rule out a substituted key.
pub fn safety_number(a: (UserId, &PublicKey), b: (UserId, &PublicKey)) -> String {
    let (low, high) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    let mut hash = Sha512::new();
    hash.update(SAFETY_LABEL);
    hash.update(low.0.0.to_be_bytes());
    hash.update(low.1.as_bytes());
    hash.update(high.0.0.to_be_bytes());
    hash.update(high.1.as_bytes());
    let digest = hash.finalize();
    digest
        .chunks_exact(5)
        .take(12)
        .map(|chunk| {
            let value = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", value % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sealing with the caller's IVs and content key, for the worked examples of
/// `docs/PROTOCOL.md` only: real messages must use fresh random ones (the functions above).
#[doc(hidden)]
pub mod fixed {
    use super::*;

    /// [`Envelope::seal_direct`] with `iv`.
    pub fn seal_direct(
        key: &PairwiseKey,
        context: &MessageContext,
        body: &Body,
        iv: [u8; BLOCK_LEN],
    ) -> Result<Envelope, E2eError> {
        Envelope::seal_direct_iv(key, context, body, iv)
    }

    /// [`Envelope::seal_group`] with `content_key`, `body_iv` and each recipient's IV.
    pub fn seal_group(
        context: &MessageContext,
        body: &Body,
        content_key: &ContentKey,
        body_iv: [u8; BLOCK_LEN],
        recipients: &[(UserId, &PairwiseKey, [u8; BLOCK_LEN])],
    ) -> Result<Envelope, E2eError> {
        Envelope::seal_group_iv(context, body, content_key, body_iv, recipients)
    }

    /// [`ContentKey::seal_chunk`] with `iv`.
    pub fn seal_chunk(
        key: &ContentKey,
        index: u64,
        plaintext: &[u8],
        iv: [u8; BLOCK_LEN],
    ) -> Vec<u8> {
        key.seal_chunk_iv(index, plaintext, iv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct User {
        id: UserId,
        key: KeyPair,
    }

    fn user(id: u64) -> User {
        User {
            id: UserId(id),
            key: KeyPair::generate().unwrap(),
        }
    }

    fn pairwise(a: &User, b: &User) -> PairwiseKey {
        PairwiseKey::derive(&a.key, a.id, b.key.public(), b.id)
    }

    /// The pairwise key between `sender` and each of `members`, as a group message is sealed.
    fn pairwise_keys(sender: &User, members: &[User]) -> Vec<(UserId, PairwiseKey)> {
        members
            .iter()
            .map(|m| (m.id, pairwise(sender, m)))
            .collect()
    }

    fn context(sender: &User) -> MessageContext {
        MessageContext {
            conversation: ConversationId(9),
            sender: sender.id,
            client_msg_id: ClientMsgId([4; 16]),
        }
    }

    fn text(s: &str) -> Body {
        Body::Text(StyledText {
            text: s.into(),
            font_size: 14,
            color: [200, 0, 0],
        })
    }

    #[test]
    fn the_outer_shape_is_checked_without_opening() {
        let (alice, bob) = (user(1), user(2));
        let ctx = context(&alice);
        let direct = Envelope::seal_direct(&pairwise(&alice, &bob), &ctx, &text("hi")).unwrap();
        assert_eq!(
            EnvelopeShape::of(&direct.encode().unwrap()),
            Ok(EnvelopeShape::Direct)
        );
        let recipients = [
            (bob.id, pairwise(&alice, &bob)),
            (alice.id, pairwise(&alice, &alice)),
        ];
        let group = Envelope::seal_group(&ctx, &text("hi"), &recipients).unwrap();
        assert_eq!(
            EnvelopeShape::of(&group.encode().unwrap()),
            Ok(EnvelopeShape::Group(vec![bob.id, alice.id]))
        );

        assert!(matches!(
            EnvelopeShape::of(b"garbage"),
            Err(EnvelopeError::Undecodable(_))
        ));
        let mut trailing = direct.encode().unwrap();
        trailing.push(0);
        assert!(matches!(
            EnvelopeShape::of(&trailing),
            Err(EnvelopeError::Undecodable(_))
        ));
        let Envelope::Group { body, mut keys } = group else {
            panic!("a group envelope")
        };
        let mut torn = Sealed {
            ciphertext: ByteBuf::from(vec![0; 15]),
            ..body.clone()
        };
        let shape = |e: Envelope| EnvelopeShape::of(&e.encode().unwrap());
        assert_eq!(
            shape(Envelope::Direct(torn.clone())),
            Err(EnvelopeError::Blocks("body"))
        );
        torn.ciphertext = ByteBuf::new();
        assert_eq!(
            shape(Envelope::Direct(torn)),
            Err(EnvelopeError::Blocks("body"))
        );
        let twice = vec![keys[0].clone(), keys[0].clone()];
        assert_eq!(
            shape(Envelope::Group {
                body: body.clone(),
                keys: twice
            }),
            Err(EnvelopeError::DuplicateRecipient(bob.id.0))
        );
        keys[1].wrapped = ByteBuf::from(vec![0; 64]);
        assert_eq!(
            shape(Envelope::Group { body, keys }),
            Err(EnvelopeError::WrappedKeyLength {
                expected: 80,
                got: 64
            })
        );
    }

    #[test]
    fn direct_messages_open_for_the_peer_only() {
        let (alice, bob, eve) = (user(1), user(2), user(3));
        let ctx = context(&alice);
        let envelope = Envelope::seal_direct(&pairwise(&alice, &bob), &ctx, &text("你好")).unwrap();
        let envelope = Envelope::decode(&envelope.encode().unwrap()).unwrap();
        assert_eq!(
            envelope
                .open(&ctx, bob.id, &pairwise(&bob, &alice))
                .unwrap(),
            text("你好")
        );
        assert!(matches!(
            envelope.open(&ctx, eve.id, &pairwise(&eve, &alice)),
            Err(E2eError::BadMac)
        ));
    }

    #[test]
    fn an_envelope_moved_to_another_context_fails() {
        let (alice, bob) = (user(1), user(2));
        let ctx = context(&alice);
        let envelope = Envelope::seal_direct(&pairwise(&alice, &bob), &ctx, &text("x")).unwrap();
        let moved = MessageContext {
            conversation: ConversationId(10),
            ..ctx
        };
        assert!(matches!(
            envelope.open(&moved, bob.id, &pairwise(&bob, &alice)),
            Err(E2eError::BadMac)
        ));
    }

    #[test]
    fn group_messages_open_for_each_member_and_no_one_else() {
        let members: Vec<User> = (1..=4).map(user).collect();
        let sender = &members[0];
        let ctx = context(sender);
        let keys = pairwise_keys(sender, &members);
        let envelope = Envelope::seal_group(&ctx, &text("大家好"), &keys).unwrap();
        for member in &members {
            assert_eq!(
                envelope
                    .open(&ctx, member.id, &pairwise(member, sender))
                    .unwrap(),
                text("大家好")
            );
        }
        let outsider = user(99);
        assert!(matches!(
            envelope.open(&ctx, outsider.id, &pairwise(&outsider, sender)),
            Err(E2eError::NotARecipient(99))
        ));
    }

    #[test]
    fn a_readers_copy_opens_as_the_whole_envelope_does_and_holds_one_key() {
        let members: Vec<User> = (1..=40).map(user).collect();
        let sender = &members[0];
        let ctx = context(sender);
        let keys = pairwise_keys(sender, &members);
        let envelope = Envelope::seal_group(&ctx, &text("大家好"), &keys).unwrap();
        let whole = envelope.encode().unwrap().len();
        for member in &members {
            let copy = envelope.for_reader(member.id);
            let Envelope::Group { keys, .. } = &copy else {
                panic!("a group envelope's copy is a group envelope");
            };
            assert_eq!(keys.len(), 1);
            let encoded = copy.encode().unwrap();
            assert!(encoded.len() < whole / 20, "{} of {whole}", encoded.len());
            let decoded = Envelope::decode(&encoded).unwrap();
            assert_eq!(
                decoded
                    .open(&ctx, member.id, &pairwise(member, sender))
                    .unwrap(),
                text("大家好")
            );
            assert_eq!(
                EnvelopeShape::of(&encoded).unwrap(),
                EnvelopeShape::Group(vec![member.id])
            );
        }
        let outsider = user(99);
        assert!(matches!(
            envelope
                .for_reader(outsider.id)
                .open(&ctx, outsider.id, &pairwise(&outsider, sender)),
            Err(E2eError::NotARecipient(99))
        ));

        let (alice, bob) = (user(1), user(2));
        let direct =
            Envelope::seal_direct(&pairwise(&alice, &bob), &context(&alice), &text("hi")).unwrap();
        assert_eq!(direct.for_reader(bob.id), direct);
    }

    #[test]
    fn a_member_cannot_swap_the_body_of_a_group_message() {
        let members: Vec<User> = (1..=3).map(user).collect();
        let sender = &members[0];
        let ctx = context(sender);
        let keys = pairwise_keys(sender, &members);
        let Envelope::Group { keys: wrapped, .. } =
            Envelope::seal_group(&ctx, &text("original"), &keys).unwrap()
        else {
            panic!("group envelope expected");
        };
        // Member 2 makes a new body under its own content key but keeps the sender's wraps.
        let forged = Envelope::seal_group(&ctx, &text("forged"), &keys).unwrap();
        let Envelope::Group { body, .. } = forged else {
            panic!("group envelope expected");
        };
        let spliced = Envelope::Group {
            body,
            keys: wrapped,
        };
        assert!(matches!(
            spliced.open(&ctx, members[2].id, &pairwise(&members[2], sender)),
            Err(E2eError::BadMac)
        ));
    }

    #[test]
    fn chunks_round_trip_and_are_bound_to_their_index() {
        let key = ContentKey::generate().unwrap();
        let chunk = key.seal_chunk(3, b"data");
        assert_eq!(key.open_chunk(3, &chunk).unwrap(), b"data");
        assert!(matches!(key.open_chunk(4, &chunk), Err(E2eError::BadMac)));
        let full = key.seal_chunk(0, &vec![0; ATTACHMENT_CHUNK_PLAINTEXT]);
        assert_eq!(full.len(), 256 * 1024);
    }

    #[test]
    fn safety_numbers_agree_and_change_with_a_key() {
        let (alice, bob) = (user(1), user(2));
        let ab = safety_number((alice.id, alice.key.public()), (bob.id, bob.key.public()));
        let ba = safety_number((bob.id, bob.key.public()), (alice.id, alice.key.public()));
        assert_eq!(ab, ba);
        assert_eq!(ab.len(), 12 * 5 + 11);
        let bob2 = User {
            id: bob.id,
            key: KeyPair::generate().unwrap(),
        };
        assert_ne!(
            ab,
            safety_number((alice.id, alice.key.public()), (bob2.id, bob2.key.public()))
        );
    }

    #[test]
    fn images_are_recognised_by_their_bytes() {
        let mut bmp = b"BM".to_vec();
        bmp.resize(64, 0);
        let cases: [(&[u8], Option<ImageFormat>); 7] = [
            (b"\x89PNG\r\n\x1a\n....", Some(ImageFormat::Png)),
            (&[0xff, 0xd8, 0xff, 0xe0], Some(ImageFormat::Jpeg)),
            (b"GIF89a....", Some(ImageFormat::Gif)),
            (&bmp, Some(ImageFormat::Bmp)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(ImageFormat::WebP)),
            (b"RIFF\0\0\0\0WAVEfmt ", None),
            (b"%PDF-1.7", None),
        ];
        for (bytes, expected) in cases {
            assert_eq!(ImageFormat::sniff(bytes), expected);
        }
    }

    #[test]
    fn a_checksum_fed_in_pieces_is_the_sha256_of_the_whole() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut checksum = Checksum::default();
        bytes.chunks(777).for_each(|piece| checksum.update(piece));
        assert_eq!(checksum.finish(), sha256(&bytes));
        assert_ne!(Checksum::default().finish(), sha256(&bytes));
    }
}
