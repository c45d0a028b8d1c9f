//! HMAC-MD5, the digest the original protocol used, now keyed and verified in constant time.
//!
//! MD5's collision weakness does not carry over to HMAC-MD5 as a MAC (its security rests on the
//! pseudo-randomness of the compression function, not collision resistance); see
//! `docs/SECURITY.md`.

use hmac::{KeyInit, Mac};
use md5::Md5;
use subtle::ConstantTimeEq;

/// HMAC-MD5 tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Length of a tag written as lowercase hex, as frames carry it.
pub const HEX_TAG_LEN: usize = 2 * TAG_LEN;

/// An HMAC-MD5 key with its inner and outer pads already absorbed, cloned per message.
#[derive(Clone)]
pub struct MacKey(hmac::Hmac<Md5>);

impl MacKey {
    /// Keys HMAC-MD5. Any key length is valid for HMAC.
    pub fn new(key: &[u8]) -> Self {
        // HMAC takes keys of any length, so this never fails; fall back to an empty key
        // rather than panic if the underlying crate ever says otherwise.
        let mac = <hmac::Hmac<Md5> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| <hmac::Hmac<Md5> as KeyInit>::new(&Default::default()));
        Self(mac)
    }

    /// Computes the tag over the concatenation of `parts`.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Computes the tag over `parts` as 32 lowercase hex characters.
    pub fn hex_tag(&self, parts: &[&[u8]]) -> [u8; HEX_TAG_LEN] {
        to_hex(&self.tag(parts))
    }

    /// Checks a binary tag over `parts` in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        ct_eq(&self.tag(parts), tag)
    }
}

/// Writes a tag as lowercase hex.
pub fn to_hex(tag: &[u8; TAG_LEN]) -> [u8; HEX_TAG_LEN] {
    let mut out = [0u8; HEX_TAG_LEN];
    // Cannot fail: the output is exactly twice the input.
    let _ = hex::encode_to_slice(tag, &mut out);
    out
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc2202_test_case_2() {
        let key = MacKey::new(b"Jefe");
        let tag = key.hex_tag(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(&tag, b"750c783e6ab0b503eaa86e310a5db738");
    }

    #[test]
    fn verify_rejects_any_change() {
        let key = MacKey::new(b"k");
        let tag = key.tag(&[b"abc"]);
        assert!(key.verify(&[b"abc"], &tag));
        assert!(!key.verify(&[b"abd"], &tag));
        assert!(!key.verify(&[b"abc"], &tag[..15]));
    }
}
