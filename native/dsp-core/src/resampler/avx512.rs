//! AVX-512F kernels (x86-64 only; selected at run time after feature detection).
//!
//! Only AVX-512F instructions are used (no BW/DQ/VL): 16-lane FMA, masked permutes,
//! rounding-mode conversions and the saturating `vpmovsdw` narrowing store.
//!
//! As in `avx2.rs`, every output is computed with an arithmetic that does not depend on where
//! it falls in a call (which lane, which group), so output is independent of the chunking.
// Kernels index fixed-size register arrays and take the full streaming state.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

use core::arch::x86_64::*;

use super::design::interp_position;
use super::Step;

/// floor(v + 0.5) as i32 (libspeexdsp's rounding; saturation happens on narrowing).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn round_i32(v: __m512) -> __m512i {
    _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(_mm512_add_ps(
        v,
        _mm512_set1_ps(0.5),
    ))
}

/// Stores the lanes of `v` selected by `mask` as rounded, saturated int16 at `out`
/// (lane `l` to `out[l]`; unselected lanes are neither written nor faulted on).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store_i16x16(v: __m512, out: *mut i16, mask: __mmask16) {
    _mm512_mask_cvtsepi32_storeu_epi16(out, mask, round_i32(v));
}

#[inline(always)]
fn lane_mask(cnt: usize) -> __mmask16 {
    if cnt >= 16 {
        0xffff
    } else {
        ((1u32 << cnt) - 1) as __mmask16
    }
}

/// 512 → 256 bits: lane k + lane k+8 (the first step of every horizontal sum here).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn fold256(v: __m512) -> __m256 {
    let lo = _mm512_castps512_ps256(v);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    _mm256_add_ps(lo, hi)
}

/// Horizontal sums of 8 vectors (lane k = sum of `a[k]`).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn hsum8(a: &[__m512; 8]) -> __m256 {
    let f: [__m256; 8] = core::array::from_fn(|k| fold256(a[k]));
    let s01 = _mm256_hadd_ps(f[0], f[1]);
    let s23 = _mm256_hadd_ps(f[2], f[3]);
    let s45 = _mm256_hadd_ps(f[4], f[5]);
    let s67 = _mm256_hadd_ps(f[6], f[7]);
    let t0 = _mm256_hadd_ps(s01, s23);
    let t1 = _mm256_hadd_ps(s45, s67);
    let lo = _mm256_permute2f128_ps::<0x20>(t0, t1);
    let hi = _mm256_permute2f128_ps::<0x31>(t0, t1);
    _mm256_add_ps(lo, hi)
}

/// Horizontal sums of 4 vectors.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn hsum4(a: &[__m512; 4]) -> __m128 {
    let f: [__m256; 4] = core::array::from_fn(|k| fold256(a[k]));
    let s01 = _mm256_hadd_ps(f[0], f[1]);
    let s23 = _mm256_hadd_ps(f[2], f[3]);
    let t = _mm256_hadd_ps(s01, s23);
    _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps::<1>(t))
}

/// Stores 8 sums (rounded, saturated) to `out[..cnt]`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store_sums8(s: __m256, out: *mut i16, cnt: usize) {
    let v = _mm512_castps256_ps512(s);
    store_i16x16(v, out, lane_mask(cnt.min(8)));
}

// ------------------------------------------------------------------ integer upsampling

/// Integer upsampling (`num == 1`): for every position `p` in `last..c`, outputs
/// `den·(p − last) + f` for all phases `f`. Positions go 16 per vector (one phase per
/// vector, coefficient broadcast, no horizontal sums), B vectors per group.
/// * `den ≤ 6`: all phases of a group at once; the P phase vectors are interleaved in
///   registers (masked permutes) and written with saturating narrowing stores.
/// * larger `den`: phases in groups of up to 3, strided scalar stores.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn up_int(
    x: &[f32],
    coefs: &[f32],
    n: usize,
    den: usize,
    last: &mut usize,
    c: usize,
    out: &mut [i16],
) -> usize {
    if *last >= c {
        return 0;
    }
    let npos = c - *last;
    let total = npos * den;
    debug_assert!(out.len() >= total);
    debug_assert!(x.len() >= *last + npos + n - 1 + 15);
    debug_assert!(coefs.len() >= den * n);
    let xp = x.as_ptr().add(*last);
    let cp = coefs.as_ptr();
    let op = out.as_mut_ptr();
    match den {
        2 => up_all::<2, 6>(xp, cp, n, npos, op),
        3 => up_all::<3, 5>(xp, cp, n, npos, op),
        4 => up_all::<4, 4>(xp, cp, n, npos, op),
        5 => up_all::<5, 3>(xp, cp, n, npos, op),
        6 => up_all::<6, 3>(xp, cp, n, npos, op),
        _ => {
            let mut f = 0;
            while f < den {
                let rem = den - f;
                let p = match rem {
                    1 => 1,
                    2 | 4 => 2,
                    _ => 3,
                };
                match p {
                    1 => up_strided::<1, 4>(xp, cp, n, den, f, npos, op),
                    2 => up_strided::<2, 4>(xp, cp, n, den, f, npos, op),
                    _ => up_strided::<3, 4>(xp, cp, n, den, f, npos, op),
                }
                f += p;
            }
        }
    }
    *last = c;
    total
}

/// acc[q][b] lane l = Σ_j rows[q][j] · x[16b + l + j]: the shared inner loop.
#[inline(always)]
unsafe fn up_dots<const P: usize, const B: usize>(
    xb: *const f32,
    rows: &[*const f32; P],
    n: usize,
) -> [[__m512; B]; P] {
    let mut acc = [[_mm512_setzero_ps(); B]; P];
    for j in 0..n {
        let xs: [__m512; B] = core::array::from_fn(|b| _mm512_loadu_ps(xb.add(j + 16 * b)));
        for q in 0..P {
            let cf = _mm512_set1_ps(*rows[q].add(j));
            for b in 0..B {
                acc[q][b] = _mm512_fmadd_ps(cf, xs[b], acc[q][b]);
            }
        }
    }
    acc
}

/// All `P == den` phases at once, groups of 16·B positions (the last group with fewer
/// vectors, so no work is wasted beyond the last partial vector).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn up_all<const P: usize, const B: usize>(x: *const f32, coefs: *const f32, n: usize, npos: usize, out: *mut i16) {
    let mut p = 0;
    while npos - p >= 16 * B {
        up_all_group::<P, B>(x, coefs, n, p, 16 * B, out);
        p += 16 * B;
    }
    let rem = npos - p;
    if rem > 0 {
        // Dispatch on the vectors the tail needs (B ≤ 6).
        match rem.div_ceil(16) {
            1 => up_all_group::<P, 1>(x, coefs, n, p, rem, out),
            2 => up_all_group::<P, 2>(x, coefs, n, p, rem, out),
            3 => up_all_group::<P, 3>(x, coefs, n, p, rem, out),
            4 => up_all_group::<P, 4>(x, coefs, n, p, rem, out),
            5 => up_all_group::<P, 5>(x, coefs, n, p, rem, out),
            _ => up_all_group::<P, 6>(x, coefs, n, p, rem, out),
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn up_all_group<const P: usize, const B: usize>(
    x: *const f32,
    coefs: *const f32,
    n: usize,
    p: usize,
    valid: usize,
    out: *mut i16,
) {
    let rows: [*const f32; P] = core::array::from_fn(|q| coefs.add(q * n));
    let acc = up_dots::<P, B>(x.add(p), &rows, n);
    // Output vector k (16 consecutive outputs 16k..16k+15 of this vector's 16·P) takes lane
    // l from phase (16k+l) mod P at position (16k+l) / P.
    for b in 0..B {
        let vp = valid.saturating_sub(16 * b).min(16);
        if vp == 0 {
            break;
        }
        let r: [__m512i; P] = core::array::from_fn(|q| round_i32(acc[q][b]));
        let ob = out.add((p + 16 * b) * P);
        for k in 0..P {
            let mut idx = [0i32; 16];
            let mut masks = [0u16; P];
            for l in 0..16 {
                let o = 16 * k + l;
                idx[l] = (o / P) as i32;
                masks[o % P] |= 1 << l;
            }
            let iv = _mm512_loadu_si512(idx.as_ptr() as *const _);
            let mut v = _mm512_permutexvar_epi32(iv, r[0]);
            for q in 1..P {
                v = _mm512_mask_permutexvar_epi32(v, masks[q], iv, r[q]);
            }
            let cnt = (vp * P).saturating_sub(16 * k);
            if cnt == 0 {
                break;
            }
            _mm512_mask_cvtsepi32_storeu_epi16(ob.add(16 * k), lane_mask(cnt), v);
        }
    }
}

/// Phases `f0 .. f0+P` of `den`, outputs written with stride `den`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn up_strided<const P: usize, const B: usize>(
    x: *const f32,
    coefs: *const f32,
    n: usize,
    den: usize,
    f0: usize,
    npos: usize,
    out: *mut i16,
) {
    let rows: [*const f32; P] = core::array::from_fn(|q| coefs.add((f0 + q) * n));
    let mut p = 0;
    while p < npos {
        let acc = up_dots::<P, B>(x.add(p), &rows, n);
        let valid = (npos - p).min(16 * B);
        for q in 0..P {
            for b in 0..B {
                if 16 * b >= valid {
                    break;
                }
                let mut tmp = [0i16; 16];
                store_i16x16(acc[q][b], tmp.as_mut_ptr(), 0xffff);
                let cnt = (valid - 16 * b).min(16);
                let o = out.add((p + 16 * b) * den + f0 + q);
                for (l, &t) in tmp.iter().enumerate().take(cnt) {
                    *o.add(l * den) = t;
                }
            }
        }
        p += 16 * B;
    }
}

// ------------------------------------------------------------------ integer decimation

/// Integer decimation (`den == 1`): outputs at positions `last, last+num, … < c`.
///
/// Each output is a horizontal dot product (16 lanes of partial sums, reduced at the end),
/// with its taps chunked so that every history load is a 64-byte aligned load: output `k`
/// starts at the line that holds its first sample, whose lane `s_k` is its first tap's, and
/// the first and last chunks are masked. Outputs `k` and `k + S`, `S·num ≡ 0 (mod 16)`, have
/// the same `s`, so a group `{k, k+S, …, k+(J−1)S}` shares every (unaligned) coefficient
/// load: per chunk 1 coefficient load and J aligned history loads feed J FMAs.
/// `s_k` is the lane of `x[k]` in its line, which follows its stream position (the history
/// buffer is 64-byte aligned and compacted by multiples of 16), so the summation order of an
/// output does not depend on the chunking of the input.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn decim(
    x: &[f32],
    coefs: &[f32],
    n: usize,
    num: usize,
    last: &mut usize,
    c: usize,
    out: &mut [i16],
) -> usize {
    if *last >= c {
        return 0;
    }
    let nout = (c - *last).div_ceil(num);
    debug_assert!(out.len() >= nout);
    debug_assert!(x.len() >= *last + (nout - 1) * num + n);
    debug_assert!(coefs.len() >= n && n % 8 == 0);
    let d = Decim {
        base: x.as_ptr().add(*last),
        h: coefs.as_ptr(),
        n,
        num,
        nout,
        nchunks: (n + 15) / 16 + 1,
        out: out.as_mut_ptr(),
    };
    // Smallest S with S·num a multiple of 16 (= 16·q).
    let s_step = 16 / gcd16(num);
    match num / gcd16(num) {
        1 => decim_q::<1>(&d, s_step),
        3 => decim_q::<3>(&d, s_step),
        5 => decim_q::<5>(&d, s_step),
        _ => decim_q::<0>(&d, s_step),
    }
    *last += nout * num;
    nout
}

/// Outputs in groups `{k, k+S, …, k+(J−1)S}` (J = 10: a 20 ms or 10 ms frame at 8 kHz out
/// is a whole number of groups), then the tail with fewer outputs per group and several
/// residues per pass so that there are always ≥ 8 accumulators.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn decim_q<const Q: usize>(d: &Decim, s_step: usize) {
    const J: usize = 10;
    let nout = d.nout;
    let mut k = 0;
    while nout - k >= J * s_step {
        for a in 0..s_step {
            d.group::<1, J, Q>([k + a], s_step);
        }
        k += J * s_step;
    }
    let rem = nout - k;
    if rem > 0 {
        let jt = rem.div_ceil(s_step);
        let na = s_step.min(rem);
        match jt {
            1 => d.tail::<8, 1, Q>(k, na, s_step),
            2 => d.tail::<4, 2, Q>(k, na, s_step),
            3 => d.tail::<3, 3, Q>(k, na, s_step),
            4 => d.tail::<2, 4, Q>(k, na, s_step),
            5 => d.tail::<2, 5, Q>(k, na, s_step),
            6 => d.tail::<2, 6, Q>(k, na, s_step),
            7 => d.tail::<1, 7, Q>(k, na, s_step),
            8 => d.tail::<1, 8, Q>(k, na, s_step),
            9 => d.tail::<1, 9, Q>(k, na, s_step),
            _ => d.tail::<1, 10, Q>(k, na, s_step),
        }
    }
}

/// `p`, through an empty `asm!` (no instruction): the optimiser cannot see where it comes from.
#[inline(always)]
fn opaque(mut p: *const f32) -> *const f32 {
    // SAFETY: an empty template that only "modifies" a register.
    unsafe { core::arch::asm!("/* {0} */", inout(reg) p, options(pure, nomem, nostack, preserves_flags)) };
    p
}

#[inline(always)]
fn gcd16(m: usize) -> usize {
    1 << m.trailing_zeros().min(4)
}

/// Lanes `l` of chunk `m` (taps `16m − s + l`) that are real taps (`0 ≤ tap < n`).
#[inline(always)]
fn chunk_mask(m: usize, s: usize, n: usize) -> __mmask16 {
    let lo = s.saturating_sub(16 * m); // first valid lane
    let hi = (n + s).saturating_sub(16 * m).min(16); // one past the last valid lane
    if hi <= lo {
        0
    } else {
        (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as __mmask16
    }
}

struct Decim {
    base: *const f32,
    h: *const f32,
    n: usize,
    num: usize,
    nout: usize,
    /// Chunks per output: enough for any first-tap lane `s`.
    nchunks: usize,
    out: *mut i16,
}

impl Decim {
    /// Tail groups: residues `a` in `0..na` (of `s_step`), J outputs each.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tail<const NA: usize, const J: usize, const Q: usize>(&self, k: usize, na: usize, s_step: usize) {
        let mut a = 0;
        while a < na {
            // Residues past `na` repeat the last one (computed and stored twice: harmless).
            let ks: [usize; NA] = core::array::from_fn(|g| k + (a + g).min(na - 1));
            self.group::<NA, J, Q>(ks, s_step);
            a += NA;
        }
    }

    /// Outputs `ks[g] + i·s_step` for `g < NA`, `i < J`; those `≥ nout` are not stored.
    /// `Q > 0`: `s_step·num = 16·Q`, output `i`'s history is `16·Q·i` floats after output
    /// 0's (one pointer per residue, constant offsets); those past `nout` read at most
    /// `16·Q` floats past the last output's window (within the history buffer's PAD).
    /// `Q == 0` (any `num`): one pointer per output, those past `nout` repeat a valid one.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn group<const NA: usize, const J: usize, const Q: usize>(&self, ks: [usize; NA], s_step: usize) {
        let n = self.n;
        let nc = self.nchunks;
        let mut xs = [[self.base; J]; NA];
        let mut hs = [self.h; NA];
        let mut ss = [0usize; NA];
        for g in 0..NA {
            let p0 = self.base.add(ks[g] * self.num);
            // Lane of the first tap; `x − s` and `h − s` are line-aligned / never
            // dereferenced for masked-off lanes.
            let s = (p0 as usize >> 2) & 15;
            ss[g] = s;
            hs[g] = self.h.wrapping_sub(s);
            for i in 0..J {
                let mut k = ks[g] + i * s_step;
                if Q == 0 {
                    while k >= self.nout {
                        k -= s_step;
                    }
                }
                xs[g][i] = self.base.wrapping_add(k * self.num).wrapping_sub(s);
            }
        }
        let xa = |g: usize, i: usize, m: usize| -> *const f32 {
            if Q > 0 {
                xs[g][0].wrapping_add(16 * (m + i * Q))
            } else {
                xs[g][i].wrapping_add(16 * m)
            }
        };
        let mut acc = [[_mm512_setzero_ps(); J]; NA];
        // First chunk (taps < 0 masked off).
        for g in 0..NA {
            let m0 = chunk_mask(0, ss[g], n);
            let hv = _mm512_maskz_loadu_ps(m0, hs[g]);
            for i in 0..J {
                acc[g][i] = _mm512_mul_ps(hv, _mm512_maskz_loadu_ps(m0, xa(g, i, 0)));
            }
        }
        // Full chunks.
        let tail0 = (nc - 2).max(1);
        for m in 1..tail0 {
            for g in 0..NA {
                let hv = _mm512_loadu_ps(hs[g].add(16 * m));
                if Q > 0 {
                    // One pointer, constant displacements: hide the pointer's evolution from
                    // LLVM, which otherwise gives each of the J streams its own induction
                    // register and spills them.
                    let p = opaque(xs[g][0].add(16 * m));
                    for i in 0..J {
                        acc[g][i] = _mm512_fmadd_ps(hv, _mm512_load_ps(p.add(16 * Q * i)), acc[g][i]);
                    }
                } else {
                    for i in 0..J {
                        acc[g][i] = _mm512_fmadd_ps(hv, _mm512_load_ps(xa(g, i, m)), acc[g][i]);
                    }
                }
            }
        }
        // Last two chunks (taps ≥ n masked off).
        for m in tail0..nc {
            for g in 0..NA {
                let mk = chunk_mask(m, ss[g], n);
                let hv = _mm512_maskz_loadu_ps(mk, hs[g].wrapping_add(16 * m));
                for i in 0..J {
                    acc[g][i] = _mm512_fmadd_ps(hv, _mm512_maskz_loadu_ps(mk, xa(g, i, m)), acc[g][i]);
                }
            }
        }
        // Reduce 8 at a time and store the valid outputs.
        let flat: [__m512; 16] = core::array::from_fn(|f| {
            if f < NA * J {
                acc[f / J][f % J]
            } else {
                _mm512_setzero_ps()
            }
        });
        let mut tmp = [0i16; 16];
        store_sums8(hsum8(flat[..8].try_into().unwrap()), tmp.as_mut_ptr(), 8);
        if NA * J > 8 {
            store_sums8(hsum8(flat[8..].try_into().unwrap()), tmp.as_mut_ptr().add(8), 8);
        }
        for g in 0..NA {
            for i in 0..J {
                let k = ks[g] + i * s_step;
                if k < self.nout {
                    *self.out.add(k) = tmp[g * J + i];
                }
            }
        }
    }
}

// ------------------------------------------------------------------ other ratios

/// Any ratio with a direct table: 4 outputs at a time, each with its own phase row.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn direct(
    x: &[f32],
    coefs: &[f32],
    n: usize,
    step: &Step,
    last: &mut usize,
    frac: &mut u32,
    c: usize,
    out: &mut [i16],
) -> usize {
    let mut o = 0;
    let xb = x.as_ptr();
    let cb = coefs.as_ptr();
    let n16 = n & !15;
    while *last < c {
        let mut xs = [xb; 4];
        let mut rs = [cb; 4];
        let mut cnt = 0;
        while cnt < 4 && *last < c {
            debug_assert!(x.len() >= *last + n);
            xs[cnt] = xb.add(*last);
            rs[cnt] = cb.add(*frac as usize * n);
            cnt += 1;
            step.advance(last, frac);
        }
        for k in cnt..4 {
            xs[k] = xs[cnt - 1];
            rs[k] = rs[cnt - 1];
        }
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut t = 0;
        while t < n16 {
            for k in 0..4 {
                acc[k] = _mm512_fmadd_ps(_mm512_loadu_ps(rs[k].add(t)), _mm512_loadu_ps(xs[k].add(t)), acc[k]);
            }
            t += 16;
        }
        if t < n {
            for k in 0..4 {
                acc[k] = _mm512_fmadd_ps(
                    _mm512_maskz_loadu_ps(0x00ff, rs[k].add(t)),
                    _mm512_maskz_loadu_ps(0x00ff, xs[k].add(t)),
                    acc[k],
                );
            }
        }
        let s = hsum4(&acc);
        let mut v = [0f32; 4];
        _mm_storeu_ps(v.as_mut_ptr(), s);
        for k in 0..cnt {
            out[o + k] = super::scalar::round_i16(v[k]);
        }
        o += cnt;
    }
    o
}

/// Interpolated table: per output, 4 dot products with contiguous rows, then the cubic
/// weights (same combination as libspeexdsp).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn interp(
    x: &[f32],
    rows: &[f32],
    n: usize,
    ovs: u32,
    step: &Step,
    last: &mut usize,
    frac: &mut u32,
    c: usize,
    out: &mut [i16],
) -> usize {
    let mut o = 0;
    let n16 = n & !15;
    while *last < c {
        let (offset, w) = interp_position(*frac, ovs, step.den);
        let r0 = 2 + ovs as usize - offset;
        debug_assert!(rows.len() >= (r0 + 4) * n && x.len() >= *last + n);
        let rp = rows.as_ptr().add(r0 * n);
        let xp = x.as_ptr().add(*last);
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut t = 0;
        while t < n16 {
            let xv = _mm512_loadu_ps(xp.add(t));
            for m in 0..4 {
                acc[m] = _mm512_fmadd_ps(_mm512_loadu_ps(rp.add(m * n + t)), xv, acc[m]);
            }
            t += 16;
        }
        if t < n {
            let xv = _mm512_maskz_loadu_ps(0x00ff, xp.add(t));
            for m in 0..4 {
                acc[m] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(0x00ff, rp.add(m * n + t)), xv, acc[m]);
            }
        }
        let s = hsum4(&acc);
        let mut a = [0f32; 4];
        _mm_storeu_ps(a.as_mut_ptr(), s);
        out[o] = super::scalar::round_i16(w[0] * a[0] + w[1] * a[1] + w[2] * a[2] + w[3] * a[3]);
        o += 1;
        step.advance(last, frac);
    }
    o
}
