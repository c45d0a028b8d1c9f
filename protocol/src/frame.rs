//! Encrypted frames: the unit the connection reads and writes after the handshake.
//!
//! ```text
//! | length u32 BE | pad u8 | iv [16] | digest [32] | ciphertext [length] |
//!
//! ciphertext = AES-256-CBC(enc key, iv, plaintext || pad bytes of value pad)   (PKCS#7)
//! digest     = lowercase hex of HMAC-MD5(mac key, seq u64 BE || length u32 BE || pad u8 ||
//!                                         iv || ciphertext)
//! ```
//!
//! `length` counts ciphertext bytes only (a multiple of 16, at least 16); `pad` is 1 to 16.
//! `seq` counts frames in one direction from 0 and is never sent, so a replayed, dropped or
//! reordered frame fails its digest. The opener checks, in this order and before anything else:
//! the length against the limit, the header's shape, the digest in constant time; only then
//! does it decrypt. Any failure is fatal to the connection.

use bytes::BytesMut;

use crate::crypto::cipher::{BLOCK_LEN, DecryptKey, EncryptKey, padded_len, random_iv};
use crate::crypto::mac::{HEX_TAG_LEN, MacKey, ct_eq};
use crate::error::FrameError;
use crate::handshake::DirectionKeys;

/// Length of the frame header: length, pad, IV and digest.
pub const HEADER_LEN: usize = 4 + 1 + BLOCK_LEN + HEX_TAG_LEN;

/// Default limit on a frame's ciphertext length: 1 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;

/// Largest plaintext that fits in a frame whose ciphertext may be `max_frame_len` bytes.
pub const fn max_plaintext_len(max_frame_len: usize) -> usize {
    // At least one byte of padding, and the ciphertext is whole blocks.
    (max_frame_len / BLOCK_LEN) * BLOCK_LEN - 1
}

/// Seals plaintexts into frames for one direction of a session.
pub struct FrameSealer {
    cipher: EncryptKey,
    mac: MacKey,
    seq: u64,
    max_len: usize,
}

impl FrameSealer {
    /// Makes a sealer from one direction's keys, with frames of at most `max_len` ciphertext
    /// bytes. Its counter starts at 0.
    pub fn new(keys: &DirectionKeys, max_len: usize) -> Self {
        Self {
            cipher: EncryptKey::new(&keys.enc),
            mac: MacKey::new(&keys.mac),
            seq: 0,
            max_len,
        }
    }

    /// Seals `plaintext` under a fresh random IV and appends the frame to `out`.
    pub fn seal_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.seal_with_iv(plaintext, &random_iv(), out)
    }

    /// Seals `plaintext` under the given IV and appends the frame to `out`.
    ///
    /// Deterministic, for test vectors: real traffic uses [`FrameSealer::seal_into`], since
    /// reusing an IV under one key leaks plaintext.
    pub fn seal_with_iv(
        &mut self,
        plaintext: &[u8],
        iv: &[u8; BLOCK_LEN],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        let ct_len = padded_len(plaintext.len());
        if ct_len > self.max_len {
            return Err(FrameError::TooLarge {
                len: plaintext.len(),
                max: max_plaintext_len(self.max_len),
            });
        }
        let len = u32::try_from(ct_len).map_err(|_| FrameError::TooLarge {
            len: plaintext.len(),
            max: max_plaintext_len(self.max_len),
        })?;
        // padded_len adds 1..=16 bytes, so this fits in a byte.
        let pad = u8::try_from(ct_len - plaintext.len()).map_err(|_| FrameError::Malformed)?;

        let start = out.len();
        out.reserve(HEADER_LEN + ct_len);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(pad);
        out.extend_from_slice(iv);
        out.extend_from_slice(&[0u8; HEX_TAG_LEN]);
        self.cipher.encrypt_into(iv, plaintext, out);

        let ciphertext = out.get(start + HEADER_LEN..).unwrap_or_default();
        let digest = self.mac.hex_tag(&[
            &self.seq.to_be_bytes(),
            &len.to_be_bytes(),
            &[pad],
            iv,
            ciphertext,
        ]);
        let digest_at = start + HEADER_LEN - HEX_TAG_LEN;
        if let Some(slot) = out.get_mut(digest_at..digest_at + HEX_TAG_LEN) {
            slot.copy_from_slice(&digest);
        }
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }
}

/// Opens frames of one direction of a session, in order.
pub struct FrameOpener {
    cipher: DecryptKey,
    mac: MacKey,
    seq: u64,
    max_len: usize,
}

/// The fixed fields of a frame header.
struct Header {
    len: u32,
    pad: u8,
    iv: [u8; BLOCK_LEN],
    digest: [u8; HEX_TAG_LEN],
}

impl Header {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let (&pad, rest) = rest.split_first()?;
        let (iv, rest) = rest.split_first_chunk::<BLOCK_LEN>()?;
        let (digest, _) = rest.split_first_chunk::<HEX_TAG_LEN>()?;
        Some(Self {
            len: u32::from_be_bytes(*len),
            pad,
            iv: *iv,
            digest: *digest,
        })
    }
}

impl FrameOpener {
    /// Makes an opener from one direction's keys, refusing frames over `max_len` ciphertext
    /// bytes. Its counter starts at 0.
    pub fn new(keys: &DirectionKeys, max_len: usize) -> Self {
        Self {
            cipher: DecryptKey::new(&keys.enc),
            mac: MacKey::new(&keys.mac),
            seq: 0,
            max_len,
        }
    }

    /// Changes the largest frame accepted from now on (the gateway accepts small frames until
    /// a session logs in).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// Opens the frame at the start of `buf`, removing it from `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not hold a whole frame yet (nothing is consumed),
    /// and an error, fatal to the connection, when the frame fails any check.
    pub fn open(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(header) = buf.get(..HEADER_LEN).and_then(Header::parse) else {
            return Ok(None);
        };
        let len = usize::try_from(header.len).map_err(|_| FrameError::Malformed)?;
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        if len == 0
            || !len.is_multiple_of(BLOCK_LEN)
            || header.pad == 0
            || usize::from(header.pad) > BLOCK_LEN
        {
            return Err(FrameError::Malformed);
        }
        let total = HEADER_LEN + len;
        if buf.len() < total {
            // Nothing is reserved for the declared length: the buffer grows with the bytes
            // that actually arrive, so a header claiming a large frame costs its sender the
            // bytes, not the receiver the memory.
            return Ok(None);
        }

        let mut body = buf.split_to(total).split_off(HEADER_LEN);
        let expected = self.mac.hex_tag(&[
            &self.seq.to_be_bytes(),
            &header.len.to_be_bytes(),
            &[header.pad],
            &header.iv,
            &body,
        ]);
        if !ct_eq(&expected, &header.digest) {
            return Err(FrameError::BadDigest);
        }
        let plain_len = self
            .cipher
            .decrypt_in_place(&header.iv, &mut body)
            .ok_or(FrameError::BadPadding)?;
        if plain_len + usize::from(header.pad) != len {
            return Err(FrameError::BadPadding);
        }
        body.truncate(plain_len);
        self.seq = self.seq.wrapping_add(1);
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(byte: u8) -> DirectionKeys {
        DirectionKeys {
            enc: [byte; 32],
            mac: [byte.wrapping_add(1); 32],
        }
    }

    fn pair() -> (FrameSealer, FrameOpener) {
        let k = keys(1);
        (
            FrameSealer::new(&k, DEFAULT_MAX_FRAME_LEN),
            FrameOpener::new(&k, DEFAULT_MAX_FRAME_LEN),
        )
    }

    /// Largest a sealer or an opener may be: every session holds one of each for its whole
    /// life. One AES-256 key schedule (240 bytes), HMAC-MD5's prepared state, a counter and a
    /// limit; a schedule for both ways would add 240 more.
    const MAX_DIRECTION_STATE: usize = 400;

    #[test]
    fn each_direction_keeps_one_key_schedule() {
        assert!(size_of::<FrameSealer>() <= MAX_DIRECTION_STATE);
        assert!(size_of::<FrameOpener>() <= MAX_DIRECTION_STATE);
    }

    #[test]
    fn a_partial_frame_needs_more_bytes_and_consumes_nothing() {
        let (mut sealer, mut opener) = pair();
        let mut wire = Vec::new();
        sealer.seal_into(b"hello", &mut wire).unwrap();
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(opener.open(&mut buf).unwrap(), None);
            assert_eq!(buf.len(), cut);
        }
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(&opener.open(&mut buf).unwrap().unwrap()[..], b"hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn a_declared_length_reserves_no_memory_before_its_bytes_arrive() {
        let (_, mut opener) = pair();
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&(DEFAULT_MAX_FRAME_LEN as u32).to_be_bytes());
        header[4] = 16;
        let mut buf = BytesMut::from(&header[..]);
        assert!(matches!(opener.open(&mut buf), Ok(None)));
        assert!(
            buf.capacity() < 4 * 1024,
            "{} bytes reserved for a frame that has not arrived",
            buf.capacity()
        );
    }

    #[test]
    fn a_lowered_limit_refuses_what_the_default_allows() {
        let (mut sealer, mut opener) = pair();
        opener.set_max_len(1024);
        let mut wire = Vec::new();
        sealer.seal_into(&[7; 2000], &mut wire).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            opener.open(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn oversized_length_is_refused_from_the_header_alone() {
        let (_, mut opener) = pair();
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&((DEFAULT_MAX_FRAME_LEN + 16) as u32).to_be_bytes());
        header[4] = 16;
        let mut buf = BytesMut::from(&header[..]);
        assert!(matches!(
            opener.open(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn sealing_more_than_the_limit_is_refused() {
        let k = keys(2);
        let mut sealer = FrameSealer::new(&k, 64);
        let mut out = Vec::new();
        sealer.seal_into(&[0; 63], &mut out).unwrap();
        assert!(matches!(
            sealer.seal_into(&[0; 64], &mut out),
            Err(FrameError::TooLarge { len: 64, max: 63 })
        ));
    }

    #[test]
    fn wrong_key_fails_the_digest() {
        let mut sealer = FrameSealer::new(&keys(1), DEFAULT_MAX_FRAME_LEN);
        let mut opener = FrameOpener::new(&keys(3), DEFAULT_MAX_FRAME_LEN);
        let mut wire = Vec::new();
        sealer.seal_into(b"x", &mut wire).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(opener.open(&mut buf).unwrap_err(), FrameError::BadDigest);
    }

    #[test]
    fn malformed_headers_are_refused() {
        let (_, mut opener) = pair();
        for (len, pad) in [(0u32, 1u8), (15, 1), (32, 0), (32, 17)] {
            let mut header = [0u8; HEADER_LEN + 32];
            header[..4].copy_from_slice(&len.to_be_bytes());
            header[4] = pad;
            let mut buf = BytesMut::from(&header[..]);
            assert_eq!(opener.open(&mut buf).unwrap_err(), FrameError::Malformed);
        }
    }
}
