//! Streaming sample-rate converter of the Speex family (Kaiser-windowed sinc, libspeexdsp's
//! quality table 0–10), bit-compatible in alignment with libspeexdsp's streaming API and
//! numerically within float rounding of its float build.
//!
//! # Alignment (mirrors `libspeexdsp/resample.c`)
//! The ratio is reduced by the gcd: `num = from/g`, `den = to/g`. The input stream is
//! preceded by `filt_len − 1` zeros. Output `k` sits at input position `p_k = ⌊k·num/den⌋`
//! with phase `f_k = k·num mod den` and is `Σ_j h[f_k][j]·x[p_k + j]` over the zero-prefixed
//! stream, where `h[f][j]` is the windowed sinc at `j − filt_len/2 + 1 − f/den`. Output `k`
//! is produced as soon as input `p_k` has arrived, so after `n` inputs exactly
//! `⌈n·den/num⌉` outputs exist (160 in at 8k→24k → 480 out on the first call, the first
//! `output_latency()` of them being the filter's pre-delay). Outputs are rounded with
//! `floor(x + 0.5)` and saturated, like libspeexdsp's `WORD2INT`.
//!
//! # Flush
//! `flush` processes `input_latency()` zeros, then resets. After `n` inputs and a flush the
//! total output is exactly `⌈(n + input_latency)·den/num⌉` samples; dropping the first
//! `output_latency()` of them leaves `n·to/from` samples to within ±1.
//!
//! # Implementation
//! History is kept in f32 (converted once on input) in a linear buffer that is compacted
//! only when full. Coefficient tables are shared between instances (see `design.rs`).
//! Kernels: AVX-512F, AVX2+FMA (runtime-detected once in `new`, in that order) or portable
//! scalar. The AVX-512 kernels are the AVX2 designs with 16 lanes (`avx512.rs`).
//! * integer upsampling (`num == 1`): 8 consecutive positions of the same phase per vector,
//!   coefficient broadcast, each input load reused by 2–3 phases (`avx2::up_int`);
//! * integer decimation (`den == 1`): 8 outputs at once sharing each coefficient load;
//! * other ratios: per-output phase rows, 4 outputs at once;
//! * huge `den`: interpolated table (4 contiguous dot products + cubic weights).

mod design;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::error::{DspError, DspResult, MAX_RATE_HZ, MIN_RATE_HZ};
use design::{AlignedBuf, FilterTable, TableKind};

/// Samples of slack after the history buffer: the upsampling kernels compute whole vectors
/// of positions and may read (never use) up to 31 samples past the valid data; the AVX-512
/// decimation kernel's tail groups up to 80 (`16·q`, q ≤ 5).
const PAD: usize = 128;

/// Position/phase bookkeeping of libspeexdsp (`int_advance`, `frac_advance`, `den_rate`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub int_adv: usize,
    pub frac_adv: u32,
    pub den: u32,
}

impl Step {
    #[inline(always)]
    pub fn advance(&self, last: &mut usize, frac: &mut u32) {
        *last += self.int_adv;
        *frac += self.frac_adv;
        if *frac >= self.den {
            *frac -= self.den;
            *last += 1;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Identity,
    /// `num == 1`, direct table.
    UpInt,
    /// `den == 1`, direct table (one phase).
    DecimInt,
    /// Any other ratio with a direct table.
    Direct,
    /// Interpolated table.
    Interp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => "avx2+fma",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512f",
        }
    }

    /// Whether this CPU can run the kernel set.
    fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        }
    }
}

/// Every kernel set this build has, fastest first.
const ISAS: &[Isa] = &[
    #[cfg(target_arch = "x86_64")]
    Isa::Avx512,
    #[cfg(target_arch = "x86_64")]
    Isa::Avx2Fma,
    Isa::Scalar,
];

fn detect_isa() -> Isa {
    ISAS.iter().copied().find(|i| i.available()).unwrap_or(Isa::Scalar)
}

/// The kernel set new resamplers pick on this CPU: "avx512f", "avx2+fma" or "scalar"
/// (the portable kernels: SSE2 on x86-64, NEON-autovectorised on aarch64).
pub fn simd_level() -> &'static str {
    detect_isa().name()
}

/// Names of the kernel sets this CPU can run (for tests and benchmarks), fastest first.
#[doc(hidden)]
pub fn available_kernels() -> Vec<&'static str> {
    ISAS.iter().filter(|i| i.available()).map(|i| i.name()).collect()
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A streaming resampler for one mono int16 stream.
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    quality: u32,
    num: u32,
    den: u32,
    filt_len: usize,
    step: Step,
    mode: Mode,
    isa: Isa,
    table: Option<Arc<FilterTable>>,
    /// History (f32): `buf[head .. head + filt_len − 1]` are the last `filt_len − 1` inputs,
    /// new input is appended after them.
    buf: AlignedBuf,
    /// Usable length of `buf` (without `PAD`).
    cap: usize,
    /// Largest chunk converted at once.
    block: usize,
    head: usize,
    /// libspeexdsp's `last_sample` (relative to `head`) and `samp_frac_num`.
    last: usize,
    frac: u32,
}

impl Resampler {
    pub fn new(from_hz: u32, to_hz: u32, quality: u32) -> DspResult<Resampler> {
        for r in [from_hz, to_hz] {
            if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&r) {
                return Err(DspError::InvalidRate);
            }
        }
        if quality > 10 {
            return Err(DspError::InvalidQuality);
        }
        let g = gcd(from_hz, to_hz);
        let (num, den) = (from_hz / g, to_hz / g);
        let step = Step { int_adv: (num / den) as usize, frac_adv: num % den, den };
        if num == den {
            return Ok(Resampler {
                from_hz,
                to_hz,
                quality,
                num,
                den,
                filt_len: 0,
                step,
                mode: Mode::Identity,
                isa: Isa::Scalar,
                table: None,
                buf: AlignedBuf::zeroed(0),
                cap: 0,
                block: 0,
                head: 0,
                last: 0,
                frac: 0,
            });
        }
        let table = design::shared_table(num, den, quality);
        let n = table.geom.filt_len;
        let mode = match table.kind {
            TableKind::Interp => Mode::Interp,
            _ if num == 1 => Mode::UpInt,
            _ if den == 1 => Mode::DecimInt,
            _ => Mode::Direct,
        };
        let block = n.max(512);
        let cap = (n - 1) + 2 * block;
        Ok(Resampler {
            from_hz,
            to_hz,
            quality,
            num,
            den,
            filt_len: n,
            step,
            mode,
            isa: detect_isa(),
            table: Some(table),
            buf: AlignedBuf::zeroed(cap + PAD),
            cap,
            block,
            head: 0,
            last: 0,
            frac: 0,
        })
    }

    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }
    pub fn quality(&self) -> u32 {
        self.quality
    }

    /// libspeexdsp `get_input_latency`: `filt_len / 2` input samples (0 for identity).
    pub fn input_latency(&self) -> usize {
        self.filt_len / 2
    }

    /// libspeexdsp `get_output_latency`: `((filt_len/2)·den + num/2) / num` output samples.
    pub fn output_latency(&self) -> usize {
        if self.mode == Mode::Identity {
            return 0;
        }
        (((self.filt_len / 2) as u64 * self.den as u64 + (self.num / 2) as u64) / self.num as u64) as usize
    }

    /// `⌈input_len·den/num⌉`: the most one `process` call can write, whatever the state.
    pub fn max_output_len(&self, input_len: usize) -> usize {
        if self.mode == Mode::Identity {
            return input_len;
        }
        (input_len as u64 * self.den as u64).div_ceil(self.num as u64) as usize
    }

    /// Resamples all of `input`, writing to the front of `out`; returns the count written.
    pub fn process(&mut self, input: &[i16], out: &mut [i16]) -> DspResult<usize> {
        if out.len() < self.max_output_len(input.len()) {
            return Err(DspError::DstTooSmall);
        }
        if self.mode == Mode::Identity {
            out[..input.len()].copy_from_slice(input);
            return Ok(input.len());
        }
        let mut written = 0;
        for chunk in input.chunks(self.block) {
            written += self.process_block(Some(chunk), chunk.len(), &mut out[written..]);
        }
        Ok(written)
    }

    /// The most `flush` can write: `max_output_len(input_latency())`.
    pub fn flush_len(&self) -> usize {
        if self.mode == Mode::Identity {
            return 0;
        }
        self.max_output_len(self.input_latency())
    }

    /// Emits the filter tail (the output of `input_latency()` zeros), then resets.
    pub fn flush(&mut self, out: &mut [i16]) -> DspResult<usize> {
        if out.len() < self.flush_len() {
            return Err(DspError::DstTooSmall);
        }
        if self.mode == Mode::Identity {
            return Ok(0);
        }
        let mut remaining = self.input_latency();
        let mut written = 0;
        while remaining > 0 {
            let c = remaining.min(self.block);
            written += self.process_block(None, c, &mut out[written..]);
            remaining -= c;
        }
        self.reset();
        Ok(written)
    }

    /// Back to the freshly created state (zero history), keeping the shared table.
    pub fn reset(&mut self) {
        if self.mode == Mode::Identity {
            return;
        }
        self.head = 0;
        self.last = 0;
        self.frac = 0;
        self.buf.as_mut_slice()[..self.filt_len - 1].fill(0.0);
    }

    /// Name of the kernel set in use ("avx512f", "avx2+fma" or "scalar"), for benchmarks
    /// and tests.
    #[doc(hidden)]
    pub fn kernel_name(&self) -> &'static str {
        self.isa.name()
    }

    /// Forces the kernel set `name` (one of `available_kernels()`); false (and no change)
    /// if this build or CPU cannot run it. Identity resamplers have no kernel to force.
    #[doc(hidden)]
    pub fn force_kernel(&mut self, name: &str) -> bool {
        match ISAS.iter().find(|i| i.name() == name) {
            Some(&isa) if isa.available() => {
                if self.mode != Mode::Identity {
                    self.isa = isa;
                }
                true
            }
            _ => false,
        }
    }

    /// Forces the portable kernels (to benchmark and test the fallback on any machine).
    #[doc(hidden)]
    pub fn force_scalar_kernel(&mut self) {
        self.isa = Isa::Scalar;
    }

    /// Appends `c` samples (`src`, or zeros) to the history and computes every output whose
    /// last input has arrived. Returns the number of outputs written to `out`.
    fn process_block(&mut self, src: Option<&[i16]>, c: usize, out: &mut [i16]) -> usize {
        let keep = self.filt_len - 1;
        if self.head + keep + c > self.cap {
            let h = self.head;
            // Keep `head mod 16`: a sample's lane in its 64-byte line then depends only on
            // its stream position (the AVX-512 decimation kernel's summation order follows
            // that lane, and output must not depend on how the input was chunked).
            let to = h % 16;
            self.buf.as_mut_slice().copy_within(h..h + keep, to);
            self.head = to;
        }
        let head = self.head;
        {
            let dst = &mut self.buf.as_mut_slice()[head + keep..head + keep + c];
            match src {
                Some(s) => {
                    for (d, &v) in dst.iter_mut().zip(s) {
                        *d = v as f32;
                    }
                }
                None => dst.fill(0.0),
            }
        }
        let n = self.filt_len;
        let table = self.table.as_deref().expect("non-identity resampler has a table");
        let coefs = table.coefs.as_slice();
        let x = &self.buf.as_slice()[head..];
        let step = self.step;
        let (mut last, mut frac) = (self.last, self.frac);
        let written = match (self.mode, self.isa) {
            (Mode::Identity, _) => unreachable!(),
            (Mode::Interp, Isa::Scalar) => {
                scalar::interp(x, coefs, n, table.geom.oversample, &step, &mut last, &mut frac, c, out)
            }
            (_, Isa::Scalar) => scalar::direct(x, coefs, n, &step, &mut last, &mut frac, c, out),
            #[cfg(target_arch = "x86_64")]
            (mode, Isa::Avx2Fma) => {
                // SAFETY: Avx2Fma is only selected after runtime detection of avx2 and fma;
                // `x` holds the history plus `c` new samples plus PAD readable floats.
                unsafe {
                    match mode {
                        Mode::UpInt => avx2::up_int(x, coefs, n, step.den as usize, &mut last, c, out),
                        Mode::DecimInt => avx2::decim(x, coefs, n, step.int_adv, &mut last, c, out),
                        Mode::Direct => avx2::direct(x, coefs, n, &step, &mut last, &mut frac, c, out),
                        Mode::Interp => {
                            avx2::interp(x, coefs, n, table.geom.oversample, &step, &mut last, &mut frac, c, out)
                        }
                        Mode::Identity => unreachable!(),
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            (mode, Isa::Avx512) => {
                // SAFETY: Avx512 is only selected after runtime detection of avx512f;
                // `x` holds the history plus `c` new samples plus PAD readable floats.
                unsafe {
                    match mode {
                        Mode::UpInt => avx512::up_int(x, coefs, n, step.den as usize, &mut last, c, out),
                        Mode::DecimInt => avx512::decim(x, coefs, n, step.int_adv, &mut last, c, out),
                        Mode::Direct => avx512::direct(x, coefs, n, &step, &mut last, &mut frac, c, out),
                        Mode::Interp => {
                            avx512::interp(x, coefs, n, table.geom.oversample, &step, &mut last, &mut frac, c, out)
                        }
                        Mode::Identity => unreachable!(),
                    }
                }
            }
        };
        debug_assert!(last >= c);
        self.last = last - c;
        self.frac = frac;
        self.head += c;
        written
    }
}
