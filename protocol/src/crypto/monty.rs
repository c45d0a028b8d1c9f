//! Fixed-width Montgomery exponentiation modulo the 2048-bit group prime.
//!
//! num-bigint's general `modpow` allocates on every multiplication and costs about 1.4 ms per
//! 256-bit exponent on our 2-core machines, which would cap a server at about 700 handshakes/s.
//! Two arithmetics do the multiplications instead, without allocating:
//!
//! - [`Portable`]: 64-bit limbs, CIOS multiplication, any processor.
//! - [`Ifma`]: 52-bit limbs in AVX-512 registers, multiplied with the IFMA instructions
//!   (`vpmadd52luq`/`vpmadd52huq`, eight 52×52-bit products per instruction); about five times
//!   as fast, on processors that have them (detected at run time, see [`Ifma::detect`]).
//!
//! The exponentiation on top ([`pow_n`], [`FixedBase`]) is written once for both. It is
//! regular: every 4-bit window does four squarings and one multiplication, the table entry is
//! selected by scanning the whole table with masks, and both arithmetics end with a branch-free
//! final subtraction, so neither the time nor the memory accesses depend on the exponent's
//! bits. num-bigint stays the reference: tests compare every result with its `modpow`.
//!
//! Indexing here is over fixed-size arrays with loop bounds equal to their lengths.
#![allow(clippy::indexing_slicing)]

use num_bigint::BigUint;

#[cfg(target_arch = "x86_64")]
mod ifma;
mod portable;

#[cfg(target_arch = "x86_64")]
pub use ifma::Ifma;
pub use portable::Portable;

/// Window width in bits.
const WINDOW: u32 = 4;

/// Entries of a window's table.
const TABLE: usize = 1 << WINDOW;

/// Montgomery multiplication modulo one fixed 2048-bit odd modulus, in some representation.
pub trait Arithmetic {
    /// A number in Montgomery form, as limbs. It may be above the modulus (each arithmetic
    /// says how far); [`Arithmetic::leave`] reduces it fully.
    type Elem: Copy + AsRef<[u64]> + AsMut<[u64]>;

    /// One, in Montgomery form.
    fn one(&self) -> Self::Elem;

    /// Puts `value` (below the modulus) into Montgomery form.
    fn enter(&self, value: &BigUint) -> Self::Elem;

    /// Takes `value` out of Montgomery form, reduced below the modulus.
    fn leave(&self, value: &Self::Elem) -> BigUint;

    /// Computes `a[k] * b[k] / R` for each lane `k`.
    ///
    /// The lanes are independent: interleaving them in one loop gives the processor several
    /// dependency chains to overlap, which a single multiplication (latency-bound) lacks.
    fn mul_n<const N: usize>(&self, a: &[Self::Elem; N], b: &[Self::Elem; N]) -> [Self::Elem; N];

    /// Computes `a[k]^2 / R` for each lane.
    fn sqr_n<const N: usize>(&self, a: &[Self::Elem; N]) -> [Self::Elem; N] {
        self.mul_n(a, a)
    }

    /// Computes `a * b / R`.
    fn mul(&self, a: &Self::Elem, b: &Self::Elem) -> Self::Elem {
        let [product] = self.mul_n(&[*a], &[*b]);
        product
    }

    /// Computes `a^2 / R`.
    fn sqr(&self, a: &Self::Elem) -> Self::Elem {
        let [square] = self.sqr_n(&[*a]);
        square
    }
}

/// Computes `bases[k]^exponents[k] mod m` for every lane at once (bases below `m`, exponents
/// big-endian). Two lanes cost much less than two calls: see [`Arithmetic::mul_n`]. Shorter
/// exponents are read as if padded with leading zeros.
pub fn pow_n<A: Arithmetic, const N: usize>(
    arithmetic: &A,
    bases: [&BigUint; N],
    exponents: [&[u8]; N],
) -> [BigUint; N] {
    let len = exponents.iter().map(|e| e.len()).max().unwrap_or(0);
    let base = bases.map(|base| arithmetic.enter(base));
    let mut tables = [[arithmetic.one(); TABLE]; N];
    for i in 1..TABLE {
        let previous: [A::Elem; N] = std::array::from_fn(|k| tables[k][i - 1]);
        let next = arithmetic.mul_n(&previous, &base);
        for k in 0..N {
            tables[k][i] = next[k];
        }
    }
    let mut acc = [arithmetic.one(); N];
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
                acc = arithmetic.sqr_n(&acc);
            }
            let picked: [A::Elem; N] =
                std::array::from_fn(|k| select(&tables[k], (bytes[k] >> shift) & 0x0f));
            acc = arithmetic.mul_n(&acc, &picked);
        }
    }
    acc.map(|value| arithmetic.leave(&value))
}

/// Precomputed powers of one fixed base, so `base^x` costs one multiplication per 4 bits of
/// `x` and no squarings (a comb: `table[k][d] = base^(d * 16^k)` in Montgomery form).
pub struct FixedBase<A: Arithmetic> {
    table: Vec<[A::Elem; TABLE]>,
}

impl<A: Arithmetic> FixedBase<A> {
    /// Precomputes the table for exponents of up to `exponent_len` bytes: `2 * exponent_len`
    /// rows of 16 entries (for 32 bytes: 64 rows, 256 – 320 KiB, about 1,200 multiplications).
    /// Longer exponents are not supported: [`FixedBase::pow`] reads only that many.
    pub fn new(arithmetic: &A, base: &BigUint, exponent_len: usize) -> Self {
        let rows = 2 * exponent_len;
        let mut table = Vec::with_capacity(rows);
        let mut power = arithmetic.enter(base);
        for _ in 0..rows {
            let mut row = [arithmetic.one(); TABLE];
            for d in 1..TABLE {
                row[d] = arithmetic.mul(&row[d - 1], &power);
            }
            for _ in 0..WINDOW {
                power = arithmetic.sqr(&power);
            }
            table.push(row);
        }
        Self { table }
    }

    /// Computes `base^exponent mod m` for a big-endian exponent of at most the table's length.
    pub fn pow(&self, arithmetic: &A, exponent: &[u8]) -> BigUint {
        debug_assert!(exponent.len() * 2 <= self.table.len());
        let nibbles = exponent
            .iter()
            .rev()
            .flat_map(|byte| [byte & 0x0f, byte >> 4]);
        let mut acc = arithmetic.one();
        for (row, nibble) in self.table.iter().zip(nibbles) {
            acc = arithmetic.mul(&acc, &select(row, nibble));
        }
        arithmetic.leave(&acc)
    }
}

/// `-m^{-1} mod 2^64` for an odd `m`; taken mod `2^k`, it is `-m^{-1} mod 2^k` (what a
/// Montgomery reduction with `k`-bit limbs needs).
fn negated_inverse(m: &BigUint) -> u64 {
    let low = m.iter_u64_digits().next().unwrap_or(1);
    // Newton's iteration: each step doubles the good bits, one to 64 in six steps.
    let mut inverse: u64 = 1;
    for _ in 0..6 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(low.wrapping_mul(inverse)));
    }
    inverse.wrapping_neg()
}

/// Returns `table[index]`, reading every entry so the access pattern does not reveal `index`.
fn select<E: Copy + AsRef<[u64]> + AsMut<[u64]>>(table: &[E; TABLE], index: u8) -> E {
    let mut out = table[0];
    let first = u64::from(index == 0).wrapping_neg();
    for limb in out.as_mut() {
        *limb &= first;
    }
    for (i, entry) in table.iter().enumerate().skip(1) {
        let mask = u64::from(i as u8 == index).wrapping_neg();
        for (limb, from) in out.as_mut().iter_mut().zip(entry.as_ref()) {
            *limb |= from & mask;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::crypto::dh::prime_bytes;

    fn prime() -> BigUint {
        BigUint::from_bytes_be(&prime_bytes())
    }

    /// Runs `check` with every arithmetic this processor can run (IFMA only where it has it).
    fn with_each(check: impl Fn(&dyn Fn(&BigUint, &[u8]) -> BigUint, &dyn Fn(&[u8]) -> BigUint)) {
        let p = prime();
        let two = BigUint::from(2u32);
        let portable = Portable::new(&p);
        let comb = FixedBase::new(&portable, &two, 32);
        check(
            &|base, exponent| pow_n(&portable, [base], [exponent])[0].clone(),
            &|exponent| comb.pow(&portable, exponent),
        );
        #[cfg(target_arch = "x86_64")]
        if let Some(ifma) = Ifma::detect(&p) {
            let comb = FixedBase::new(&ifma, &two, 32);
            check(
                &|base, exponent| pow_n(&ifma, [base], [exponent])[0].clone(),
                &|exponent| comb.pow(&ifma, exponent),
            );
        }
    }

    proptest! {
        #[test]
        fn agrees_with_num_bigint(base in prop::collection::vec(any::<u8>(), 1..=256),
                                  exponent in prop::collection::vec(any::<u8>(), 0..=32)) {
            let p = prime();
            let base = BigUint::from_bytes_be(&base) % &p;
            let expected = base.modpow(&BigUint::from_bytes_be(&exponent), &p);
            with_each(|pow, _| assert_eq!(pow(&base, &exponent), expected));
        }
    }

    proptest! {
        #[test]
        fn fixed_base_agrees_with_num_bigint(exponent in prop::collection::vec(any::<u8>(), 0..=32)) {
            let p = prime();
            let expected = BigUint::from(2u32).modpow(&BigUint::from_bytes_be(&exponent), &p);
            with_each(|_, comb| assert_eq!(comb(&exponent), expected));
        }
    }

    fn two_lanes<A: Arithmetic>(arithmetic: &A, a: &BigUint, b: &BigUint, x: &[u8], y: &[u8]) {
        let p = prime();
        let [ax, by] = pow_n(arithmetic, [a, b], [x, y]);
        assert_eq!(ax, a.modpow(&BigUint::from_bytes_be(x), &p));
        assert_eq!(by, b.modpow(&BigUint::from_bytes_be(y), &p));
    }

    proptest! {
        #[test]
        fn two_lanes_agree_with_num_bigint(a in prop::collection::vec(any::<u8>(), 1..=256),
                                           b in prop::collection::vec(any::<u8>(), 1..=256),
                                           x in prop::collection::vec(any::<u8>(), 0..=32),
                                           y in prop::collection::vec(any::<u8>(), 0..=32)) {
            let p = prime();
            let (a, b) = (BigUint::from_bytes_be(&a) % &p, BigUint::from_bytes_be(&b) % &p);
            two_lanes(&Portable::new(&p), &a, &b, &x, &y);
            #[cfg(target_arch = "x86_64")]
            if let Some(ifma) = Ifma::detect(&p) {
                two_lanes(&ifma, &a, &b, &x, &y);
            }
        }
    }

    #[test]
    fn edge_values() {
        let p = prime();
        let p1 = &p - 1u32;
        for base in [
            BigUint::ZERO,
            BigUint::from(1u32),
            BigUint::from(2u32),
            &p - 2u32,
            p1.clone(),
        ] {
            for exponent in [vec![], vec![0], vec![1], vec![0xff; 32], p1.to_bytes_be()] {
                let expected = base.modpow(&BigUint::from_bytes_be(&exponent), &p);
                with_each(|pow, _| assert_eq!(pow(&base, &exponent), expected));
            }
        }
    }

    #[test]
    fn select_reads_the_indexed_entry() {
        let table: [[u64; 3]; TABLE] = std::array::from_fn(|i| [i as u64, !(i as u64), 7]);
        for index in 0..TABLE as u8 {
            assert_eq!(select(&table, index), table[usize::from(index)]);
        }
    }
}
