//! Portable kernels: used on CPUs without AVX2+FMA and on non-x86 targets, and as the
//! reference the SIMD kernels are tested against. Written with 8 independent partial sums
//! so the compiler can vectorise them with the baseline SIMD of the target (SSE2 / NEON).
// Kernels index fixed-size register arrays and take the full streaming state.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

use super::design::interp_position;
use super::Step;

/// libspeexdsp's float→int16 output rounding: floor(x + 0.5), saturated to int16.
#[inline]
pub(crate) fn round_i16(v: f32) -> i16 {
    let t = v + 0.5;
    let mut i = t as i32; // truncates toward zero, saturates, NaN → 0
    if (i as f32) > t {
        i -= 1;
    }
    i.clamp(-32768, 32767) as i16
}

/// Dot product of `c` with the first `c.len()` samples of `x` (`c.len()` is a multiple of 8).
/// Two sets of 8 partial sums (even and odd 8-tap blocks) keep 4 SSE / NEON chains busy.
#[inline]
pub(crate) fn dot(c: &[f32], x: &[f32]) -> f32 {
    let x = &x[..c.len()];
    let mut a = [0f32; 8];
    let mut b = [0f32; 8];
    let mut cs = c.chunks_exact(16);
    let mut xs = x.chunks_exact(16);
    for (cc, xx) in (&mut cs).zip(&mut xs) {
        // Fixed-size views: no bounds checks, so the lanes map onto SIMD registers.
        let cc: &[f32; 16] = cc.try_into().unwrap();
        let xx: &[f32; 16] = xx.try_into().unwrap();
        for l in 0..8 {
            a[l] += cc[l] * xx[l];
            b[l] += cc[l + 8] * xx[l + 8];
        }
    }
    let (cr, xr) = (cs.remainder(), xs.remainder());
    if !cr.is_empty() {
        let cc: &[f32; 8] = cr.try_into().unwrap();
        let xx: &[f32; 8] = xr.try_into().unwrap();
        for l in 0..8 {
            a[l] += cc[l] * xx[l];
        }
    }
    for l in 0..8 {
        a[l] += b[l];
    }
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

/// Direct table, any ratio: one output per (position, phase) while `last < c`.
/// `x` starts at the history window of position 0. Returns the number of outputs.
pub(crate) fn direct(
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
    while *last < c {
        let row = &coefs[*frac as usize * n..][..n];
        out[o] = round_i16(dot(row, &x[*last..]));
        o += 1;
        step.advance(last, frac);
    }
    o
}

/// Interpolated mode: the 4 cubic taps are 4 contiguous rows of the oversampled table.
pub(crate) fn interp(
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
        let xs = &x[*last..];
        let a: [f32; 4] = core::array::from_fn(|m| dot(&rows[(r0 + m) * n..][..n], xs));
        out[o] = round_i16(w[0] * a[0] + w[1] * a[1] + w[2] * a[2] + w[3] * a[3]);
        o += 1;
        step.advance(last, frac);
    }
    o
}
