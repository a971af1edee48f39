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

/// Integer decimation (`den == 1`): outputs at positions `last, last+num, … < c`, 8 at a
/// time sharing each coefficient load (8 independent 16-lane accumulators).
/// `n` must be a multiple of 8; a last half block of 8 taps uses 256-bit FMAs.
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
    let base = x.as_ptr().add(*last);
    let h = coefs.as_ptr();
    let n16 = n & !15;
    let mut o = 0;
    while o < nout {
        let cnt = (nout - o).min(8);
        // Missing outputs of a short group repeat the last one (no reads past the data).
        let xs: [*const f32; 8] = core::array::from_fn(|k| base.add((o + k.min(cnt - 1)) * num));
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut t = 0;
        while t < n16 {
            let hv = _mm512_loadu_ps(h.add(t));
            for k in 0..8 {
                acc[k] = _mm512_fmadd_ps(hv, _mm512_loadu_ps(xs[k].add(t)), acc[k]);
            }
            t += 16;
        }
        if t < n {
            let hv = _mm512_maskz_loadu_ps(0x00ff, h.add(t));
            for k in 0..8 {
                acc[k] = _mm512_fmadd_ps(hv, _mm512_maskz_loadu_ps(0x00ff, xs[k].add(t)), acc[k]);
            }
        }
        store_sums8(hsum8(&acc), out.as_mut_ptr().add(o), cnt);
        o += 8;
    }
    *last += nout * num;
    nout
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
