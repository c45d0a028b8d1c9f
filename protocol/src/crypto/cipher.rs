//! AES-256-CBC with PKCS#7 padding.
//!
//! CBC gives confidentiality only: every caller authenticates the IV and ciphertext with a MAC
//! and verifies that MAC before calling [`DecryptKey::decrypt`] (encrypt-then-MAC).
//!
//! Each direction's key expands only the schedule it uses: a connection keeps one key per
//! direction for its whole life, and a schedule for both ways would double what every idle
//! session holds (240 bytes each way).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use aes::{Aes256Dec, Aes256Enc};
use rand::Rng;

/// AES block and IV length in bytes.
pub const BLOCK_LEN: usize = 16;

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;

/// An AES-256 key expanded for encrypting, reusable across messages.
#[derive(Clone)]
pub struct EncryptKey(Aes256Enc);

impl EncryptKey {
    /// Expands a 32-byte key.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self(Aes256Enc::new(&(*key).into()))
    }

    /// Encrypts `plaintext` under `iv`, appending the padded ciphertext to `out`.
    pub fn encrypt_into(&self, iv: &[u8; BLOCK_LEN], plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let padded = padded_len(plaintext.len());
        out.extend_from_slice(plaintext);
        out.resize(start + padded, 0);
        let encryptor = cbc::Encryptor::<Aes256Enc>::inner_iv_init(self.0.clone(), &(*iv).into());
        if let Some(buf) = out.get_mut(start..) {
            // Cannot fail: the buffer was sized to the padded length above.
            let _ = encryptor.encrypt_padded::<Pkcs7>(buf, plaintext.len());
        }
    }

    /// Encrypts `plaintext` under `iv` into a new buffer.
    pub fn encrypt(&self, iv: &[u8; BLOCK_LEN], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(padded_len(plaintext.len()));
        self.encrypt_into(iv, plaintext, &mut out);
        out
    }
}

/// An AES-256 key expanded for decrypting, reusable across messages.
#[derive(Clone)]
pub struct DecryptKey(Aes256Dec);

impl DecryptKey {
    /// Expands a 32-byte key.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self(Aes256Dec::new(&(*key).into()))
    }

    /// Decrypts `buf` in place and returns the length of the plaintext at its start.
    ///
    /// Fails when `buf` is not a whole number of blocks or the padding is invalid. Call it
    /// only after the MAC has been verified.
    pub fn decrypt_in_place(&self, iv: &[u8; BLOCK_LEN], buf: &mut [u8]) -> Option<usize> {
        if buf.is_empty() || !buf.len().is_multiple_of(BLOCK_LEN) {
            return None;
        }
        let decryptor = cbc::Decryptor::<Aes256Dec>::inner_iv_init(self.0.clone(), &(*iv).into());
        decryptor
            .decrypt_padded::<Pkcs7>(buf)
            .ok()
            .map(|plain| plain.len())
    }

    /// Decrypts `ciphertext` into a new buffer; see [`DecryptKey::decrypt_in_place`].
    pub fn decrypt(&self, iv: &[u8; BLOCK_LEN], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let mut buf = ciphertext.to_vec();
        let len = self.decrypt_in_place(iv, &mut buf)?;
        buf.truncate(len);
        Some(buf)
    }
}

/// Returns the length of the PKCS#7-padded ciphertext for a plaintext of `len` bytes: the
/// next multiple of 16 strictly above `len` (a whole block of padding when `len` is a multiple).
pub const fn padded_len(len: usize) -> usize {
    len + (BLOCK_LEN - len % BLOCK_LEN)
}

/// Returns a fresh random IV from the thread's CSPRNG (seeded from the operating system).
pub fn random_iv() -> [u8; BLOCK_LEN] {
    let mut iv = [0u8; BLOCK_LEN];
    rand::rng().fill_bytes(&mut iv);
    iv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length_around_a_block() {
        let (encrypt, decrypt) = (
            EncryptKey::new(&[7; KEY_LEN]),
            DecryptKey::new(&[7; KEY_LEN]),
        );
        let iv = [9; BLOCK_LEN];
        for len in 0..=48 {
            let plain: Vec<u8> = (0..len as u8).collect();
            let ct = encrypt.encrypt(&iv, &plain);
            assert_eq!(ct.len(), padded_len(len));
            assert_eq!(decrypt.decrypt(&iv, &ct).unwrap(), plain);
        }
    }

    #[test]
    fn matches_the_nist_sp800_38a_vector() {
        // F.2.5 CBC-AES256.Encrypt, first block; the second block here is PKCS#7 padding.
        let key: [u8; 32] =
            hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap()
                .try_into()
                .unwrap();
        let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let plain = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        let ct = EncryptKey::new(&key).encrypt(&iv, &plain);
        assert_eq!(hex::encode(&ct[..16]), "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
    }

    #[test]
    fn rejects_partial_blocks() {
        let key = DecryptKey::new(&[1; KEY_LEN]);
        assert!(key.decrypt(&[0; BLOCK_LEN], &[0; 15]).is_none());
        assert!(key.decrypt(&[0; BLOCK_LEN], &[]).is_none());
    }
}
