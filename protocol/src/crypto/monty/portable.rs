//! 64-bit limbs and CIOS Montgomery multiplication: the arithmetic for any processor.
//!
//! The product is computed whole and then reduced (with a dedicated squaring that computes each
//! cross product once), with `R = 2^2048`; every result is fully reduced below the modulus by a
//! branch-free final subtraction.
//!
//! Indexing here is over fixed-size arrays with loop bounds equal to their lengths.
#![allow(clippy::indexing_slicing)]

use num_bigint::BigUint;

use super::{Arithmetic, negated_inverse};

/// Limbs of a 2048-bit number.
const LIMBS: usize = 32;

/// A number modulo the prime, little-endian limbs.
type Limbs = [u64; LIMBS];

/// Precomputed constants for one odd modulus.
pub struct Portable {
    m: Limbs,
    /// `-m^{-1} mod 2^64`.
    m0inv: u64,
    /// `R^2 mod m`, with `R = 2^2048`.
    r2: Limbs,
    /// `R mod m`: one in Montgomery form.
    one: Limbs,
}

impl Portable {
    /// Prepares the constants for `m`, which must be odd and exactly 2048 bits.
    pub fn new(m: &BigUint) -> Self {
        let r = BigUint::from(1u32) << (64 * LIMBS);
        Self {
            m: to_limbs(m),
            m0inv: negated_inverse(m),
            r2: to_limbs(&((&r * &r) % m)),
            one: to_limbs(&(&r % m)),
        }
    }

    /// Montgomery reduction of double-width `t[k] < m * R`: returns `t[k] * R^{-1} mod m`.
    fn reduce_n<const N: usize>(&self, mut t: [[u64; 2 * LIMBS]; N]) -> [Limbs; N] {
        let m = &self.m;
        let mut extra = [0u64; N];
        for i in 0..LIMBS {
            let q: [u128; N] =
                std::array::from_fn(|k| u128::from(t[k][i].wrapping_mul(self.m0inv)));
            let mut carry = [0u64; N];
            for j in 0..LIMBS {
                for k in 0..N {
                    let sum =
                        u128::from(t[k][i + j]) + q[k] * u128::from(m[j]) + u128::from(carry[k]);
                    t[k][i + j] = sum as u64;
                    carry[k] = (sum >> 64) as u64;
                }
            }
            for k in 0..N {
                let sum = u128::from(t[k][i + LIMBS]) + u128::from(carry[k]) + u128::from(extra[k]);
                t[k][i + LIMBS] = sum as u64;
                extra[k] = (sum >> 64) as u64;
            }
        }
        let mut out = [[0u64; LIMBS]; N];
        for k in 0..N {
            // The result, t[LIMBS..] plus `extra` on top, is below 2m: subtract m once if it
            // is at least m, without branching on the value.
            let mut reduced = [0u64; LIMBS];
            let mut borrow: u64 = 0;
            for j in 0..LIMBS {
                let (d1, b1) = t[k][LIMBS + j].overflowing_sub(m[j]);
                let (d2, b2) = d1.overflowing_sub(borrow);
                reduced[j] = d2;
                borrow = u64::from(b1 | b2);
            }
            // Keep t when it is below m: nothing on top and the subtraction borrowed.
            let keep_t = (u64::from(extra[k] == 0) & borrow).wrapping_neg();
            for j in 0..LIMBS {
                out[k][j] = (t[k][LIMBS + j] & keep_t) | (reduced[j] & !keep_t);
            }
        }
        out
    }
}

impl Arithmetic for Portable {
    type Elem = Limbs;

    fn one(&self) -> Limbs {
        self.one
    }

    fn enter(&self, value: &BigUint) -> Limbs {
        self.mul(&to_limbs(value), &self.r2)
    }

    fn leave(&self, value: &Limbs) -> BigUint {
        let mut t = [0u64; 2 * LIMBS];
        t[..LIMBS].copy_from_slice(value);
        let [value] = self.reduce_n([t]);
        from_limbs(&value)
    }

    /// All inputs below `m`; so is every result.
    fn mul_n<const N: usize>(&self, a: &[Limbs; N], b: &[Limbs; N]) -> [Limbs; N] {
        let mut t = [[0u64; 2 * LIMBS]; N];
        for i in 0..LIMBS {
            let mut carry = [0u64; N];
            for j in 0..LIMBS {
                for k in 0..N {
                    let sum = u128::from(t[k][i + j])
                        + u128::from(a[k][i]) * u128::from(b[k][j])
                        + u128::from(carry[k]);
                    t[k][i + j] = sum as u64;
                    carry[k] = (sum >> 64) as u64;
                }
            }
            for k in 0..N {
                t[k][i + LIMBS] = carry[k];
            }
        }
        self.reduce_n(t)
    }

    /// Computes `a[k]^2 * R^{-1} mod m` for each lane: the cross products once, doubled, plus
    /// the squares.
    fn sqr_n<const N: usize>(&self, a: &[Limbs; N]) -> [Limbs; N] {
        let mut t = [[0u64; 2 * LIMBS]; N];
        for i in 0..LIMBS {
            let mut carry = [0u64; N];
            for j in i + 1..LIMBS {
                for k in 0..N {
                    let sum = u128::from(t[k][i + j])
                        + u128::from(a[k][i]) * u128::from(a[k][j])
                        + u128::from(carry[k]);
                    t[k][i + j] = sum as u64;
                    carry[k] = (sum >> 64) as u64;
                }
            }
            for k in 0..N {
                t[k][i + LIMBS] = carry[k];
            }
        }
        for lane in t.iter_mut() {
            let mut shifted_out = 0u64;
            for limb in lane.iter_mut() {
                let next = *limb >> 63;
                *limb = (*limb << 1) | shifted_out;
                shifted_out = next;
            }
        }
        let mut carry = [0u64; N];
        for i in 0..LIMBS {
            for k in 0..N {
                let square = u128::from(a[k][i]) * u128::from(a[k][i]);
                let low = u128::from(t[k][2 * i]) + (square as u64 as u128) + u128::from(carry[k]);
                t[k][2 * i] = low as u64;
                let high = u128::from(t[k][2 * i + 1]) + (square >> 64) + (low >> 64);
                t[k][2 * i + 1] = high as u64;
                carry[k] = (high >> 64) as u64;
            }
        }
        self.reduce_n(t)
    }
}

fn to_limbs(value: &BigUint) -> Limbs {
    let mut out = [0u64; LIMBS];
    for (slot, digit) in out.iter_mut().zip(value.iter_u64_digits()) {
        *slot = digit;
    }
    out
}

fn from_limbs(limbs: &Limbs) -> BigUint {
    let bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    BigUint::from_bytes_le(&bytes)
}
