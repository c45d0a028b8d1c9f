//! HKDF-SHA256 (RFC 5869) and the labels of every key the protocol derives.
//!
//! The labels are ASCII and part of the wire contract: changing one is a new protocol version.

use hkdf::Hkdf;
use sha2::Sha256;

/// Info label of the client-to-server encryption key.
pub const LABEL_C2S_ENC: &[u8] = b"uchat v1 c2s enc";
/// Info label of the client-to-server MAC key.
pub const LABEL_C2S_MAC: &[u8] = b"uchat v1 c2s mac";
/// Info label of the server-to-client encryption key.
pub const LABEL_S2C_ENC: &[u8] = b"uchat v1 s2c enc";
/// Info label of the server-to-client MAC key.
pub const LABEL_S2C_MAC: &[u8] = b"uchat v1 s2c mac";
/// Info label of the key behind the server's Finished value.
pub const LABEL_FINISHED: &[u8] = b"uchat v1 server finished";
/// Salt of the end-to-end pairwise key derivation.
pub const E2E_PAIRWISE_SALT: &[u8] = b"uchat e2e v1";
/// Info prefix of the end-to-end pairwise key; the two user ids follow.
pub const E2E_PAIRWISE_INFO: &[u8] = b"uchat e2e v1 pairwise";

/// An HKDF-SHA256 pseudo-random key, from which named keys are expanded.
pub struct Prk(Hkdf<Sha256>);

impl Prk {
    /// HKDF-Extract with `salt` over the concatenation of `ikm_parts`.
    pub fn extract(salt: &[u8], ikm_parts: &[&[u8]]) -> Self {
        let mut extract = hkdf::HkdfExtract::<Sha256>::new(Some(salt));
        for part in ikm_parts {
            extract.input_ikm(part);
        }
        let (_, hkdf) = extract.finalize();
        Self(hkdf)
    }

    /// HKDF-Expand of `N` bytes with `info`. `N` is at most 8160 (255 blocks).
    pub fn expand<const N: usize>(&self, info: &[&[u8]]) -> [u8; N] {
        let mut out = [0u8; N];
        // Only fails for N > 255 * 32, which no caller asks for.
        let _ = self.0.expand_multi_info(info, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc5869_test_case_1() {
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let okm: [u8; 42] = Prk::extract(&salt, &[&ikm[..11], &ikm[11..]]).expand(&[&info]);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
