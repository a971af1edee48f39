//! AVX2+FMA kernels (x86-64 only; selected at run time after feature detection).
//!
//! Every output is computed with an arithmetic that does not depend on where it falls in a
//! call (which vector lane, which group), so output is independent of the input chunking.
// Kernels index fixed-size register arrays and take the full streaming state.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

use core::arch::x86_64::*;

use super::design::interp_position;
use super::Step;

/// floor(v + 0.5) as i32 (libspeexdsp's rounding; saturation happens on packing/clamping).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn round_i32(v: __m256) -> __m256i {
    _mm256_cvtps_epi32(_mm256_floor_ps(_mm256_add_ps(v, _mm256_set1_ps(0.5))))
}

/// Stores `cnt` (1..=8) rounded, saturated lanes of `v` to `out`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_i16x8(v: __m256, out: *mut i16, cnt: usize) {
    let i = round_i32(v);
    let p = _mm256_packs_epi32(i, i); // [0..3 0..3 | 4..7 4..7], saturated
    let p = _mm256_permute4x64_epi64::<0b00_00_10_00>(p); // low 128 = [0..3 4..7]
    let lo = _mm256_castsi256_si128(p);
    if cnt == 8 {
        _mm_storeu_si128(out as *mut __m128i, lo);
    } else {
        let mut tmp = [0i16; 8];
        _mm_storeu_si128(tmp.as_mut_ptr() as *mut __m128i, lo);
        core::ptr::copy_nonoverlapping(tmp.as_ptr(), out, cnt);
    }
}

/// Horizontal sums of 8 vectors, lane k = sum of `a[k]`, each as
/// ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum8(a: &[__m256; 8]) -> __m256 {
    let s01 = _mm256_hadd_ps(a[0], a[1]);
    let s23 = _mm256_hadd_ps(a[2], a[3]);
    let s45 = _mm256_hadd_ps(a[4], a[5]);
    let s67 = _mm256_hadd_ps(a[6], a[7]);
    let t0 = _mm256_hadd_ps(s01, s23);
    let t1 = _mm256_hadd_ps(s45, s67);
    let lo = _mm256_permute2f128_ps::<0x20>(t0, t1);
    let hi = _mm256_permute2f128_ps::<0x31>(t0, t1);
    _mm256_add_ps(lo, hi)
}

/// Same reduction tree as `hsum8` for 4 vectors.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum4(a: &[__m256; 4]) -> __m128 {
    let s01 = _mm256_hadd_ps(a[0], a[1]);
    let s23 = _mm256_hadd_ps(a[2], a[3]);
    let t = _mm256_hadd_ps(s01, s23);
    _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps::<1>(t))
}

/// Integer upsampling (`num == 1`): for every position `p` in `last..c`, outputs
/// `den·(p − last) + f` for all phases `f`. Phases are processed in groups of up to 3 and
/// positions in runs of 8·B, so each input vector load serves P phases and each coefficient
/// broadcast serves B vectors; every lane runs the same sequential FMA chain over the taps.
#[target_feature(enable = "avx2,fma")]
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
    debug_assert!(x.len() >= *last + npos + n - 1 + 31);
    debug_assert!(coefs.len() >= den * n);
    let xp = x.as_ptr().add(*last);
    let cp = coefs.as_ptr();
    let op = out.as_mut_ptr();
    let mut f = 0;
    while f < den {
        let rem = den - f;
        match rem {
            1 => up_group::<1, 4>(xp, cp, n, den, f, npos, op),
            2 | 4 => up_group::<2, 4>(xp, cp, n, den, f, npos, op),
            _ => up_group::<3, 3>(xp, cp, n, den, f, npos, op),
        }
        f += match rem {
            1 => 1,
            2 | 4 => 2,
            _ => 3,
        };
    }
    *last = c;
    total
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn up_group<const P: usize, const B: usize>(
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
        let mut acc = [[_mm256_setzero_ps(); B]; P];
        let xb = x.add(p);
        for j in 0..n {
            let xs: [__m256; B] = core::array::from_fn(|b| _mm256_loadu_ps(xb.add(j + 8 * b)));
            for q in 0..P {
                let cf = _mm256_broadcast_ss(&*rows[q].add(j));
                for b in 0..B {
                    acc[q][b] = _mm256_fmadd_ps(cf, xs[b], acc[q][b]);
                }
            }
        }
        let valid = (npos - p).min(8 * B);
        let lo = _mm256_set1_epi32(-32768);
        let hi = _mm256_set1_epi32(32767);
        for q in 0..P {
            for b in 0..B {
                if 8 * b >= valid {
                    break;
                }
                let v = _mm256_max_epi32(_mm256_min_epi32(round_i32(acc[q][b]), hi), lo);
                let mut tmp = [0i32; 8];
                _mm256_storeu_si256(tmp.as_mut_ptr() as *mut __m256i, v);
                let cnt = (valid - 8 * b).min(8);
                let o = out.add((p + 8 * b) * den + f0 + q);
                for (l, &t) in tmp.iter().enumerate().take(cnt) {
                    *o.add(l * den) = t as i16;
                }
            }
        }
        p += 8 * B;
    }
}

/// Integer decimation (`den == 1`): outputs at positions `last, last+num, … < c`, 8 at a
/// time sharing each coefficient load (8 independent accumulators).
#[target_feature(enable = "avx2,fma")]
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
    let mut o = 0;
    while o < nout {
        let cnt = (nout - o).min(8);
        // Missing outputs of a short group repeat the last one (no reads past the data).
        let xs: [*const f32; 8] = core::array::from_fn(|k| base.add((o + k.min(cnt - 1)) * num));
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut t = 0;
        while t < n {
            let hv = _mm256_loadu_ps(h.add(t));
            for k in 0..8 {
                acc[k] = _mm256_fmadd_ps(hv, _mm256_loadu_ps(xs[k].add(t)), acc[k]);
            }
            t += 8;
        }
        store_i16x8(hsum8(&acc), out.as_mut_ptr().add(o), cnt);
        o += 8;
    }
    *last += nout * num;
    nout
}

/// Any ratio with a direct table: 4 outputs at a time, each with its own phase row.
#[target_feature(enable = "avx2,fma")]
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
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut t = 0;
        while t < n {
            for k in 0..4 {
                acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(rs[k].add(t)), _mm256_loadu_ps(xs[k].add(t)), acc[k]);
            }
            t += 8;
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
#[target_feature(enable = "avx2,fma")]
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
    while *last < c {
        let (offset, w) = interp_position(*frac, ovs, step.den);
        let r0 = 2 + ovs as usize - offset;
        debug_assert!(rows.len() >= (r0 + 4) * n && x.len() >= *last + n);
        let rp = rows.as_ptr().add(r0 * n);
        let xp = x.as_ptr().add(*last);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut t = 0;
        while t < n {
            let xv = _mm256_loadu_ps(xp.add(t));
            for m in 0..4 {
                acc[m] = _mm256_fmadd_ps(_mm256_loadu_ps(rp.add(m * n + t)), xv, acc[m]);
            }
            t += 8;
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
