//! Fixed-width Montgomery exponentiation modulo the 2048-bit group prime.
//!
//! num-bigint's general `modpow` allocates on every multiplication and costs about 1.4 ms per
//! 256-bit exponent on our 2-core machines, which would cap a server at about 700 handshakes/s.
//! This module does the same arithmetic on `[u64; 32]` with no allocation: CIOS Montgomery
//! multiplication and a fixed 4-bit window. It is also regular: every window does four
//! squarings and one multiplication, the table entry is selected by scanning the whole table with
//! masks, and the final subtraction is branch-free, so neither the time nor the memory accesses
//! depend on the exponent's bits. num-bigint stays the reference: tests compare every result
//! with its `modpow`.
//!
//! Indexing here is over fixed-size arrays with loop bounds equal to their lengths.
#![allow(clippy::indexing_slicing)]

use num_bigint::BigUint;

/// Limbs of a 2048-bit number.
pub const LIMBS: usize = 32;

/// Window width in bits.
const WINDOW: u32 = 4;

/// A number modulo the prime, little-endian limbs.
pub type Limbs = [u64; LIMBS];

/// Precomputed constants for one odd modulus.
pub struct Monty {
    m: Limbs,
    /// `-m^{-1} mod 2^64`.
    m0inv: u64,
    /// `R^2 mod m`, with `R = 2^2048`.
    r2: Limbs,
    /// `R mod m`: one in Montgomery form.
    one: Limbs,
}

impl Monty {
    /// Prepares the constants for `m`, which must be odd and exactly 2048 bits.
    pub fn new(m: &BigUint) -> Self {
        let limbs = to_limbs(m);
        // Newton's iteration for the inverse of m mod 2^64: each step doubles the good bits.
        let m0 = limbs[0];
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inv)));
        }
        let r = BigUint::from(1u32) << (64 * LIMBS);
        Self {
            m: limbs,
            m0inv: inv.wrapping_neg(),
            r2: to_limbs(&((&r * &r) % m)),
            one: to_limbs(&(&r % m)),
        }
    }

    /// Computes `a * b * R^{-1} mod m` for `a, b < m`.
    fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut t = [0u64; 2 * LIMBS];
        for i in 0..LIMBS {
            let mut carry: u64 = 0;
            let ai = u128::from(a[i]);
            for j in 0..LIMBS {
                let sum = u128::from(t[i + j]) + ai * u128::from(b[j]) + u128::from(carry);
                t[i + j] = sum as u64;
                carry = (sum >> 64) as u64;
            }
            t[i + LIMBS] = carry;
        }
        self.reduce(t)
    }

    /// Computes `a * a * R^{-1} mod m` for `a < m`: the cross products once, doubled.
    fn sqr(&self, a: &Limbs) -> Limbs {
        let mut t = [0u64; 2 * LIMBS];
        for i in 0..LIMBS {
            let mut carry: u64 = 0;
            let ai = u128::from(a[i]);
            for j in i + 1..LIMBS {
                let sum = u128::from(t[i + j]) + ai * u128::from(a[j]) + u128::from(carry);
                t[i + j] = sum as u64;
                carry = (sum >> 64) as u64;
            }
            t[i + LIMBS] = carry;
        }
        let mut shifted_out = 0u64;
        for limb in t.iter_mut() {
            let next = *limb >> 63;
            *limb = (*limb << 1) | shifted_out;
            shifted_out = next;
        }
        let mut carry: u64 = 0;
        for i in 0..LIMBS {
            let square = u128::from(a[i]) * u128::from(a[i]);
            let low = u128::from(t[2 * i]) + (square as u64 as u128) + u128::from(carry);
            t[2 * i] = low as u64;
            let high = u128::from(t[2 * i + 1]) + (square >> 64) + (low >> 64);
            t[2 * i + 1] = high as u64;
            carry = (high >> 64) as u64;
        }
        self.reduce(t)
    }

    /// Montgomery reduction of a double-width `t < m * R`: returns `t * R^{-1} mod m`.
    fn reduce(&self, mut t: [u64; 2 * LIMBS]) -> Limbs {
        let m = &self.m;
        let mut extra: u64 = 0;
        for i in 0..LIMBS {
            let q = u128::from(t[i].wrapping_mul(self.m0inv));
            let mut carry: u64 = 0;
            for j in 0..LIMBS {
                let sum = u128::from(t[i + j]) + q * u128::from(m[j]) + u128::from(carry);
                t[i + j] = sum as u64;
                carry = (sum >> 64) as u64;
            }
            let sum = u128::from(t[i + LIMBS]) + u128::from(carry) + u128::from(extra);
            t[i + LIMBS] = sum as u64;
            extra = (sum >> 64) as u64;
        }
        // The result, t[LIMBS..] plus `extra` on top, is below 2m: subtract m once if it is
        // at least m, without branching on the value.
        let mut reduced = [0u64; LIMBS];
        let mut borrow: u64 = 0;
        for j in 0..LIMBS {
            let (d1, b1) = t[LIMBS + j].overflowing_sub(m[j]);
            let (d2, b2) = d1.overflowing_sub(borrow);
            reduced[j] = d2;
            borrow = u64::from(b1 | b2);
        }
        // Keep t when it is below m: nothing on top and the subtraction borrowed.
        let keep_t = (u64::from(extra == 0) & borrow).wrapping_neg();
        let mut out = [0u64; LIMBS];
        for j in 0..LIMBS {
            out[j] = (t[LIMBS + j] & keep_t) | (reduced[j] & !keep_t);
        }
        out
    }

    /// Converts out of Montgomery form.
    fn leave(&self, a: &Limbs) -> BigUint {
        let mut t = [0u64; 2 * LIMBS];
        t[..LIMBS].copy_from_slice(a);
        from_limbs(&self.reduce(t))
    }

    /// Computes `base^exponent mod m`; `base < m`, `exponent` big-endian bytes.
    pub fn pow(&self, base: &BigUint, exponent: &[u8]) -> BigUint {
        let base = self.mul(&to_limbs(base), &self.r2);
        let mut table = [[0u64; LIMBS]; 1 << WINDOW];
        table[0] = self.one;
        for i in 1..table.len() {
            table[i] = self.mul(&table[i - 1], &base);
        }
        let mut acc = self.one;
        for byte in exponent {
            for nibble in [byte >> 4, byte & 0x0f] {
                for _ in 0..WINDOW {
                    acc = self.sqr(&acc);
                }
                acc = self.mul(&acc, &select(&table, nibble));
            }
        }
        self.leave(&acc)
    }
}

/// Precomputed powers of one fixed base, so `base^x` costs one multiplication per 4 bits of
/// `x` and no squarings (a comb: `table[k][d] = base^(d * 16^k)` in Montgomery form).
pub struct FixedBase {
    table: Vec<[Limbs; 1 << WINDOW]>,
}

impl FixedBase {
    /// Precomputes the table for exponents of up to `exponent_len` bytes: `2 * exponent_len`
    /// rows of 16 entries (for 32 bytes: 64 rows, 256 KiB, about 1,200 multiplications).
    /// Longer exponents are not supported: [`FixedBase::pow`] reads only that many.
    pub fn new(monty: &Monty, base: &BigUint, exponent_len: usize) -> Self {
        let rows = 2 * exponent_len;
        let mut table = Vec::with_capacity(rows);
        let mut power = monty.mul(&to_limbs(base), &monty.r2);
        for _ in 0..rows {
            let mut row = [[0u64; LIMBS]; 1 << WINDOW];
            row[0] = monty.one;
            for d in 1..row.len() {
                row[d] = monty.mul(&row[d - 1], &power);
            }
            for _ in 0..WINDOW {
                power = monty.sqr(&power);
            }
            table.push(row);
        }
        Self { table }
    }

    /// Computes `base^exponent mod m` for a big-endian exponent of at most the table's length.
    pub fn pow(&self, monty: &Monty, exponent: &[u8]) -> BigUint {
        debug_assert!(exponent.len() * 2 <= self.table.len());
        let nibbles = exponent
            .iter()
            .rev()
            .flat_map(|byte| [byte & 0x0f, byte >> 4]);
        let mut acc = monty.one;
        for (row, nibble) in self.table.iter().zip(nibbles) {
            acc = monty.mul(&acc, &select(row, nibble));
        }
        monty.leave(&acc)
    }
}

/// Returns `table[index]`, reading every entry so the access pattern does not reveal `index`.
fn select(table: &[Limbs; 1 << WINDOW], index: u8) -> Limbs {
    let mut out = [0u64; LIMBS];
    for (i, entry) in table.iter().enumerate() {
        let mask = u64::from(i as u8 == index).wrapping_neg();
        for j in 0..LIMBS {
            out[j] |= entry[j] & mask;
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::crypto::dh::prime_bytes;

    fn prime() -> BigUint {
        BigUint::from_bytes_be(&prime_bytes())
    }

    proptest! {
        #[test]
        fn agrees_with_num_bigint(base in prop::collection::vec(any::<u8>(), 1..=256),
                                  exponent in prop::collection::vec(any::<u8>(), 0..=32)) {
            let p = prime();
            let base = BigUint::from_bytes_be(&base) % &p;
            let monty = Monty::new(&p);
            let expected = base.modpow(&BigUint::from_bytes_be(&exponent), &p);
            prop_assert_eq!(monty.pow(&base, &exponent), expected);
        }
    }

    proptest! {
        #[test]
        fn fixed_base_agrees_with_num_bigint(exponent in prop::collection::vec(any::<u8>(), 0..=32)) {
            let p = prime();
            let monty = Monty::new(&p);
            let two = BigUint::from(2u32);
            let comb = FixedBase::new(&monty, &two, 32);
            prop_assert_eq!(
                comb.pow(&monty, &exponent),
                two.modpow(&BigUint::from_bytes_be(&exponent), &p)
            );
        }
    }

    #[test]
    fn edge_values() {
        let p = prime();
        let monty = Monty::new(&p);
        let p1 = &p - 1u32;
        for base in [
            BigUint::ZERO,
            BigUint::from(1u32),
            BigUint::from(2u32),
            p1.clone(),
        ] {
            for exponent in [vec![], vec![0], vec![1], vec![0xff; 32], p1.to_bytes_be()] {
                let expected = base.modpow(&BigUint::from_bytes_be(&exponent), &p);
                assert_eq!(monty.pow(&base, &exponent), expected);
            }
        }
    }
}
