//! Filter design of the Speex resampler family, and the process-wide table cache.
//!
//! Facts used (from `xiph/speexdsp` `libspeexdsp/resample.c`):
//! the quality map (base length, oversample, down/up bandwidth, window), the four Kaiser
//! window tables (sampled at 32 or 64 points per half window and read with cubic
//! interpolation), how `filt_len`, the cutoff and the oversample factor follow from the
//! ratio, and which coefficient each output phase uses. The code below is our own; it
//! reproduces the same numbers (including which operations are done in `f32` and which in
//! `f64`) so that our output matches libspeexdsp's float build to within float rounding.
//!
//! Three table layouts:
//! * `Direct`, exact: one row of `filt_len` taps per output phase (`den` rows), each tap the
//!   windowed sinc evaluated exactly. Used when libspeexdsp also uses its direct table.
//! * `Direct`, cubic: same layout, but each tap is what libspeexdsp's *interpolated* mode
//!   computes on the fly (cubic interpolation of an oversampled sinc table). Used when
//!   libspeexdsp would interpolate (e.g. 8k→44.1k, den = 441) but `den × filt_len` is still
//!   small: we get libspeexdsp's exact coefficients at direct-table speed.
//! * `Interp`: for huge `den` (`den × filt_len > DIRECT_MAX_COEFS`) the oversampled table
//!   itself, stored as `oversample + 6` contiguous rows so that the four cubic taps of an
//!   output are four contiguous dot products (SIMD-friendly, same arithmetic as libspeexdsp).

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::{Arc, Mutex, OnceLock};

/// Above this many coefficients a per-phase table is not built; the interpolated mode is
/// used instead (bounded memory: `(oversample + 6) × filt_len`).
pub(crate) const DIRECT_MAX_COEFS: u64 = 512 * 1024;

/// Table memory (in f32 coefficients) the cache keeps before it evicts tables that no live
/// resampler uses.
const CACHE_BUDGET_COEFS: usize = 4 * 1024 * 1024;

#[derive(Clone, Copy)]
enum Window {
    Kaiser6,
    Kaiser8,
    Kaiser10,
    Kaiser12,
}

struct QualityParams {
    base_len: u32,
    oversample: u32,
    down_bw: f32,
    up_bw: f32,
    window: Window,
}

/// Speex quality map (`quality_map` in speexdsp `libspeexdsp/resample.c`).
const QUALITY: [QualityParams; 11] = [
    QualityParams { base_len: 8, oversample: 4, down_bw: 0.830, up_bw: 0.860, window: Window::Kaiser6 },
    QualityParams { base_len: 16, oversample: 4, down_bw: 0.850, up_bw: 0.880, window: Window::Kaiser6 },
    QualityParams { base_len: 32, oversample: 4, down_bw: 0.882, up_bw: 0.910, window: Window::Kaiser6 },
    QualityParams { base_len: 48, oversample: 8, down_bw: 0.895, up_bw: 0.917, window: Window::Kaiser8 },
    QualityParams { base_len: 64, oversample: 8, down_bw: 0.921, up_bw: 0.940, window: Window::Kaiser8 },
    QualityParams { base_len: 80, oversample: 16, down_bw: 0.922, up_bw: 0.940, window: Window::Kaiser10 },
    QualityParams { base_len: 96, oversample: 16, down_bw: 0.940, up_bw: 0.945, window: Window::Kaiser10 },
    QualityParams { base_len: 128, oversample: 16, down_bw: 0.950, up_bw: 0.950, window: Window::Kaiser10 },
    QualityParams { base_len: 160, oversample: 16, down_bw: 0.960, up_bw: 0.960, window: Window::Kaiser10 },
    QualityParams { base_len: 192, oversample: 32, down_bw: 0.968, up_bw: 0.968, window: Window::Kaiser12 },
    QualityParams { base_len: 256, oversample: 32, down_bw: 0.975, up_bw: 0.975, window: Window::Kaiser12 },
];

// Kaiser windows as tabulated by libspeexdsp (numeric constants): w(|x|) for |x| in [0, 1]
// sampled every 1/32 (1/64 for Kaiser12), with one leading sample (the mirror of index 2)
// and trailing samples for the 4-point cubic interpolation.
const KAISER12: [f64; 68] = [
    0.99859849, 1.00000000, 0.99859849, 0.99440475, 0.98745105, 0.97779076, 0.96549770, 0.95066529,
    0.93340547, 0.91384741, 0.89213598, 0.86843014, 0.84290116, 0.81573067, 0.78710866, 0.75723148,
    0.72629970, 0.69451601, 0.66208321, 0.62920216, 0.59606986, 0.56287762, 0.52980938, 0.49704014,
    0.46473455, 0.43304576, 0.40211431, 0.37206735, 0.34301800, 0.31506490, 0.28829195, 0.26276832,
    0.23854851, 0.21567274, 0.19416736, 0.17404546, 0.15530766, 0.13794294, 0.12192957, 0.10723616,
    0.09382272, 0.08164178, 0.07063950, 0.06075685, 0.05193064, 0.04409466, 0.03718069, 0.03111947,
    0.02584161, 0.02127838, 0.01736250, 0.01402878, 0.01121463, 0.00886058, 0.00691064, 0.00531256,
    0.00401805, 0.00298291, 0.00216702, 0.00153438, 0.00105297, 0.00069463, 0.00043489, 0.00025272,
    0.00013031, 0.0000527734, 0.00001000, 0.00000000,
];
const KAISER10: [f64; 36] = [
    0.99537781, 1.00000000, 0.99537781, 0.98162644, 0.95908712, 0.92831446, 0.89005583, 0.84522401,
    0.79486424, 0.74011713, 0.68217934, 0.62226347, 0.56155915, 0.50119680, 0.44221549, 0.38553619,
    0.33194107, 0.28205962, 0.23636152, 0.19515633, 0.15859932, 0.12670280, 0.09935205, 0.07632451,
    0.05731132, 0.04193980, 0.02979584, 0.02044510, 0.01345224, 0.00839739, 0.00488951, 0.00257636,
    0.00115101, 0.00035515, 0.00000000, 0.00000000,
];
const KAISER8: [f64; 36] = [
    0.99635258, 1.00000000, 0.99635258, 0.98548012, 0.96759014, 0.94302200, 0.91223751, 0.87580811,
    0.83439927, 0.78875245, 0.73966538, 0.68797126, 0.63451750, 0.58014482, 0.52566725, 0.47185369,
    0.41941150, 0.36897272, 0.32108304, 0.27619388, 0.23465776, 0.19672670, 0.16255380, 0.13219758,
    0.10562887, 0.08273982, 0.06335451, 0.04724088, 0.03412321, 0.02369490, 0.01563093, 0.00959968,
    0.00527363, 0.00233883, 0.00050000, 0.00000000,
];
const KAISER6: [f64; 36] = [
    0.99733006, 1.00000000, 0.99733006, 0.98935595, 0.97618418, 0.95799003, 0.93501423, 0.90755855,
    0.87598009, 0.84068475, 0.80211977, 0.76076565, 0.71712752, 0.67172623, 0.62508937, 0.57774224,
    0.53019925, 0.48295561, 0.43647969, 0.39120616, 0.34752997, 0.30580127, 0.26632152, 0.22934058,
    0.19505503, 0.16360756, 0.13508755, 0.10953262, 0.08693120, 0.06722600, 0.05031820, 0.03607231,
    0.02432151, 0.01487334, 0.00752000, 0.00000000,
];

impl Window {
    fn table(self) -> (&'static [f64], u32) {
        match self {
            Window::Kaiser6 => (&KAISER6, 32),
            Window::Kaiser8 => (&KAISER8, 32),
            Window::Kaiser10 => (&KAISER10, 32),
            Window::Kaiser12 => (&KAISER12, 64),
        }
    }

    /// Window value at `x` = |2t/N| in [0, 1]: cubic (Lagrange-like, 4-point) interpolation
    /// of the table. The position and fraction are f32 and the weights f64, as in libspeexdsp.
    fn eval(self, x: f32) -> f64 {
        let (t, ovs) = self.table();
        let y = x * ovs as f32;
        let ind = y.floor() as usize;
        let fr = y - ind as f32;
        let fr2 = (fr * fr) as f64;
        let fr3 = (fr * fr * fr) as f64;
        let frd = fr as f64;
        let w3 = -0.1666666667 * frd + 0.1666666667 * fr3;
        let w2 = frd + 0.5 * fr2 - 0.5 * fr3;
        let w0 = -0.3333333333 * frd + 0.5 * fr2 - 0.1666666667 * fr3;
        let w1 = 1.0 - w3 - w2 - w0;
        w0 * t[ind] + w1 * t[ind + 1] + w2 * t[ind + 2] + w3 * t[ind + 3]
    }
}

/// Windowed sinc tap at offset `x` (in input samples) for a filter of `n` taps.
fn windowed_sinc(cutoff: f32, x: f32, n: usize, w: Window) -> f32 {
    let xx = x * cutoff;
    let ax = (x as f64).abs();
    if ax < 1e-6 {
        cutoff
    } else if ax > 0.5 * n as f64 {
        0.0
    } else {
        let pxx = PI * xx as f64;
        (cutoff as f64 * pxx.sin() / pxx * w.eval((2.0 * x as f64 / n as f64).abs() as f32)) as f32
    }
}

/// Cubic weights of libspeexdsp's interpolated mode (f32 arithmetic, 4th weight by
/// complement in f64).
pub(crate) fn cubic_weights(frac: f32) -> [f32; 4] {
    let f2 = frac * frac;
    let f3 = f2 * frac;
    let w0 = -0.16667f32 * frac + 0.16667f32 * f3;
    let w1 = frac + 0.5f32 * f2 - 0.5f32 * f3;
    let w3 = -0.33333f32 * frac + 0.5f32 * f2 - 0.16667f32 * f3;
    let w2 = (1.0f64 - w0 as f64 - w1 as f64 - w3 as f64) as f32;
    [w0, w1, w2, w3]
}

/// The geometry of one (num, den, quality) filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub num: u32,
    pub den: u32,
    pub filt_len: usize,
    pub oversample: u32,
    pub cutoff_bits: u32, // f32 bits (keeps Eq)
    pub speex_direct: bool,
}

pub(crate) fn geometry(num: u32, den: u32, quality: u32) -> Geometry {
    let q = &QUALITY[quality as usize];
    let mut filt_len = q.base_len as u64;
    let mut oversample = q.oversample;
    let cutoff;
    if num > den {
        // Downsampling: longer filter, cutoff scaled to the output band.
        cutoff = q.down_bw * den as f32 / num as f32;
        // floor(base·num/den) (libspeexdsp's multiply_frac), then up to a multiple of 8.
        filt_len = filt_len * num as u64 / den as u64;
        filt_len = ((filt_len - 1) & !7) + 8;
        for k in [2u32, 4, 8, 16] {
            if (k as u64) * (den as u64) < num as u64 {
                oversample >>= 1;
            }
        }
        oversample = oversample.max(1);
    } else {
        cutoff = q.up_bw;
    }
    let speex_direct = filt_len * den as u64 <= filt_len * oversample as u64 + 8;
    Geometry {
        num,
        den,
        filt_len: filt_len as usize,
        oversample,
        cutoff_bits: cutoff.to_bits(),
        speex_direct,
    }
}

/// A 64-byte (cache line) aligned, zero-initialised f32 buffer (aligned loads of table rows
/// and history; element `i` sits at lane `i mod 16` of a 64-byte line).
pub(crate) struct AlignedBuf {
    data: Vec<[f32; 8]>,
    len: usize,
}

impl AlignedBuf {
    pub fn zeroed(len: usize) -> AlignedBuf {
        // [f32; 8] is only 4-aligned: over-allocate two blocks and start at the first
        // 64-byte boundary (the Vec never reallocates, so the offset is stable).
        AlignedBuf { data: vec![[0.0f32; 8]; len.div_ceil(8) + 2], len }
    }
    #[inline]
    fn offset(&self) -> usize {
        let p = self.data.as_ptr() as usize;
        ((64 - (p & 63)) & 63) / 4
    }
    #[inline]
    pub fn as_slice(&self) -> &[f32] {
        let off = self.offset();
        // SAFETY: the Vec holds (len/8 + 2) * 8 >= len + 15 floats; off <= 15.
        unsafe { core::slice::from_raw_parts((self.data.as_ptr() as *const f32).add(off), self.len) }
    }
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        let off = self.offset();
        // SAFETY: as above; unique borrow of self.
        unsafe { core::slice::from_raw_parts_mut((self.data.as_mut_ptr() as *mut f32).add(off), self.len) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableKind {
    /// `den` rows × `filt_len` taps, each tap the exact windowed sinc (libspeexdsp direct).
    DirectExact,
    /// `den` rows × `filt_len` taps, taps computed by libspeexdsp's cubic interpolation.
    DirectCubic,
    /// `oversample + 6` rows × `filt_len`: row r, tap j = oversampled sinc at r + j·oversample.
    Interp,
}

pub(crate) struct FilterTable {
    pub geom: Geometry,
    pub kind: TableKind,
    pub coefs: AlignedBuf,
}

impl FilterTable {
    fn build(num: u32, den: u32, quality: u32) -> FilterTable {
        let geom = geometry(num, den, quality);
        let n = geom.filt_len;
        let cutoff = f32::from_bits(geom.cutoff_bits);
        let win = QUALITY[quality as usize].window;
        let direct_size = n as u64 * den as u64;
        if geom.speex_direct {
            let mut coefs = AlignedBuf::zeroed(direct_size as usize);
            let c = coefs.as_mut_slice();
            let half = (n / 2) as i64;
            for ph in 0..den as usize {
                let shift = ph as f32 / den as f32;
                for j in 0..n {
                    let x = (j as i64 - half + 1) as f32 - shift;
                    c[ph * n + j] = windowed_sinc(cutoff, x, n, win);
                }
            }
            return FilterTable { geom, kind: TableKind::DirectExact, coefs };
        }
        // libspeexdsp's oversampled table: T[i + 4] = sinc(i/ovs - n/2), i in -4..ovs·n+4.
        let ovs = geom.oversample as usize;
        let tlen = ovs * n + 8;
        let mut t = vec![0f32; tlen];
        for (k, v) in t.iter_mut().enumerate() {
            let i = k as i64 - 4;
            let x = i as f32 / ovs as f32 - (n / 2) as f32;
            *v = windowed_sinc(cutoff, x, n, win);
        }
        if direct_size <= DIRECT_MAX_COEFS {
            // Tap j of phase `ph`: sum over m of w[m]·T[2 + (j+1)·ovs − offset + m].
            let mut coefs = AlignedBuf::zeroed(direct_size as usize);
            let c = coefs.as_mut_slice();
            for ph in 0..den as usize {
                let (offset, w) = interp_position(ph as u32, geom.oversample, den);
                for j in 0..n {
                    let b = 2 + (j + 1) * ovs - offset;
                    // Same grouping as libspeexdsp's final combination of its 4 sums.
                    c[ph * n + j] = w[0] * t[b] + w[1] * t[b + 1] + w[2] * t[b + 2] + w[3] * t[b + 3];
                }
            }
            FilterTable { geom, kind: TableKind::DirectCubic, coefs }
        } else {
            let rows = ovs + 6;
            let mut coefs = AlignedBuf::zeroed(rows * n);
            let c = coefs.as_mut_slice();
            for r in 0..rows {
                for j in 0..n {
                    let idx = r + j * ovs;
                    c[r * n + j] = if idx < tlen { t[idx] } else { 0.0 };
                }
            }
            FilterTable { geom, kind: TableKind::Interp, coefs }
        }
    }

    /// Bytes of coefficient memory (for the cache budget).
    fn size(&self) -> usize {
        self.coefs.as_slice().len()
    }
}

/// Offset into the oversampled table and cubic weights for phase `frac_num` (of `den`).
#[inline]
pub(crate) fn interp_position(frac_num: u32, ovs: u32, den: u32) -> (usize, [f32; 4]) {
    let prod = frac_num as u64 * ovs as u64;
    let offset = (prod / den as u64) as usize;
    let fr = (prod % den as u64) as f32 / den as f32;
    (offset, cubic_weights(fr))
}

type Key = (u32, u32, u32);

struct Cache {
    map: HashMap<Key, Arc<FilterTable>>,
    total: usize,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache { map: HashMap::new(), total: 0 }))
}

/// The shared table for (num, den, quality), built on first use. Tables stay cached while
/// the cache is under budget; beyond it, tables no resampler holds any more are dropped.
pub(crate) fn shared_table(num: u32, den: u32, quality: u32) -> Arc<FilterTable> {
    let key = (num, den, quality);
    {
        let c = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = c.map.get(&key) {
            return Arc::clone(t);
        }
    }
    // Build outside the lock (a big table takes milliseconds); a racing builder just loses.
    let built = Arc::new(FilterTable::build(num, den, quality));
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = c.map.get(&key) {
        return Arc::clone(t);
    }
    if c.total + built.size() > CACHE_BUDGET_COEFS {
        c.map.retain(|_, t| Arc::strong_count(t) > 1);
        c.total = c.map.values().map(|t| t.size()).sum();
    }
    c.total += built.size();
    c.map.insert(key, Arc::clone(&built));
    built
}

#[cfg(test)]
#[allow(dead_code)]
pub(crate) fn cached_tables() -> usize {
    cache().lock().unwrap().map.len()
}
