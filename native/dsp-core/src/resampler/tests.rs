use super::*;
use std::f64::consts::PI;

// ---------------------------------------------------------------- helpers

fn run_chunks(r: &mut Resampler, input: &[i16], chunk: usize) -> Vec<i16> {
    let mut out = Vec::new();
    let mut buf = vec![0i16; r.max_output_len(chunk)];
    for c in input.chunks(chunk) {
        let k = r.process(c, &mut buf).unwrap();
        assert!(k <= r.max_output_len(c.len()));
        out.extend_from_slice(&buf[..k]);
    }
    out
}

fn run(from: u32, to: u32, q: u32, input: &[i16], chunk: usize) -> Vec<i16> {
    run_chunks(&mut Resampler::new(from, to, q).unwrap(), input, chunk)
}

/// A resampler running the kernel set `kernel` (which must be available).
fn with_kernel(from: u32, to: u32, q: u32, kernel: &str) -> Resampler {
    let mut r = Resampler::new(from, to, q).unwrap();
    assert!(r.force_kernel(kernel), "{kernel} unavailable");
    if from != to {
        assert_eq!(r.kernel_name(), kernel);
    }
    r
}

/// Deterministic speech-like test signal: an enveloped chirp over most of the band, a
/// 440 Hz tone and white noise, peaking near −3 dBFS.
fn test_signal(rate: u32, secs: f64) -> Vec<i16> {
    let n = (rate as f64 * secs) as usize;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let noise = ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
            let env = 0.5 + 0.5 * (2.0 * PI * 3.0 * t).sin();
            let f = 100.0 + (rate as f64 * 0.45 - 100.0) * (t / secs);
            let x = env * (12000.0 * (PI * f * t).sin() + 6000.0 * (2.0 * PI * 440.0 * t).sin()) + 8000.0 * noise;
            x.round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

fn tone(rate: u32, freq: f64, amp: f64, secs: f64) -> Vec<i16> {
    let n = (rate as f64 * secs) as usize;
    (0..n).map(|i| (amp * (2.0 * PI * freq * i as f64 / rate as f64).sin()).round() as i16).collect()
}

/// Amplitude of the component at `freq` over `x` (single DFT bin; the window holds an
/// integer number of cycles of every integer-Hz frequency, so exact bins do not leak).
fn amplitude(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * PI * freq / rate as f64;
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        re += v as f64 * (w * i as f64).cos();
        im -= v as f64 * (w * i as f64).sin();
    }
    2.0 * (re * re + im * im).sqrt() / x.len() as f64
}

/// One second of output starting 0.25 s in (well past the filter delay).
fn steady(out: &[i16], rate: u32) -> &[i16] {
    let start = rate as usize / 4;
    &out[start..start + rate as usize]
}

fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

// ---------------------------------------------------------------- API / errors

#[test]
fn rejects_bad_arguments() {
    assert_eq!(Resampler::new(999, 8000, 7).err(), Some(DspError::InvalidRate));
    assert_eq!(Resampler::new(8000, 192_001, 7).err(), Some(DspError::InvalidRate));
    assert_eq!(Resampler::new(0, 8000, 7).err(), Some(DspError::InvalidRate));
    assert_eq!(Resampler::new(8000, 16000, 11).err(), Some(DspError::InvalidQuality));
    assert_eq!(Resampler::new(8000, 8000, 11).err(), Some(DspError::InvalidQuality));
    assert!(Resampler::new(1000, 192_000, 0).is_ok());
    assert!(Resampler::new(192_000, 1000, 10).is_ok());
    let r = Resampler::new(8000, 24000, 5).unwrap();
    assert_eq!((r.from_hz(), r.to_hz(), r.quality()), (8000, 24000, 5));
}

#[test]
fn resampler_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Resampler>();
}

#[test]
fn identity_is_an_exact_copy() {
    let mut r = Resampler::new(16000, 16000, 7).unwrap();
    assert_eq!((r.input_latency(), r.output_latency(), r.flush_len()), (0, 0, 0));
    let input = test_signal(16000, 0.1);
    let mut out = vec![0i16; input.len()];
    assert_eq!(r.max_output_len(input.len()), input.len());
    assert_eq!(r.process(&input, &mut out).unwrap(), input.len());
    assert_eq!(out, input);
    assert_eq!(r.process(&input, &mut out[..input.len() - 1]), Err(DspError::DstTooSmall));
    assert_eq!(r.flush(&mut []).unwrap(), 0);
}

#[test]
fn latency_matches_speex_formulas_and_table() {
    // Latency at the 8 kHz side, in ms, Q0..Q10: base_length / (2 · 8 kHz) (speexdsp resample.c).
    let ms = [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0];
    for other in [16000u32, 24000, 48000] {
        for q in 0..=10u32 {
            let up = Resampler::new(8000, other, q).unwrap();
            let down = Resampler::new(other, 8000, q).unwrap();
            assert_eq!(up.input_latency() as f64 * 1000.0 / 8000.0, ms[q as usize], "8k->{other} Q{q}");
            assert_eq!(down.output_latency() as f64 * 1000.0 / 8000.0, ms[q as usize], "{other}->8k Q{q}");
            for r in [&up, &down] {
                let g = gcd(r.from_hz(), r.to_hz());
                let (num, den) = ((r.from_hz() / g) as usize, (r.to_hz() / g) as usize);
                assert_eq!(r.output_latency(), (r.input_latency() * den + num / 2) / num);
            }
        }
    }
    // Downsampling lengthens the filter: filt_len = floor(128·441/160) = 352 at Q7.
    assert_eq!(Resampler::new(22050, 8000, 7).unwrap().input_latency(), 176);
    assert_eq!(Resampler::new(24000, 8000, 7).unwrap().input_latency(), 192);
}

#[test]
fn output_count_follows_speex_alignment() {
    // First 20 ms frame at 8k→24k gives exactly 480 samples.
    let mut r = Resampler::new(8000, 24000, 7).unwrap();
    let mut out = vec![0i16; 480];
    assert_eq!(r.process(&[0i16; 160], &mut out).unwrap(), 480);
    // In general, after n inputs exactly ceil(n·den/num) outputs exist, whatever the chunking.
    for (a, b) in [(8000u32, 22050u32), (44100, 8000), (16000, 24000), (48000, 8000), (44100, 47999)] {
        let mut r = Resampler::new(a, b, 4).unwrap();
        let g = gcd(a, b) as u64;
        let (num, den) = (a as u64 / g, b as u64 / g);
        let mut total_in = 0u64;
        let mut total_out = 0u64;
        let mut buf = vec![0i16; r.max_output_len(1000)];
        for (i, len) in [1usize, 2, 3, 5, 8, 13, 160, 441, 999, 0, 7, 1000].iter().cycle().take(60).enumerate() {
            let input = vec![(i * 37) as i16; *len];
            let k = r.process(&input, &mut buf).unwrap();
            total_in += *len as u64;
            total_out += k as u64;
            assert_eq!(total_out, (total_in * den).div_ceil(num), "{a}->{b}");
        }
    }
}

#[test]
fn impulse_peak_sits_at_output_latency() {
    for (a, b) in [(8000u32, 16000u32), (8000, 24000), (8000, 48000), (16000, 8000), (48000, 8000)] {
        let mut r = Resampler::new(a, b, 7).unwrap();
        let mut input = vec![0i16; 2000];
        input[0] = 30000;
        let out = run_chunks(&mut r, &input, 160);
        let peak = (0..out.len()).max_by_key(|&i| (out[i] as i32).abs()).unwrap();
        assert_eq!(peak, r.output_latency(), "{a}->{b}");
    }
}

#[test]
fn dst_too_small_leaves_state_unchanged() {
    let input = test_signal(24000, 0.2);
    let reference = run(24000, 8000, 7, &input, 480);
    let mut r = Resampler::new(24000, 8000, 7).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0i16; 1000];
    for (i, c) in input.chunks(480).enumerate() {
        let need = r.max_output_len(c.len());
        assert_eq!(need, 160);
        if i % 3 == 1 {
            assert_eq!(r.process(c, &mut buf[..need - 1]), Err(DspError::DstTooSmall));
        }
        let k = r.process(c, &mut buf[..need]).unwrap();
        out.extend_from_slice(&buf[..k]);
    }
    assert_eq!(out, reference);
    // Flush with a short buffer: error, then the same tail as without the failed attempt.
    let mut a = Resampler::new(8000, 48000, 7).unwrap();
    let mut b = Resampler::new(8000, 48000, 7).unwrap();
    let x = test_signal(8000, 0.05);
    run_chunks(&mut a, &x, 160);
    run_chunks(&mut b, &x, 160);
    let fl = a.flush_len();
    let mut ta = vec![0i16; fl];
    let mut tb = vec![0i16; fl];
    assert_eq!(a.flush(&mut ta[..fl - 1]), Err(DspError::DstTooSmall));
    let ka = a.flush(&mut ta).unwrap();
    let kb = b.flush(&mut tb).unwrap();
    assert_eq!((ka, &ta[..ka]), (kb, &tb[..kb]));
}

#[test]
fn flush_emits_the_tail_then_resets() {
    for (a, b) in [(8000u32, 24000u32), (24000, 8000), (44100, 8000), (8000, 22050), (16000, 24000)] {
        let input = test_signal(a, 0.0937);
        let n = input.len();
        let mut r = Resampler::new(a, b, 7).unwrap();
        let mut out = run_chunks(&mut r, &input, 160);
        let mut tail = vec![0i16; r.flush_len()];
        let k = r.flush(&mut tail).unwrap();
        assert!(k <= r.flush_len());
        out.extend_from_slice(&tail[..k]);
        // Exact relation: total = ceil((n + input_latency)·den/num) ...
        let g = gcd(a, b) as usize;
        let (num, den) = (a as usize / g, b as usize / g);
        assert_eq!(out.len(), ((n + r.input_latency()) * den).div_ceil(num), "{a}->{b}");
        // ... i.e. after dropping the pre-delay, n·to/from within ±1.
        let useful = (out.len() - r.output_latency()) as f64;
        assert!((useful - n as f64 * b as f64 / a as f64).abs() <= 1.0, "{a}->{b}: {useful}");
        // The tail equals the output of input_latency zeros.
        let mut with_zeros = input.clone();
        with_zeros.resize(n + r.input_latency(), 0);
        assert_eq!(out, run(a, b, 7, &with_zeros, 160), "{a}->{b}");
        // And the flush reset the state: the next stream starts fresh.
        assert_eq!(run_chunks(&mut r, &input, 160), run(a, b, 7, &input, 160));
    }
}

#[test]
fn reset_equals_a_fresh_instance() {
    for (a, b) in [(8000u32, 16000u32), (48000, 8000), (8000, 44100), (44100, 47999)] {
        let x = test_signal(a, 0.05);
        let fresh = run(a, b, 6, &x, 160);
        let mut r = Resampler::new(a, b, 6).unwrap();
        run_chunks(&mut r, &test_signal(a, 0.037), 100);
        r.reset();
        assert_eq!(run_chunks(&mut r, &x, 160), fresh, "{a}->{b}");
    }
}

#[test]
fn output_does_not_depend_on_chunking() {
    // One pair per mode: integer up, integer down, rational direct (exact and cubic taps),
    // interpolated; both kernels.
    // Integer decimation by 2, 3, 5, 6, 7 and 12 (the AVX-512 kernel's group shapes).
    for (a, b) in [
        (8000u32, 24000u32),
        (48000, 8000),
        (16000, 8000),
        (24000, 8000),
        (40000, 8000),
        (56000, 8000),
        (96000, 8000),
        (16000, 24000),
        (8000, 22050),
        (44100, 47999),
    ] {
        let x = test_signal(a, 0.3);
        for kernel in available_kernels() {
            let mk = || with_kernel(a, b, 7, kernel);
            let whole = run_chunks(&mut mk(), &x, x.len());
            for chunk in [1usize, 7, 15, 16, 17, 160, 4096] {
                assert_eq!(run_chunks(&mut mk(), &x, chunk), whole, "{a}->{b} chunk {chunk} {kernel}");
            }
        }
    }
}

#[test]
fn simd_and_scalar_kernels_agree() {
    let pairs = [
        (8000u32, 16000u32),
        (8000, 24000),
        (8000, 48000),
        (16000, 8000),
        (24000, 8000),
        (48000, 8000),
        (16000, 24000),
        (8000, 44100),
        (44100, 8000),
        (44100, 47999),
        (47999, 44100),
        (1000, 192000),
        (8000, 32000),
        (8000, 40000),
        (8000, 56000),
        (8000, 64000),
        (40000, 8000),
        (56000, 8000),
        (96000, 8000),
        (192000, 1000),
    ];
    let kernels = available_kernels();
    assert_eq!(*kernels.last().unwrap(), "scalar");
    for (a, b) in pairs {
        for q in [0u32, 3, 7, 10] {
            let x = test_signal(a, 0.1);
            let reference = run_chunks(&mut with_kernel(a, b, q, "scalar"), &x, 160);
            for &kernel in &kernels[..kernels.len() - 1] {
                // Odd chunk sizes too: partial vectors and short groups in every kernel.
                for chunk in [160usize, 37] {
                    let fast = run_chunks(&mut with_kernel(a, b, q, kernel), &x, chunk);
                    assert_eq!(fast.len(), reference.len());
                    // Different summation order: results differ by float rounding, which can
                    // flip the int16 rounding of an output by one step, rarely.
                    let diffs = fast.iter().zip(&reference).filter(|(p, q)| p != q).count();
                    let maxd = fast.iter().zip(&reference).map(|(p, q)| (*p as i32 - *q as i32).abs()).max().unwrap();
                    assert!(
                        maxd <= 1 && diffs * 200 < fast.len(),
                        "{a}->{b} Q{q} {kernel} chunk {chunk}: max {maxd}, {diffs} differ"
                    );
                }
            }
        }
    }
}

#[test]
fn kernels_can_be_forced() {
    let mut r = Resampler::new(8000, 24000, 7).unwrap();
    assert_eq!(r.kernel_name(), simd_level());
    assert_eq!(available_kernels()[0], simd_level());
    for kernel in available_kernels() {
        assert!(r.force_kernel(kernel));
        assert_eq!(r.kernel_name(), kernel);
    }
    assert!(!r.force_kernel("no-such-kernel"));
    assert_eq!(r.kernel_name(), "scalar");
    r.force_scalar_kernel();
    assert_eq!(r.kernel_name(), "scalar");
}

#[test]
fn detects_simd_where_available() {
    let r = Resampler::new(8000, 16000, 7).unwrap();
    assert_eq!(r.kernel_name(), simd_level());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        assert_eq!(r.kernel_name(), "avx512f");
        assert_eq!(available_kernels(), ["avx512f", "avx2+fma", "scalar"]);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert_eq!(r.kernel_name(), "avx2+fma");
        return;
    }
    assert_eq!(r.kernel_name(), "scalar");
}

#[test]
fn saturates_instead_of_wrapping() {
    // A full-scale square wave overshoots (Gibbs) beyond int16: outputs must clip.
    let x: Vec<i16> = (0..4000).map(|i| if (i / 40) % 2 == 0 { 32767 } else { -32768 }).collect();
    for (a, b) in [(8000u32, 16000u32), (8000, 24000), (8000, 48000), (8000, 64000), (24000, 8000), (16000, 24000)] {
        for kernel in available_kernels() {
            let mut r = with_kernel(a, b, 7, kernel);
            let y = run_chunks(&mut r, &x, 160);
            assert_eq!(*y.iter().max().unwrap(), 32767);
            assert_eq!(*y.iter().min().unwrap(), -32768);
            // No wrap-around: the middle of each plateau keeps its sign.
            let lat = r.output_latency() as f64;
            let ratio = b as f64 / a as f64;
            for k in 2..40usize {
                let mid = (lat + (k as f64 * 40.0 + 20.0) * ratio) as usize;
                if mid < y.len() {
                    assert_eq!(y[mid] > 0, k % 2 == 0, "{a}->{b} plateau {k} {kernel}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------- tables

#[test]
fn tables_are_shared_and_creation_is_cheap() {
    let a = Resampler::new(8000, 24000, 7).unwrap();
    let b = Resampler::new(8000, 24000, 7).unwrap();
    assert!(Arc::ptr_eq(a.table.as_ref().unwrap(), b.table.as_ref().unwrap()));
    let c = Resampler::new(8000, 16000, 7).unwrap();
    let t = std::time::Instant::now();
    for i in 0..100_000u32 {
        let r = Resampler::new(8000, if i % 2 == 0 { 24000 } else { 16000 }, 7).unwrap();
        // Every instance reuses the cached table of its pair (pointer identity: no
        // new table per instance, whatever other tests running in parallel cache).
        let shared = if i % 2 == 0 { &a } else { &c };
        assert!(Arc::ptr_eq(r.table.as_ref().unwrap(), shared.table.as_ref().unwrap()));
        std::hint::black_box(&r);
    }
    // Cheap: a table lookup and one history allocation each (generous bound for CI noise).
    assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
}

#[test]
fn table_modes_and_memory_are_bounded() {
    // Speex uses its direct table here: exact taps.
    assert_eq!(Resampler::new(8000, 48000, 7).unwrap().table.unwrap().kind, TableKind::DirectExact);
    // Speex interpolates (den = 441 > oversample) but den·filt_len is small: cubic taps.
    assert_eq!(Resampler::new(8000, 44100, 7).unwrap().table.unwrap().kind, TableKind::DirectCubic);
    // gcd 1: den = 47999, a direct table would be 6.1 M taps: interpolated mode.
    for (a, b) in [(44100u32, 47999u32), (47999, 44100), (191_999, 1000)] {
        let r = Resampler::new(a, b, 10).unwrap();
        let t = r.table.as_ref().unwrap();
        assert_eq!(t.kind, TableKind::Interp);
        assert!(t.coefs.as_slice().len() <= (32 + 6) * r.input_latency() * 2);
    }
    // Every direct table stays under the threshold.
    for (a, b) in [(1000u32, 192_000u32), (192_000, 1000), (44100, 48000), (48000, 44100), (11025, 48000)] {
        let r = Resampler::new(a, b, 10).unwrap();
        assert!(r.table.unwrap().coefs.as_slice().len() as u64 <= design::DIRECT_MAX_COEFS);
    }
}

// ---------------------------------------------------------------- filter quality (Q7)

/// Pairs of the brief: 8k ↔ {16k, 22.05k, 24k, 44.1k, 48k}, 16k ↔ 24k, 24k ↔ 48k.
const QUALITY_PAIRS: [(u32, u32); 7] =
    [(8000, 16000), (8000, 22050), (8000, 24000), (8000, 44100), (8000, 48000), (16000, 24000), (24000, 48000)];

#[test]
fn passband_gain_within_a_tenth_of_a_db() {
    for (lo, hi) in QUALITY_PAIRS {
        for (a, b) in [(lo, hi), (hi, lo)] {
            for f in [1000.0, 3400.0] {
                let x = tone(a, f, 16000.0, 1.5);
                let y = run(a, b, 7, &x, a as usize / 50);
                let gain = db(amplitude(steady(&y, b), b, f) / amplitude(&x[..a as usize], a, f));
                eprintln!("gain {a}->{b} {f} Hz: {gain:+.4} dB");
                assert!(gain.abs() <= 0.1, "{a}->{b} {f} Hz: {gain:.3} dB");
            }
        }
    }
}

#[test]
fn image_rejection_at_least_100_db() {
    for (lo, hi) in QUALITY_PAIRS {
        // A tone at 85 % of the low rate's Nyquist (3.4 kHz at 8 kHz); its images sit at
        // k·lo ± f in the high-rate output.
        let f = 0.425 * lo as f64;
        let y = run(lo, hi, 7, &tone(lo, f, 29000.0, 1.5), lo as usize / 50);
        let s = steady(&y, hi);
        let a_tone = amplitude(s, hi, f);
        let mut worst = f64::INFINITY;
        let mut k = 1.0;
        while k * lo as f64 - f < hi as f64 / 2.0 {
            for img in [k * lo as f64 - f, k * lo as f64 + f] {
                if img < hi as f64 / 2.0 {
                    worst = worst.min(db(a_tone / amplitude(s, hi, img)));
                }
            }
            k += 1.0;
        }
        eprintln!("image rejection {lo}->{hi}: {worst:.1} dB");
        assert!(worst >= 100.0, "{lo}->{hi}: image rejection {worst:.1} dB");
    }
}

#[test]
fn alias_rejection_at_least_100_db() {
    for (lo, hi) in QUALITY_PAIRS {
        // A tone 10 % of the low Nyquist above it (4.4 kHz for 8 kHz), aliasing to lo − f.
        // A passband companion (1234 Hz, not harmonically related) keeps the output from
        // being digital silence, so the alias is measured against a real int16 noise floor.
        let f = 0.55 * lo as f64;
        let stop = tone(hi, f, 16000.0, 1.5);
        let x: Vec<i16> = tone(hi, 1234.0, 16000.0, 1.5).iter().zip(&stop).map(|(a, b)| a + b).collect();
        let y = run(hi, lo, 7, &x, hi as usize / 50);
        let alias = amplitude(steady(&y, lo), lo, lo as f64 - f);
        assert!(alias > 0.0, "{hi}->{lo}: measurement has no noise floor");
        let rejection = db(amplitude(&stop[..hi as usize], hi, f) / alias);
        eprintln!("alias rejection {hi}->{lo}: {rejection:.1} dB");
        assert!(rejection >= 100.0, "{hi}->{lo}: alias rejection {rejection:.1} dB");
    }
}

#[test]
fn thd_plus_noise_of_1khz_at_least_90_db() {
    // int16 in and out: input and output rounding alone limit a −1 dBFS tone to ≈ 94 dB.
    for (lo, hi) in QUALITY_PAIRS {
        for (a, b) in [(lo, hi), (hi, lo)] {
            let y = run(a, b, 7, &tone(a, 1000.0, 29000.0, 1.5), a as usize / 50);
            let s = steady(&y, b);
            // Least-squares fit of DC + the 1 kHz tone (exact bins), then residual power.
            let w = 2.0 * PI * 1000.0 / b as f64;
            let n = s.len() as f64;
            let dc = s.iter().map(|&v| v as f64).sum::<f64>() / n;
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in s.iter().enumerate() {
                re += v as f64 * (w * i as f64).cos();
                im += v as f64 * (w * i as f64).sin();
            }
            let (ca, sa) = (2.0 * re / n, 2.0 * im / n);
            let mut res = 0.0;
            for (i, &v) in s.iter().enumerate() {
                let fit = dc + ca * (w * i as f64).cos() + sa * (w * i as f64).sin();
                res += (v as f64 - fit).powi(2);
            }
            let thdn = 10.0 * (((ca * ca + sa * sa) / 2.0) / (res / n)).log10();
            eprintln!("THD+N {a}->{b}: {thdn:.1} dB");
            assert!(thdn >= 90.0, "{a}->{b}: THD+N {thdn:.1} dB");
        }
    }
}
