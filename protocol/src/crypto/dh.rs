//! Finite-field Diffie-Hellman in the RFC 7919 `ffdhe2048` group.
//!
//! Private exponents are 256 bits from the operating system's random source; public values and
//! shared secrets travel as fixed-width 256-byte big-endian integers. Every public value that
//! comes from elsewhere is checked to lie in `[2, p-2]` before it is used: that rules out the
//! degenerate values `0`, `1` and `p-1` (the only element of order 2 in a safe-prime group) and
//! anything that is not a reduced residue.

use std::sync::{LazyLock, Mutex, mpsc};

use num_bigint::BigUint;
use zeroize::Zeroize;

#[cfg(target_arch = "x86_64")]
use crate::crypto::monty::Ifma;
use crate::crypto::monty::{Arithmetic, FixedBase, Portable, pow_n};
use crate::error::DhError;

/// Width in bytes of every encoded group element (public values and shared secrets).
pub const ELEMENT_LEN: usize = 256;

/// Width in bytes of a private exponent (256 bits).
pub const EXPONENT_LEN: usize = 32;

/// The RFC 7919 `ffdhe2048` prime, big-endian.
const FFDHE2048_P: [u8; ELEMENT_LEN] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xAD, 0xF8, 0x54, 0x58, 0xA2, 0xBB, 0x4A, 0x9A,
    0xAF, 0xDC, 0x56, 0x20, 0x27, 0x3D, 0x3C, 0xF1, 0xD8, 0xB9, 0xC5, 0x83, 0xCE, 0x2D, 0x36, 0x95,
    0xA9, 0xE1, 0x36, 0x41, 0x14, 0x64, 0x33, 0xFB, 0xCC, 0x93, 0x9D, 0xCE, 0x24, 0x9B, 0x3E, 0xF9,
    0x7D, 0x2F, 0xE3, 0x63, 0x63, 0x0C, 0x75, 0xD8, 0xF6, 0x81, 0xB2, 0x02, 0xAE, 0xC4, 0x61, 0x7A,
    0xD3, 0xDF, 0x1E, 0xD5, 0xD5, 0xFD, 0x65, 0x61, 0x24, 0x33, 0xF5, 0x1F, 0x5F, 0x06, 0x6E, 0xD0,
    0x85, 0x63, 0x65, 0x55, 0x3D, 0xED, 0x1A, 0xF3, 0xB5, 0x57, 0x13, 0x5E, 0x7F, 0x57, 0xC9, 0x35,
    0x98, 0x4F, 0x0C, 0x70, 0xE0, 0xE6, 0x8B, 0x77, 0xE2, 0xA6, 0x89, 0xDA, 0xF3, 0xEF, 0xE8, 0x72,
    0x1D, 0xF1, 0x58, 0xA1, 0x36, 0xAD, 0xE7, 0x35, 0x30, 0xAC, 0xCA, 0x4F, 0x48, 0x3A, 0x79, 0x7A,
    0xBC, 0x0A, 0xB1, 0x82, 0xB3, 0x24, 0xFB, 0x61, 0xD1, 0x08, 0xA9, 0x4B, 0xB2, 0xC8, 0xE3, 0xFB,
    0xB9, 0x6A, 0xDA, 0xB7, 0x60, 0xD7, 0xF4, 0x68, 0x1D, 0x4F, 0x42, 0xA3, 0xDE, 0x39, 0x4D, 0xF4,
    0xAE, 0x56, 0xED, 0xE7, 0x63, 0x72, 0xBB, 0x19, 0x0B, 0x07, 0xA7, 0xC8, 0xEE, 0x0A, 0x6D, 0x70,
    0x9E, 0x02, 0xFC, 0xE1, 0xCD, 0xF7, 0xE2, 0xEC, 0xC0, 0x34, 0x04, 0xCD, 0x28, 0x34, 0x2F, 0x61,
    0x91, 0x72, 0xFE, 0x9C, 0xE9, 0x85, 0x83, 0xFF, 0x8E, 0x4F, 0x12, 0x32, 0xEE, 0xF2, 0x81, 0x83,
    0xC3, 0xFE, 0x3B, 0x1B, 0x4C, 0x6F, 0xAD, 0x73, 0x3B, 0xB5, 0xFC, 0xBC, 0x2E, 0xC2, 0x20, 0x05,
    0xC5, 0x8E, 0xF1, 0x83, 0x7D, 0x16, 0x83, 0xB2, 0xC6, 0xF3, 0x4A, 0x26, 0xC1, 0xB2, 0xEF, 0xFA,
    0x88, 0x6B, 0x42, 0x38, 0x61, 0x28, 0x5C, 0x97, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
];

/// The group generator.
const GENERATOR: u32 = 2;

struct Group {
    p_minus_1: BigUint,
    engine: Engine,
}

static GROUP: LazyLock<Group> = LazyLock::new(|| {
    let p = BigUint::from_bytes_be(&FFDHE2048_P);
    Group {
        p_minus_1: &p - 1u32,
        engine: Engine::fastest(&p),
    }
});

/// The group's exponentiation, on the fastest arithmetic this processor runs.
enum Engine {
    Portable(Exponentiation<Portable>),
    #[cfg(target_arch = "x86_64")]
    Ifma(Exponentiation<Ifma>),
}

impl Engine {
    fn fastest(p: &BigUint) -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(ifma) = Ifma::detect(p) {
            return Self::Ifma(Exponentiation::new(ifma));
        }
        Self::Portable(Exponentiation::new(Portable::new(p)))
    }

    /// `g^secret mod p`.
    fn generator_pow(&self, secret: &[u8]) -> BigUint {
        match self {
            Self::Portable(e) => e.generator.pow(&e.arithmetic, secret),
            #[cfg(target_arch = "x86_64")]
            Self::Ifma(e) => e.generator.pow(&e.arithmetic, secret),
        }
    }

    /// `bases[k]^exponents[k] mod p` for every lane at once.
    fn pow_n<const N: usize>(&self, bases: [&BigUint; N], exponents: [&[u8]; N]) -> [BigUint; N] {
        match self {
            Self::Portable(e) => pow_n(&e.arithmetic, bases, exponents),
            #[cfg(target_arch = "x86_64")]
            Self::Ifma(e) => pow_n(&e.arithmetic, bases, exponents),
        }
    }
}

/// One arithmetic and the generator's powers in it, for making key pairs.
struct Exponentiation<A: Arithmetic> {
    arithmetic: A,
    generator: FixedBase<A>,
}

impl<A: Arithmetic> Exponentiation<A> {
    fn new(arithmetic: A) -> Self {
        let generator = FixedBase::new(&arithmetic, &BigUint::from(GENERATOR), EXPONENT_LEN);
        Self {
            arithmetic,
            generator,
        }
    }
}

/// Names the arithmetic the group's exponentiations run on here: `"avx512-ifma"` on
/// processors with AVX-512 IFMA, `"portable"` elsewhere (`uchat-bench limits` reports it).
pub fn arithmetic() -> &'static str {
    match GROUP.engine {
        Engine::Portable(_) => "portable",
        #[cfg(target_arch = "x86_64")]
        Engine::Ifma(_) => "avx512-ifma",
    }
}

/// Returns the group prime `p`, big-endian, for documentation and tests.
pub fn prime_bytes() -> [u8; ELEMENT_LEN] {
    FFDHE2048_P
}

/// Encodes a group element as exactly [`ELEMENT_LEN`] big-endian bytes.
fn encode_element(value: &BigUint) -> [u8; ELEMENT_LEN] {
    let bytes = value.to_bytes_be();
    let mut out = [0u8; ELEMENT_LEN];
    // Every element is reduced mod p, so it never exceeds ELEMENT_LEN bytes.
    let start = ELEMENT_LEN.saturating_sub(bytes.len());
    if let Some(dst) = out.get_mut(start..)
        && dst.len() == bytes.len()
    {
        dst.copy_from_slice(&bytes);
    }
    out
}

/// A validated public value: `g^x mod p` for someone's private `x`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; ELEMENT_LEN],
    value: BigUint,
}

impl PublicKey {
    /// Parses and validates a public value: exactly [`ELEMENT_LEN`] bytes, big-endian, in
    /// `[2, p-2]`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DhError> {
        let bytes: [u8; ELEMENT_LEN] = bytes.try_into().map_err(|_| DhError::WrongLength {
            expected: ELEMENT_LEN,
            got: bytes.len(),
        })?;
        let value = BigUint::from_bytes_be(&bytes);
        let group = &*GROUP;
        if value < BigUint::from(2u32) || value >= group.p_minus_1 {
            return Err(DhError::OutOfRange);
        }
        Ok(Self { bytes, value })
    }

    /// Returns the fixed-width big-endian encoding.
    pub fn as_bytes(&self) -> &[u8; ELEMENT_LEN] {
        &self.bytes
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = self.bytes.get(..8).unwrap_or_default();
        write!(f, "PublicKey({}..)", hex::encode(head))
    }
}

/// A shared secret `peer^x mod p`, fixed-width big-endian. Wiped on drop.
#[derive(Clone, Zeroize)]
#[zeroize(drop)]
pub struct SharedSecret([u8; ELEMENT_LEN]);

impl SharedSecret {
    /// Returns the fixed-width big-endian encoding.
    pub fn as_bytes(&self) -> &[u8; ELEMENT_LEN] {
        &self.0
    }
}

/// A private exponent and its public value.
#[derive(Zeroize)]
#[zeroize(drop)]
pub struct KeyPair {
    secret: [u8; EXPONENT_LEN],
    #[zeroize(skip)]
    public: PublicKey,
}

impl KeyPair {
    /// Makes a fresh key pair from the operating system's random source.
    pub fn generate() -> Result<Self, DhError> {
        let mut secret = [0u8; EXPONENT_LEN];
        getrandom::fill(&mut secret).map_err(|_| DhError::Random)?;
        let pair = Self::from_secret(&secret);
        secret.zeroize();
        pair
    }

    /// Rebuilds a key pair from a stored 32-byte big-endian private exponent.
    ///
    /// Fails for exponents below 2, which would give a degenerate public value.
    pub fn from_secret(secret: &[u8; EXPONENT_LEN]) -> Result<Self, DhError> {
        if BigUint::from_bytes_be(secret) < BigUint::from(2u32) {
            return Err(DhError::WeakSecret);
        }
        let group = &*GROUP;
        let value = group.engine.generator_pow(secret);
        let public = PublicKey {
            bytes: encode_element(&value),
            value,
        };
        Ok(Self {
            secret: *secret,
            public,
        })
    }

    /// Returns the public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Returns the 32-byte private exponent, for storing in a key file.
    pub fn secret_bytes(&self) -> &[u8; EXPONENT_LEN] {
        &self.secret
    }

    /// Computes the shared secret with a peer's validated public value.
    pub fn agree(&self, peer: &PublicKey) -> SharedSecret {
        let [shared] = agree_all([(self, peer)]);
        shared
    }
}

/// Computes several agreements at once, each `(own key pair, peer value)`. A handshake needs
/// two; computing them together costs much less than one after the other, since the
/// independent multiplications overlap in the processor.
pub fn agree_all<const N: usize>(pairs: [(&KeyPair, &PublicKey); N]) -> [SharedSecret; N] {
    let group = &*GROUP;
    let bases = pairs.map(|(_, peer)| &peer.value);
    let exponents = pairs.map(|(own, _)| own.secret.as_slice());
    group
        .engine
        .pow_n(bases, exponents)
        .map(|shared| SharedSecret(encode_element(&shared)))
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// How many ephemeral key pairs the server keeps ready by default.
pub const DEFAULT_POOL_CAPACITY: usize = 64;

/// Ephemeral key pairs made ahead of time on a background thread.
///
/// A server handshake then costs two modular exponentiations on the request path (the two
/// agreements) instead of three. When the pool runs dry, [`EphemeralPool::take`] makes a pair
/// inline, so it never waits. The thread stops when the pool is dropped.
pub struct EphemeralPool {
    ready: Mutex<mpsc::Receiver<KeyPair>>,
}

impl EphemeralPool {
    /// Starts the background thread, which keeps up to `capacity` pairs ready.
    pub fn new(capacity: usize) -> Result<Self, DhError> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        std::thread::Builder::new()
            .name("uchat-dh-pool".into())
            .spawn(move || {
                while let Ok(pair) = KeyPair::generate() {
                    // The receiver is gone once the pool is dropped: stop then.
                    if tx.send(pair).is_err() {
                        break;
                    }
                }
            })
            .map_err(|_| DhError::Pool)?;
        Ok(Self {
            ready: Mutex::new(rx),
        })
    }

    /// Takes a ready key pair, or makes one now when none is ready.
    pub fn take(&self) -> Result<KeyPair, DhError> {
        let ready = match self.ready.lock() {
            Ok(rx) => rx.try_recv().ok(),
            Err(poisoned) => poisoned.into_inner().try_recv().ok(),
        };
        match ready {
            Some(pair) => Ok(pair),
            None => KeyPair::generate(),
        }
    }
}

impl std::fmt::Debug for EphemeralPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralPool").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(value: &BigUint) -> [u8; ELEMENT_LEN] {
        encode_element(value)
    }

    #[test]
    fn both_sides_agree() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        assert_eq!(
            a.agree(b.public()).as_bytes(),
            b.agree(a.public()).as_bytes()
        );
    }

    #[test]
    fn rejects_degenerate_and_unreduced_values() {
        let group = &*GROUP;
        let bad = [
            BigUint::ZERO,
            BigUint::from(1u32),
            group.p_minus_1.clone(),
            &group.p_minus_1 + 1u32,
        ];
        for value in bad {
            assert_eq!(
                PublicKey::from_bytes(&element(&value)).unwrap_err(),
                DhError::OutOfRange
            );
        }
        // Above p: all 0xff.
        assert_eq!(
            PublicKey::from_bytes(&[0xff; ELEMENT_LEN]).unwrap_err(),
            DhError::OutOfRange
        );
        // The extremes of the allowed range are accepted.
        PublicKey::from_bytes(&element(&BigUint::from(2u32))).unwrap();
        PublicKey::from_bytes(&element(&(&group.p_minus_1 - 1u32))).unwrap();
    }

    #[test]
    fn rejects_wrong_lengths() {
        for len in [0, 1, ELEMENT_LEN - 1, ELEMENT_LEN + 1] {
            assert!(matches!(
                PublicKey::from_bytes(&vec![7; len]),
                Err(DhError::WrongLength { .. })
            ));
        }
    }

    #[test]
    fn rejects_weak_secrets() {
        assert!(KeyPair::from_secret(&[0; EXPONENT_LEN]).is_err());
        let mut one = [0; EXPONENT_LEN];
        one[EXPONENT_LEN - 1] = 1;
        assert!(KeyPair::from_secret(&one).is_err());
    }

    #[test]
    fn pool_hands_out_distinct_pairs() {
        let pool = EphemeralPool::new(4).unwrap();
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_ne!(a.public().as_bytes(), b.public().as_bytes());
    }

    #[test]
    fn encodes_small_values_left_padded() {
        let bytes = element(&BigUint::from(0x0102u32));
        assert_eq!(bytes[ELEMENT_LEN - 2..], [1, 2]);
        assert!(bytes[..ELEMENT_LEN - 2].iter().all(|b| *b == 0));
    }
}
