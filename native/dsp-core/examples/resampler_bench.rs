//! Resampler speed per 20 ms frame (mono int16), best of several timed runs.
//!
//!     cargo run --release -p dsp-core --example resampler_bench [-- scalar|all|k=NAME] [qN]
//!
//! Times the kernel set `Resampler::new` picks; `scalar` adds the portable kernels, `all`
//! every kernel set this CPU runs (avx512f, avx2+fma, scalar), `k=NAME` only that one;
//! `qN` restricts to one quality.
use dsp_core::resampler::{available_kernels, Resampler};
use std::hint::black_box;
use std::time::Instant;

fn frame(rate: u32) -> Vec<i16> {
    let n = (rate / 50) as usize;
    let mut s = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let tone = 8000.0 * (i as f32 * 0.3).sin();
            (tone + ((s >> 20) as f32 - 2048.0)) as i16
        })
        .collect()
}

fn time_ns_per_frame(r: &mut Resampler, input: &[i16]) -> f64 {
    let mut out = vec![0i16; r.max_output_len(input.len())];
    for _ in 0..2000 {
        black_box(r.process(black_box(input), &mut out).unwrap());
    }
    // Minimum over many short runs: the machine is shared and noisy, the minimum is the
    // figure least disturbed by other processes.
    let iters = 1000;
    let mut best = f64::INFINITY;
    for _ in 0..100 {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(r.process(black_box(input), &mut out).unwrap());
        }
        best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    best
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let qs: Vec<u32> = match args.iter().find_map(|a| a.strip_prefix('q')) {
        Some(q) => vec![q.parse().expect("qN")],
        None => vec![3, 5, 7, 10],
    };
    // Kernel columns: the default one, plus `scalar`, or `all` available ones, or `k=NAME`.
    let avail = available_kernels();
    let kernels: Vec<&str> = if args.iter().any(|a| a == "all") {
        avail.clone()
    } else if let Some(k) = args.iter().find_map(|a| a.strip_prefix("k=")) {
        vec![*avail.iter().find(|&&a| a == k).expect("kernel not available")]
    } else if args.iter().any(|a| a == "scalar") {
        vec![avail[0], "scalar"]
    } else {
        vec![avail[0]]
    };
    let pairs = [(8000, 16000), (8000, 24000), (8000, 48000), (16000, 8000), (24000, 8000), (48000, 8000), (16000, 24000), (44100, 8000)];
    print!("{:>14} {:>4}", "pair", "Q");
    for k in &kernels {
        print!(" {:>12}", k);
    }
    println!("   (ns per 20 ms frame, min of 100 runs)");
    for &(a, b) in &pairs {
        for &q in &qs {
            let input = frame(a);
            print!("{:>14} {:>4}", format!("{}→{}", a, b), q);
            for k in &kernels {
                let mut r = Resampler::new(a, b, q).unwrap();
                assert!(r.force_kernel(k));
                print!(" {:>12.0}", time_ns_per_frame(&mut r, &input));
            }
            println!();
        }
    }
}
