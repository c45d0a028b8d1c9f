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

    /// Computes `a[k] * b[k] * R^{-1} mod m` for each lane `k` (all inputs below `m`).
    ///
    /// The lanes are independent: interleaving them in one loop gives the processor two carry
    /// chains to overlap, which a single multiplication (latency-bound on its carries) lacks.
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

    fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let [product] = self.mul_n(&[*a], &[*b]);
        product
    }

    fn sqr(&self, a: &Limbs) -> Limbs {
        let [square] = self.sqr_n(&[*a]);
        square
    }

    /// Converts out of Montgomery form.
    fn leave(&self, a: &Limbs) -> BigUint {
        let mut t = [0u64; 2 * LIMBS];
        t[..LIMBS].copy_from_slice(a);
        let [value] = self.reduce_n([t]);
        from_limbs(&value)
    }

    /// Computes `base^exponent mod m`; `base < m`, `exponent` big-endian bytes.
    pub fn pow(&self, base: &BigUint, exponent: &[u8]) -> BigUint {
        let [value] = self.pow_n([base], [exponent]);
        value
    }

    /// Computes `bases[k]^exponents[k] mod m` for every lane at once (bases below `m`,
    /// exponents big-endian). Two lanes cost much less than two calls: see [`Monty::mul_n`].
    /// Shorter exponents are read as if padded with leading zeros.
    pub fn pow_n<const N: usize>(
        &self,
        bases: [&BigUint; N],
        exponents: [&[u8]; N],
    ) -> [BigUint; N] {
        let len = exponents.iter().map(|e| e.len()).max().unwrap_or(0);
        let bases: [Limbs; N] = std::array::from_fn(|k| to_limbs(bases[k]));
        let r2 = [self.r2; N];
        let base = self.mul_n(&bases, &r2);
        let mut tables = [[[0u64; LIMBS]; 1 << WINDOW]; N];
        for table in tables.iter_mut() {
            table[0] = self.one;
        }
        for i in 1..1 << WINDOW {
            let previous: [Limbs; N] = std::array::from_fn(|k| tables[k][i - 1]);
            let next = self.mul_n(&previous, &base);
            for k in 0..N {
                tables[k][i] = next[k];
            }
        }
        let mut acc = [self.one; N];
        for at in 0..len {
            let bytes: [u8; N] = std::array::from_fn(|k| {
                let e = exponents[k];
                // Right-aligned: a shorter exponent has leading zero bytes.
                (at + e.len())
                    .checked_sub(len)
                    .and_then(|i| e.get(i))
                    .copied()
                    .unwrap_or(0)
            });
            for shift in [4u8, 0] {
                for _ in 0..WINDOW {
                    acc = self.sqr_n(&acc);
                }
                let picked: [Limbs; N] =
                    std::array::from_fn(|k| select(&tables[k], (bytes[k] >> shift) & 0x0f));
                acc = self.mul_n(&acc, &picked);
            }
        }
        let mut t = [[0u64; 2 * LIMBS]; N];
        for k in 0..N {
            t[k][..LIMBS].copy_from_slice(&acc[k]);
        }
        self.reduce_n(t).map(|value| from_limbs(&value))
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

    proptest! {
        #[test]
        fn two_lanes_agree_with_num_bigint(a in prop::collection::vec(any::<u8>(), 1..=256),
                                           b in prop::collection::vec(any::<u8>(), 1..=256),
                                           x in prop::collection::vec(any::<u8>(), 0..=32),
                                           y in prop::collection::vec(any::<u8>(), 0..=32)) {
            let p = prime();
            let (a, b) = (BigUint::from_bytes_be(&a) % &p, BigUint::from_bytes_be(&b) % &p);
            let monty = Monty::new(&p);
            let [ax, by] = monty.pow_n([&a, &b], [&x, &y]);
            prop_assert_eq!(ax, a.modpow(&BigUint::from_bytes_be(&x), &p));
            prop_assert_eq!(by, b.modpow(&BigUint::from_bytes_be(&y), &p));
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
