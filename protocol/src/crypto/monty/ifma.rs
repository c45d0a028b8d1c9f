//! 52-bit limbs in AVX-512 registers, multiplied with the IFMA instructions.
//!
//! `vpmadd52luq` and `vpmadd52huq` multiply eight pairs of 52-bit lanes at once and add the low
//! or the high 52 bits of each 104-bit product to a 64-bit accumulator lane. A 2048-bit number is
//! 40 such limbs (2,080 bits, five registers), and one Montgomery multiplication is 40 rounds of
//! "add `a * b[i]`, add the `y * m` that clears the lowest limb, drop that limb": an almost
//! Montgomery multiplication (Gueron and Krasnov, 2016). The lanes' spare 12 bits absorb the
//! carries, which are propagated once, at the end of the 40 rounds.
//!
//! With `R = 2^2080 > 4m`, inputs below `2m` give a result below `2m`
//! (`(a*b + Y*m) / R < 4m^2 / R + m < 2m`), so the exponentiation needs no subtraction until
//! [`Arithmetic::leave`], which subtracts without branching.
//!
//! Safety: the arithmetic is in `#[target_feature]` functions, which may run only on a
//! processor that has those features. An [`Ifma`] is made only by [`Ifma::detect`], which
//! checks them at run time, so holding one is the proof; the one `unsafe` block, in
//! [`Ifma::mul_n`](Arithmetic::mul_n), relies on it.
//!
//! Indexing here is over fixed-size arrays with loop bounds equal to their lengths.
#![allow(clippy::indexing_slicing)]

use std::arch::x86_64::{
    __m512i, _mm_cvtsi64_si128, _mm_cvtsi128_si64, _mm256_extract_epi64, _mm512_add_epi64,
    _mm512_alignr_epi64, _mm512_castsi512_si128, _mm512_castsi512_si256, _mm512_extracti64x4_epi64,
    _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_set_epi64, _mm512_set1_epi64,
    _mm512_setzero_si512, _mm512_zextsi128_si512,
};

use num_bigint::BigUint;

use super::{Arithmetic, negated_inverse};

/// Bits per limb: what one IFMA multiplier takes.
const BITS: u32 = 52;

/// The low [`BITS`] of a lane.
const MASK: u64 = (1 << BITS) - 1;

/// Limbs of a number below `2^2080`.
const LIMBS: usize = 40;

/// Limbs per register.
const LANES: usize = 8;

/// Registers per number.
const REGS: usize = LIMBS / LANES;

/// A number in 52-bit limbs, little-endian; each limb below `2^52`.
type Limbs = [u64; LIMBS];

/// A number in registers, or an accumulator whose lanes may exceed 52 bits.
type Regs = [__m512i; REGS];

/// Precomputed constants for one odd 2048-bit modulus, on a processor with AVX-512 IFMA.
pub struct Ifma {
    m: Limbs,
    /// `-m^{-1} mod 2^52`.
    k0: u64,
    /// `R^2 mod m`, with `R = 2^2080`.
    r2: Limbs,
    /// `R mod m`: one in Montgomery form.
    one: Limbs,
}

impl Ifma {
    /// Prepares the constants for `m` (odd, at most 2048 bits), or `None` when this processor
    /// lacks AVX-512 IFMA.
    pub fn detect(m: &BigUint) -> Option<Self> {
        let available = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512ifma");
        if !available {
            return None;
        }
        let r = BigUint::from(1u32) << (BITS as usize * LIMBS);
        Some(Self {
            m: to_limbs(m),
            k0: negated_inverse(m) & MASK,
            r2: to_limbs(&((&r * &r) % m)),
            one: to_limbs(&(&r % m)),
        })
    }
}

impl Arithmetic for Ifma {
    /// Below `2m`.
    type Elem = Limbs;

    fn one(&self) -> Limbs {
        self.one
    }

    fn enter(&self, value: &BigUint) -> Limbs {
        self.mul(&to_limbs(value), &self.r2)
    }

    fn leave(&self, value: &Limbs) -> BigUint {
        let mut unit = [0u64; LIMBS];
        unit[0] = 1;
        // (value + Y*m) / R with value < 2m: at most m, and m only for a multiple of m.
        let product = self.mul(value, &unit);
        from_limbs(&subtract_if_at_least(&product, &self.m))
    }

    /// Inputs below `2m`; so is every result.
    fn mul_n<const N: usize>(&self, a: &[Limbs; N], b: &[Limbs; N]) -> [Limbs; N] {
        // SAFETY: `mul_n_ifma` needs avx512f and avx512ifma, and an `Ifma` is only made by
        // `detect`, after it found both on this processor.
        #[allow(unsafe_code)]
        unsafe {
            mul_n_ifma(&self.m, self.k0, a, b)
        }
    }
}

/// `a[k] * b[k] / R` for each lane `k`: 40 rounds of [`round`], then the carries.
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_n_ifma<const N: usize>(m: &Limbs, k0: u64, a: &[Limbs; N], b: &[Limbs; N]) -> [Limbs; N] {
    let zero = _mm512_setzero_si512();
    let modulus = load(m);
    let mut a_regs = [[zero; REGS]; N];
    for k in 0..N {
        a_regs[k] = load(&a[k]);
    }
    let mut acc = [[zero; REGS]; N];
    // Limb by limb across the lanes, so that the lanes' rounds interleave.
    #[allow(clippy::needless_range_loop)]
    for i in 0..LIMBS {
        for k in 0..N {
            round(&mut acc[k], &a_regs[k], b[k][i], &modulus, m[0], k0);
        }
    }
    let mut out = [[0u64; LIMBS]; N];
    for k in 0..N {
        out[k] = carry(&store(&acc[k]));
    }
    out
}

/// One round: `acc = (acc + a * b_i + y * m) / 2^52`, with `y` the multiple of `m` that makes
/// the lowest limb divisible by `2^52`.
#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn round(acc: &mut Regs, a: &Regs, b_i: u64, m: &Regs, m0: u64, k0: u64) {
    let zero = _mm512_setzero_si512();
    let b = _mm512_set1_epi64(b_i as i64);
    for r in 0..REGS {
        acc[r] = _mm512_madd52lo_epu64(acc[r], a[r], b);
    }
    let low = _mm_cvtsi128_si64(_mm512_castsi512_si128(acc[0])) as u64;
    let y = low.wrapping_mul(k0) & MASK;
    let y_wide = _mm512_set1_epi64(y as i64);
    for r in 0..REGS {
        acc[r] = _mm512_madd52lo_epu64(acc[r], m[r], y_wide);
    }
    // The lowest lane is now a multiple of 2^52 (what is above carries into the next limb);
    // drop it, shifting every lane down one limb.
    let carried = (low + (m0.wrapping_mul(y) & MASK)) >> BITS;
    for r in 0..REGS - 1 {
        acc[r] = _mm512_alignr_epi64::<1>(acc[r + 1], acc[r]);
    }
    acc[REGS - 1] = _mm512_alignr_epi64::<1>(zero, acc[REGS - 1]);
    // The high halves of this round's products belong one limb up: after the shift, in place.
    for r in 0..REGS {
        acc[r] = _mm512_madd52hi_epu64(acc[r], a[r], b);
        acc[r] = _mm512_madd52hi_epu64(acc[r], m[r], y_wide);
    }
    let carried = _mm512_zextsi128_si512(_mm_cvtsi64_si128(carried as i64));
    acc[0] = _mm512_add_epi64(acc[0], carried);
}

#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn load(limbs: &Limbs) -> Regs {
    let mut regs = [_mm512_setzero_si512(); REGS];
    for (reg, l) in regs.iter_mut().zip(limbs.chunks_exact(LANES)) {
        *reg = _mm512_set_epi64(
            l[7] as i64,
            l[6] as i64,
            l[5] as i64,
            l[4] as i64,
            l[3] as i64,
            l[2] as i64,
            l[1] as i64,
            l[0] as i64,
        );
    }
    regs
}

#[target_feature(enable = "avx512f,avx512ifma")]
#[inline]
fn store(regs: &Regs) -> Limbs {
    let mut limbs = [0u64; LIMBS];
    for (reg, l) in regs.iter().zip(limbs.chunks_exact_mut(LANES)) {
        let low = _mm512_castsi512_si256(*reg);
        let high = _mm512_extracti64x4_epi64::<1>(*reg);
        l[0] = _mm256_extract_epi64::<0>(low) as u64;
        l[1] = _mm256_extract_epi64::<1>(low) as u64;
        l[2] = _mm256_extract_epi64::<2>(low) as u64;
        l[3] = _mm256_extract_epi64::<3>(low) as u64;
        l[4] = _mm256_extract_epi64::<0>(high) as u64;
        l[5] = _mm256_extract_epi64::<1>(high) as u64;
        l[6] = _mm256_extract_epi64::<2>(high) as u64;
        l[7] = _mm256_extract_epi64::<3>(high) as u64;
    }
    limbs
}

/// Propagates the accumulator's carries: every limb back below `2^52`. The value is below
/// `2m < 2^2080`, so nothing carries out of the top limb.
fn carry(lanes: &Limbs) -> Limbs {
    let mut out = [0u64; LIMBS];
    let mut carry = 0u64;
    for (limb, lane) in out.iter_mut().zip(lanes) {
        // A lane holds at most four 52-bit additions per round for 40 rounds: below 2^60.
        let sum = lane + carry;
        *limb = sum & MASK;
        carry = sum >> BITS;
    }
    out
}

/// `x - m` when `x >= m`, else `x`, without branching on the value.
fn subtract_if_at_least(x: &Limbs, m: &Limbs) -> Limbs {
    let mut difference = [0u64; LIMBS];
    let mut borrow = 0u64;
    for j in 0..LIMBS {
        // Both limbs below 2^52: a borrow shows as the top bit of the wrapped difference.
        let d = x[j].wrapping_sub(m[j]).wrapping_sub(borrow);
        difference[j] = d & MASK;
        borrow = d >> 63;
    }
    let keep_x = borrow.wrapping_neg();
    let mut out = [0u64; LIMBS];
    for j in 0..LIMBS {
        out[j] = (x[j] & keep_x) | (difference[j] & !keep_x);
    }
    out
}

fn to_limbs(value: &BigUint) -> Limbs {
    let mut out = [0u64; LIMBS];
    let mut pending: u128 = 0;
    let mut bits = 0;
    let mut at = 0;
    for digit in value.iter_u64_digits() {
        pending |= u128::from(digit) << bits;
        bits += 64;
        while bits >= BITS && at < LIMBS {
            out[at] = pending as u64 & MASK;
            pending >>= BITS;
            bits -= BITS;
            at += 1;
        }
    }
    if at < LIMBS {
        out[at] = pending as u64 & MASK;
    }
    out
}

fn from_limbs(limbs: &Limbs) -> BigUint {
    let mut bytes = Vec::with_capacity(LIMBS * BITS as usize / 8 + 8);
    let mut pending: u128 = 0;
    let mut bits = 0;
    for limb in limbs {
        pending |= u128::from(*limb) << bits;
        bits += BITS;
        while bits >= 8 {
            bytes.push(pending as u8);
            pending >>= 8;
            bits -= 8;
        }
    }
    bytes.push(pending as u8);
    BigUint::from_bytes_le(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::dh::prime_bytes;

    fn prime() -> BigUint {
        BigUint::from_bytes_be(&prime_bytes())
    }

    #[test]
    fn limbs_round_trip() {
        let p = prime();
        for value in [
            BigUint::ZERO,
            BigUint::from(u64::MAX),
            &p - 1u32,
            &p * 2u32 - 1u32,
        ] {
            assert_eq!(from_limbs(&to_limbs(&value)), value);
        }
    }

    #[test]
    fn products_of_the_largest_inputs_stay_below_2m() {
        let p = prime();
        let Some(ifma) = Ifma::detect(&p) else {
            eprintln!("no AVX-512 IFMA on this processor: nothing to test");
            return;
        };
        let r_inverse = (BigUint::from(1u32) << (BITS as usize * LIMBS))
            .modinv(&p)
            .unwrap();
        let largest = &p * 2u32 - 1u32;
        for (a, b) in [
            (&largest, &largest),
            (&largest, &BigUint::ZERO),
            (&p, &largest),
        ] {
            let product = from_limbs(&ifma.mul(&to_limbs(a), &to_limbs(b)));
            assert!(product < &p * 2u32);
            assert_eq!(product % &p, a * b * &r_inverse % &p);
        }
    }

    #[test]
    fn leave_reduces_a_multiple_of_m_to_zero() {
        let p = prime();
        let Some(ifma) = Ifma::detect(&p) else {
            return;
        };
        assert_eq!(ifma.leave(&to_limbs(&p)), BigUint::ZERO);
        assert_eq!(ifma.leave(&ifma.one()), BigUint::from(1u32));
    }
}
